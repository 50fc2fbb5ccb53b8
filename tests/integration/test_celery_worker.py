"""Submissions travel through Redis to a real Celery worker, which updates PostgreSQL."""
from __future__ import annotations

import time

import pytest
from django.urls import reverse

from annotation.models import JointArea, Radiograph

from ..conftest import client_for

pytestmark = pytest.mark.integration


def wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


def grade_everything_and_submit(world, persona: str, assignment) -> None:
    client = client_for(world.users[persona])
    areas = JointArea.objects.filter(scheme=world.alpha.scheme, body_part="hand")
    grades = [{"area": area.code, "value": 1, "version": 0} for area in areas]
    assert client.put(reverse("api-grade-bulk-save", args=[assignment.pk]), {"grades": grades}, format="json").status_code == 200
    response = client.post(reverse("api-assignment-submit", args=[assignment.pk]), {"seconds_spent": 30}, format="json")
    assert response.status_code == 200, response.content


def test_submissions_are_counted_by_the_worker(world, celery_worker_process):
    radiograph = world.r1
    grade_everything_and_submit(world, "reader_a", world.a_own)
    assert wait_for(lambda: Radiograph.objects.get(pk=radiograph.pk).submitted_reads == 1), celery_worker_process.read_text()
    assert Radiograph.objects.get(pk=radiograph.pk).status == Radiograph.Status.IN_READING

    grade_everything_and_submit(world, "reader_b", world.b_on_r1)
    assert wait_for(lambda: Radiograph.objects.get(pk=radiograph.pk).status == Radiograph.Status.READ), celery_worker_process.read_text()
    assert Radiograph.objects.get(pk=radiograph.pk).submitted_reads == 2
    assert "radiograph_progress_update_task" in celery_worker_process.read_text()
