"""Keys: DICOM pseudonyms are never made with a committed or short key; production refuses a weak SECRET_KEY."""
from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from annotation.models import Patient, Radiograph
from tests.annotation.ingest_samples import dicom_bytes, hand_stored_values, radiograph_png
from tests.conftest import client_for

from .test_deployment import STRONG_KEY, _start_django

DEMO_KEY = "demo-only-insecure-key-do-not-use-in-production"


@pytest.mark.parametrize(
    ("key", "reason"),
    [(DEMO_KEY, "the demo key committed in the repository"), ("short-but-secret-31-bytes-xxxxx", "PSEUDONYM_KEY is 31 bytes")],
)
def test_a_folder_import_with_dicom_refuses_to_run_with_a_committed_or_short_key(schemes, settings, tmp_path, key, reason):
    settings.PSEUDONYM_KEY = key
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "IM1.dcm").write_bytes(dicom_bytes(hand_stored_values()[0]))
    (folder / "P1-LH.png").write_bytes(radiograph_png(3))

    with pytest.raises(CommandError, match=reason):
        call_command("import_radiographs", str(folder), "--project", "p", stdout=io.StringIO())

    assert not Radiograph.objects.exists() and not Patient.objects.exists()


def test_the_default_settings_key_is_the_committed_demo_key_and_is_refused(schemes, settings, tmp_path):
    # Without SECRET_KEY or PSEUDONYM_KEY in the environment both fall back to the demo key.
    settings.PSEUDONYM_KEY = settings.SECRET_KEY = DEMO_KEY
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "IM1.dcm").write_bytes(dicom_bytes(hand_stored_values()[0]))
    with pytest.raises(CommandError, match="demo key"):
        call_command("import_radiographs", str(folder), "--project", "p", stdout=io.StringIO())


def test_a_dicom_upload_with_the_demo_key_gets_400_naming_the_file_and_pngs_still_import(world, settings):
    settings.PSEUDONYM_KEY = DEMO_KEY
    client = client_for(world.users["lead"])
    url = reverse("api-radiograph-upload", args=[world.alpha.pk])

    refused = client.post(url, {"files": [SimpleUploadedFile("IM1.dcm", dicom_bytes(hand_stored_values()[0]))]}, format="multipart")
    accepted = client.post(url, {"files": [SimpleUploadedFile("NEW-09-LH.png", radiograph_png(9))]}, format="multipart")

    assert refused.status_code == 400
    assert refused.json()["files"]["IM1.dcm"][0].startswith("DICOM import is refused: the pseudonym key is the demo key")
    assert accepted.status_code == 201


def test_the_demo_may_allow_its_own_key_explicitly(schemes, settings, tmp_path):
    settings.PSEUDONYM_KEY, settings.ALLOW_DEMO_PSEUDONYM_KEY = DEMO_KEY, True
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "IM1.dcm").write_bytes(dicom_bytes(hand_stored_values()[0]))
    call_command("import_radiographs", str(folder), "--project", "p", stdout=io.StringIO())
    assert Radiograph.objects.count() == 1


@pytest.mark.parametrize("key", ["x", "x" * 50, "django-insecure-" + "abcdefghij" * 5, DEMO_KEY])
def test_production_refuses_a_weak_secret_key(key):
    result = _start_django({"DJANGO_ENV": "production", "SECRET_KEY": key, "DJANGO_SETTINGS_MODULE": "config.settings"})
    assert result.returncode != 0
    assert "SECRET_KEY is weak" in result.stderr


def test_production_accepts_a_strong_secret_key():
    result = _start_django({"DJANGO_ENV": "production", "SECRET_KEY": STRONG_KEY, "DJANGO_SETTINGS_MODULE": "config.settings"})
    assert result.returncode == 0, result.stderr
