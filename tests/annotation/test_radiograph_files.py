"""Deleting a radiograph (or its patient) deletes its pixels, renditions and model heatmaps."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from annotation import renditions, services
from annotation.models import Patient

from ..conftest import make_radiograph


@pytest.mark.django_db
def test_a_deleted_patients_images_leave_the_media_storage_and_others_stay(schemes, django_capture_on_commit_callbacks):
    project = services.project_create(name="Files", slug="files")
    gone, kept = make_radiograph(project, "FILE-1"), make_radiograph(project, "FILE-2", laterality="L")
    files = {}
    for radiograph in (gone, kept):
        rendition = Path(settings.MEDIA_ROOT) / renditions.radiograph_rendition(radiograph=radiograph, kind="display")
        heatmap = f"heatmaps/v7/{radiograph.pk}/pip_E__2.png"
        default_storage.save(heatmap, ContentFile(b"\x89PNG"))
        files[radiograph.pk] = [Path(radiograph.image.path), rendition, Path(settings.MEDIA_ROOT) / heatmap]
        assert all(path.exists() for path in files[radiograph.pk])

    with django_capture_on_commit_callbacks(execute=True):
        Patient.objects.filter(pseudonym="FILE-1").delete()

    assert [path.exists() for path in files[gone.pk]] == [False, False, False]
    assert [path.exists() for path in files[kept.pk]] == [True, True, True]


@pytest.mark.django_db
def test_files_stay_until_the_deletion_commits(schemes, django_capture_on_commit_callbacks):
    project = services.project_create(name="Files", slug="files")
    radiograph = make_radiograph(project, "FILE-3")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        radiograph.delete()
        assert Path(radiograph.image.path).exists()
    assert len(callbacks) == 2  # the pixels and renditions, the heatmaps
