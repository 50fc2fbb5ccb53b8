"""The benchmark command and the large-study paths of consensus_compute it exercises."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from annotation.models import Grade, GradeChange, Project
from consensus import services
from consensus.aggregation import DEFAULT_AGGREGATOR, aggregate
from consensus.label_store import POSTERIOR_TOLERANCE
from consensus.models import ConsensusLabel, ConsensusRun

pytestmark = pytest.mark.django_db


def _bench(labels: int = 2000, **extra) -> str:
    out = io.StringIO()
    call_command("bench_consensus", labels=labels, readers=4, stdout=out, **extra)
    return out.getvalue()


def test_bench_consensus_stores_the_labels_a_direct_aggregate_call_gives(schemes) -> None:
    output = _bench()
    project = Project.objects.get(slug="bench-consensus-2000-4")
    # 2000 grades at 31 hand areas and 3 readers per film: 22 films, 2046 grades.
    assert "2046 submitted grades, 4 readers, 3 per film (built in" in output
    assert "first store    read_rows" in output and "(2046 grades, 682 labels, 682 written" in output
    assert "full 1" in output and "incremental 1" in output
    for dimension, n_grades in (("erosion", 6), ("jsn", 5)):
        # Four runs per dimension: first store, full, the read taken back, the incremental update.
        assert ConsensusRun.objects.filter(project=project, dimension=dimension).count() == 4
        run = ConsensusRun.objects.filter(project=project, dimension=dimension).latest("version")
        assert run.warm_start
        rows = Grade.objects.filter(assignment__radiograph__project=project, area__dimension=dimension).values_list(
            "assignment__radiograph_id", "area_id", "assignment__reader_id", "value"
        )
        frame = pd.DataFrame(
            sorted(((r, a), f"reader:{reader}", v) for r, a, reader, v in rows), columns=["task", "worker", "label"]
        )
        direct = aggregate(frame, n_grades=n_grades, aggregator=DEFAULT_AGGREGATOR)
        stored = {(r, a): (label, p) for r, a, label, p in run.labels.values_list("radiograph_id", "area_id", "label", "posterior")}
        assert {task: label for task, (label, _p) in stored.items()} == direct.labels
        # A posterior is rewritten only when it moves by more than the store's tolerance.
        np.testing.assert_allclose([stored[t][1] for t in direct.tasks], direct.posterior, rtol=0, atol=2 * POSTERIOR_TOLERANCE)


def test_bench_data_has_a_history_row_for_every_grade_and_is_reused(schemes) -> None:
    _bench()
    project = Project.objects.get(slug="bench-consensus-2000-4")
    grades = Grade.objects.filter(assignment__radiograph__project=project)
    changes = GradeChange.objects.filter(grade__assignment__radiograph__project=project).order_by()
    assert changes.count() == grades.count() == 2046
    assert set(changes.values_list("old_value", "version").distinct()) == {(None, 1)}
    assert "(reused in" in _bench()
    assert "(built in" in _bench(rebuild=True)
    assert Project.objects.filter(slug="bench-consensus-2000-4").count() == 1


def test_the_comparison_is_skipped_and_recorded_above_the_limit(schemes) -> None:
    _bench()
    project = Project.objects.get(slug="bench-consensus-2000-4")
    timings: dict[str, float] = {}
    run = services.consensus_compute(project=project, dimension="erosion", compare_max_labels=500, timings=timings)
    assert run.comparison == {"skipped": "1056 grades, above the comparison limit of 500"}
    assert set(timings) == {"read_rows", "fit", "compare", "store"} and all(t >= 0 for t in timings.values())
    below = services.consensus_compute(project=project, dimension="erosion", compare_max_labels=None)
    assert below.comparison["aggregators"] == ["OrdinalDawidSkene", "DawidSkene", "MajorityVote", "Wawa", "OneCoinDawidSkene"]


def test_labels_of_a_radiograph_deleted_before_the_store_are_dropped(schemes, monkeypatch) -> None:
    _bench()
    project = Project.objects.get(slug="bench-consensus-2000-4")
    doomed = project.radiographs.order_by("id").first()
    real_store = services._run_store

    def store_after_delete(**kwargs):
        doomed.delete()  # as if a lead deleted the film while the fit ran
        return real_store(**kwargs)

    monkeypatch.setattr(services, "_run_store", store_after_delete)
    run = services.consensus_compute(project=project, dimension="erosion")
    assert run.status == ConsensusRun.Status.OK
    assert not ConsensusLabel.objects.filter(run=run, radiograph_id=doomed.pk).exists()
    assert run.labels.count() == 21 * 16
