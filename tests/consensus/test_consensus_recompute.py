"""Recompute after submissions: debounced, skipped when superseded, never breaking a submission."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation.models import JointArea
from consensus import recompute
from consensus.models import ConsensusRun, ConsensusSettings
from consensus.tasks import consensus_recompute_task

from ..conftest import client_for


@pytest.fixture
def queued(monkeypatch):
    """Record enqueued recomputes instead of running them, so a test decides when each runs."""
    calls: list[dict] = []
    monkeypatch.setattr(
        consensus_recompute_task, "apply_async", lambda kwargs, countdown: calls.append({"kwargs": kwargs, "countdown": countdown})
    )
    return calls


def grade_and_submit(world, persona: str, assignment, value: int = 1) -> None:
    client = client_for(world.users[persona])
    areas = JointArea.objects.filter(scheme=world.alpha.scheme, body_part="hand")
    grades = [{"area": area.code, "value": min(value, area.max_grade), "version": 0} for area in areas]
    assert client.put(reverse("api-grade-bulk-save", args=[assignment.pk]), {"grades": grades}, format="json").status_code == 200
    response = client.post(reverse("api-assignment-submit", args=[assignment.pk]), {"seconds_spent": 30}, format="json")
    assert response.status_code == 200, response.content


def test_two_quick_submissions_lead_to_one_recompute_after_the_quiet_time(world, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        grade_and_submit(world, "reader_a", world.a_own, value=1)
        grade_and_submit(world, "reader_b", world.b_on_r1, value=2)

    assert [call["countdown"] for call in queued] == [30, 30]  # the project's default quiet time
    assert [call["kwargs"]["seq"] for call in queued] == [1, 2]
    # The worker runs them in order once their countdowns pass: the first sees a newer request.
    outcomes = [consensus_recompute_task.apply(kwargs=call["kwargs"]).get() for call in queued]

    assert outcomes[0] == "skipped"
    assert outcomes[1] == "erosion v1 ok, jsn v1 ok"
    runs = ConsensusRun.objects.filter(project=world.alpha)
    assert sorted(runs.values_list("dimension", "version", "n_readers", "trigger")) == [
        ("erosion", 1, 2, "submission"),
        ("jsn", 1, 2, "submission"),
    ]
    state = ConsensusSettings.objects.get(project=world.alpha)
    assert (state.request_seq, state.computed_seq, state.pending) == (2, 2, False)


def test_a_request_already_covered_by_a_later_compute_is_skipped(world, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = recompute.consensus_recompute_request(project=world.alpha)
        recompute.consensus_recompute_request(project=world.alpha, delay_seconds=0)  # "recompute now"
    assert [call["countdown"] for call in queued] == [30, 0]
    assert consensus_recompute_task.apply(kwargs=queued[1]["kwargs"]).get() == "erosion v1 ok, jsn v1 ok"
    # The delayed request comes due afterwards: the compute it asked for has already happened.
    assert consensus_recompute_task.apply(kwargs=queued[0]["kwargs"]).get() == "skipped"
    assert first == 1 and ConsensusRun.objects.count() == 2


def test_a_superseded_request_still_computes_when_the_project_waited_too_long(world, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        recompute.consensus_recompute_request(project=world.alpha)
        recompute.consensus_recompute_request(project=world.alpha)
    ConsensusSettings.objects.filter(project=world.alpha).update(pending_since=timezone.now() - timedelta(minutes=11))
    # Submissions that never pause must not postpone the consensus forever (max wait 600 s).
    assert consensus_recompute_task.apply(kwargs=queued[0]["kwargs"]).get() == "erosion v1 ok, jsn v1 ok"
    assert consensus_recompute_task.apply(kwargs=queued[1]["kwargs"]).get() == "skipped"


def test_a_project_with_automatic_recompute_off_queues_nothing_on_submission(world, queued, django_capture_on_commit_callbacks):
    ConsensusSettings.objects.create(project=world.alpha, auto_recompute=False)
    with django_capture_on_commit_callbacks(execute=True):
        grade_and_submit(world, "reader_a", world.a_own)
    assert queued == []


def test_a_failure_to_queue_the_recompute_does_not_fail_the_submission(world, monkeypatch, django_capture_on_commit_callbacks):
    def broken(**kwargs):
        raise RuntimeError("broker down")

    monkeypatch.setattr(recompute, "consensus_recompute_after_submission", broken)
    with django_capture_on_commit_callbacks(execute=True):
        grade_and_submit(world, "reader_a", world.a_own)
    world.a_own.refresh_from_db()
    assert world.a_own.status == "submitted"
    assert not ConsensusRun.objects.exists()


def test_a_submission_with_eager_tasks_recomputes_at_once(world, django_capture_on_commit_callbacks):
    # tests/conftest.py runs tasks in-process (countdowns are ignored there), so the whole path
    # from submission to stored run is exercised here; tests/integration does it with a real worker.
    with django_capture_on_commit_callbacks(execute=True):
        grade_and_submit(world, "reader_a", world.a_own, value=2)
    erosion = ConsensusRun.objects.get(project=world.alpha, dimension="erosion")
    assert (erosion.version, erosion.n_tasks, erosion.n_readers, erosion.status) == (1, 16, 1, "ok")
    assert set(erosion.labels.values_list("label", flat=True)) == {2}
