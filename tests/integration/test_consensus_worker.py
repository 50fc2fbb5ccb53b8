"""Submissions reach a real Celery worker through Redis, which stores the consensus in PostgreSQL."""
from __future__ import annotations

import pytest

from consensus.models import AgreementReportCache, ConsensusRun, ConsensusSettings

from .test_celery_worker import grade_everything_and_submit, wait_for

pytestmark = pytest.mark.integration


def test_submissions_lead_to_consensus_runs_stored_by_the_worker(world, celery_worker_process):
    # A short quiet time keeps the test quick. Whether the first submission's request is
    # superseded depends on timing here; tests/consensus checks the debounce deterministically.
    ConsensusSettings.objects.create(project=world.alpha, delay_seconds=2)
    grade_everything_and_submit(world, "reader_a", world.a_own)
    grade_everything_and_submit(world, "reader_b", world.b_on_r1)

    def latest_has_both_readers() -> bool:
        latest = [
            ConsensusRun.objects.filter(project=world.alpha, dimension=d, status="ok").order_by("-version").first()
            for d in ("erosion", "jsn")
        ]
        return all(run is not None and run.n_readers == 2 for run in latest)

    assert wait_for(latest_has_both_readers, timeout=90), celery_worker_process.read_text()
    erosion = ConsensusRun.objects.filter(project=world.alpha, dimension="erosion").order_by("-version").first()
    jsn = ConsensusRun.objects.filter(project=world.alpha, dimension="jsn").order_by("-version").first()
    assert (erosion.n_tasks, erosion.n_labels, jsn.n_tasks, jsn.n_labels) == (16, 32, 15, 30)
    assert (erosion.trigger, erosion.status) == ("submission", "ok")
    # Every grade was 1, so the consensus is 1 everywhere, on the full 0-5 grid.
    assert set(erosion.labels.values_list("label", flat=True)) == {1}
    assert {len(p) for p in erosion.labels.values_list("posterior", flat=True)} == {6}
    assert ConsensusRun.objects.filter(project=world.alpha).count() <= 4  # at most one run per request
    # The worker also keeps the run's agreement report, which the lead's page reads.
    assert wait_for(lambda: AgreementReportCache.objects.filter(run=erosion).exists(), timeout=60)
    assert "consensus_recompute_task" in celery_worker_process.read_text()
    state = ConsensusSettings.objects.get(project=world.alpha)
    assert (state.request_seq, state.computed_seq) == (2, 2)
