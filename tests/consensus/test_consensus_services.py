"""consensus_compute on the database: what is stored, on which grid, with gold, and on failure."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from annotation.models import Assignment, Grade
from consensus import arrays, selectors, services
from consensus.aggregation import aggregate
from consensus.models import AdjudicatedLabel, ConsensusLabel, ConsensusRun
from scoring.jsonable import jsonable

from ..conftest import make_radiograph, make_user
from .conftest import areas_of, grade_with_panel, submit_grades


def labels_frame(project, dimension: str) -> pd.DataFrame:
    """Submitted grades as aggregate() takes them, built here independently of the service."""
    rows = Grade.objects.filter(
        assignment__radiograph__project=project, assignment__status="submitted", area__dimension=dimension
    ).values_list("assignment__radiograph_id", "area_id", "assignment__reader_id", "value")
    return pd.DataFrame(
        [(f"{r}:{a}", f"u{u}", v) for r, a, u, v in sorted(rows)], columns=["task", "worker", "label"]
    )


def test_compute_stores_the_labels_and_posteriors_that_aggregate_returns(graded):
    run = services.consensus_compute(project=graded.project, dimension="erosion", compare_with=())

    assert run.status == ConsensusRun.Status.OK, run.error
    assert (run.version, run.n_tasks, run.n_readers, run.n_labels, run.n_gold) == (1, 20 * 16, 3, 20 * 16 * 3, 0)
    assert run.converged is True and run.iterations >= 1
    expected = aggregate(labels_frame(graded.project, "erosion"), n_grades=6)
    stored = {f"{r}:{a}": (label, posterior) for r, a, label, posterior in ConsensusLabel.objects.filter(run=run).values_list("radiograph_id", "area_id", "label", "posterior")}
    assert {task: label for task, (label, _p) in stored.items()} == expected.labels
    for task, (_label, posterior) in stored.items():
        assert len(posterior) == 6  # the full 0..5 grid, grades nobody gave included
        assert sum(posterior) == pytest.approx(1.0)
        np.testing.assert_allclose(posterior, expected.posteriors[task], atol=1e-9)
    # Three readers with known habits: the fused grade recovers the truth far more often than not.
    codes = {a.pk: a.code for a in areas_of(graded.project, dimension="erosion")}
    hits = [label == graded.truth[(r, codes[a])] for r, a, label in ConsensusLabel.objects.filter(run=run).values_list("radiograph_id", "area_id", "label")]
    assert np.mean(hits) > 0.85
    # One estimated confusion matrix per reader, 6 x 6, rows summing to 1.
    estimates = list(run.reader_estimates.all())
    assert sorted(e.reader_id for e in estimates) == sorted(u.pk for u in graded.readers)
    assert all(np.allclose(np.sum(e.confusion, axis=1), 1.0) and len(e.confusion) == 6 for e in estimates)


def test_each_compute_is_a_new_version_per_dimension(pair_read):
    project = pair_read.alpha
    first = services.consensus_compute(project=project, dimension="jsn", aggregator="MajorityVote", compare_with=())
    second = services.consensus_compute(project=project, dimension="jsn", aggregator="MajorityVote", compare_with=())
    erosion = services.consensus_compute(project=project, dimension="erosion", aggregator="MajorityVote", compare_with=())
    assert (first.version, second.version, erosion.version) == (1, 2, 1)
    assert (second.n_tasks, second.n_readers, second.n_labels, erosion.n_tasks) == (30, 2, 60, 32)
    assert selectors.consensus_run_latest(project=project, dimension="jsn") == second
    assert len(second.labels.first().posterior) == 5  # JSN is graded 0-4


def test_feet_are_fused_on_the_0_to_10_erosion_grid_and_hands_on_0_to_5(world):
    reader_a, reader_b, reader_c = world.users["reader_a"], world.users["reader_b"], make_user("reader_c")
    feet = []
    for i in range(4):
        radiograph = make_radiograph(world.alpha, f"FEET-{i}")
        radiograph.body_part = "foot"
        radiograph.save(update_fields=["body_part"])
        feet.append(radiograph)
    hands = [make_radiograph(world.alpha, f"HANDS-{i}") for i in range(2)]
    grade_with_panel(world.alpha, feet, [reader_a, reader_b, reader_c], body_part="foot")
    grade_with_panel(world.alpha, hands, [reader_a, reader_b, reader_c], body_part="hand")
    # A clearly damaged foot joint, agreed by everyone: only the 0-10 grid can hold it.
    Grade.objects.filter(assignment__radiograph=feet[0], area__code="mtp_E__1").update(value=9)

    run = services.consensus_compute(project=world.alpha, dimension="erosion", aggregator="OneCoinDawidSkene", compare_with=())

    assert run.status == ConsensusRun.Status.OK, run.error
    assert sorted((p["body_part"], p["max_grade"], p["n_tasks"]) for p in run.parts) == [("foot", 10, 4 * 6), ("hand", 5, 2 * 16)]
    grid = {body_part: {len(p) for p in ConsensusLabel.objects.filter(run=run, radiograph__body_part=body_part).values_list("posterior", flat=True)} for body_part in ("hand", "foot")}
    assert grid == {"hand": {6}, "foot": {11}}
    assert ConsensusLabel.objects.get(run=run, radiograph=feet[0], area__code="mtp_E__1").label == 9
    scales = [(s.key, s.max_grade) for s in selectors.scale_list(project=world.alpha)]
    assert scales == [("erosion-hand", 5), ("jsn-hand", 4), ("erosion-foot", 10), ("jsn-foot", 4)]


def test_an_adjudicated_grade_is_gold_and_changes_the_label_in_the_next_run(pair_read):
    project = pair_read.alpha
    before = services.consensus_compute(project=project, dimension="erosion", compare_with=())
    target = before.labels.select_related("area", "radiograph").order_by("-uncertainty").first()
    final = (target.label + 2) % 6
    services.adjudicated_label_create(
        radiograph=target.radiograph, area=target.area, grade=final, lead=make_user("adjudicator"), recompute=False
    )

    after = services.consensus_compute(project=project, dimension="erosion", compare_with=())

    label = after.labels.get(radiograph=target.radiograph, area=target.area)
    assert (label.label, label.is_gold, after.n_gold) == (final, True, 1)
    assert label.posterior == [1.0 if g == final else 0.0 for g in range(6)]
    assert final != target.label


def test_the_newest_adjudication_of_an_area_is_the_gold_one(world):
    radiograph, area = world.r1, areas_of(world.alpha, dimension="jsn")[0]
    lead = world.users["lead"]
    AdjudicatedLabel.objects.create(radiograph=radiograph, area=area, grade=1, lead=lead)
    AdjudicatedLabel.objects.create(radiograph=radiograph, area=area, grade=3, lead=lead)
    assert arrays.adjudicated_gold(project=world.alpha, dimension="jsn") == {(radiograph.pk, area.pk): 3}
    assert arrays.adjudicated_gold(project=world.alpha, dimension="erosion") == {}


def test_only_submitted_reads_enter_the_consensus(pair_read):
    late = make_radiograph(pair_read.alpha, "ALPHA-LATE")
    submit_grades(late, pair_read.users["reader_a"], {a.code: 5 for a in areas_of(pair_read.alpha, dimension="erosion")}, submitted=False)
    run = services.consensus_compute(project=pair_read.alpha, dimension="erosion", aggregator="MajorityVote", compare_with=())
    assert run.n_labels == 2 * 16 * 2
    assert not run.labels.filter(radiograph=late).exists()
    assert Assignment.objects.get(radiograph=late).status == Assignment.Status.PENDING


def test_a_failing_fit_is_stored_as_a_failed_run_with_its_error_and_no_labels(pair_read):
    run = services.consensus_compute(project=pair_read.alpha, dimension="erosion", params={"no_such_parameter": 5})
    assert run.status == ConsensusRun.Status.FAILED
    assert "bad parameters for DawidSkene" in run.error and "no_such_parameter" in run.error
    assert (run.version, run.labels.count()) == (1, 0)
    assert selectors.consensus_run_latest(project=pair_read.alpha, dimension="erosion") is None
    assert selectors.consensus_run_latest(project=pair_read.alpha, dimension="erosion", ok_only=False) == run


def test_an_unknown_aggregator_is_refused_before_anything_is_stored(world):
    with pytest.raises(services.ConsensusError, match="choose one of DawidSkene"):
        services.consensus_compute(project=world.alpha, dimension="erosion", aggregator="Median")
    assert not ConsensusRun.objects.exists()


def test_the_run_records_how_often_other_aggregators_pick_another_grade(graded):
    run = services.consensus_compute(
        project=graded.project, dimension="erosion", aggregator="OneCoinDawidSkene", compare_with=("MajorityVote",)
    )
    frame = labels_frame(graded.project, "erosion")
    one_coin = aggregate(frame, n_grades=6, aggregator="OneCoinDawidSkene").labels
    mv = aggregate(frame, n_grades=6, aggregator="MajorityVote").labels
    differ = sum(one_coin[t] != mv[t] for t in one_coin)
    assert differ > 0  # readers with different habits: weighting them by skill moves some grades
    assert run.comparison["pairs"] == [["OneCoinDawidSkene", "MajorityVote", differ]]
    assert run.comparison["n_changed"] == differ
    (comparison,) = selectors.aggregator_comparison(project=graded.project)
    assert comparison.matrix == [[None, differ], [differ, None]]


def test_model_grades_join_the_fit_only_where_readers_graded_and_the_run_says_so(pair_read):
    areas = areas_of(pair_read.alpha, dimension="erosion")
    unread = make_radiograph(pair_read.alpha, "ALPHA-UNREAD")
    model = {(r.pk, a.pk): 5 for r in (pair_read.r1, unread) for a in areas}
    run = services.consensus_compute(
        project=pair_read.alpha, dimension="erosion", aggregator="MajorityVote", extra_labels={"model:v1": model}, compare_with=()
    )
    assert (run.includes_model, run.n_readers, run.n_tasks, run.n_labels) == (True, 3, 32, 32 * 2 + 16)
    assert not run.labels.filter(radiograph=unread).exists()
    assert not run.reader_estimates.exists()  # MajorityVote has no reader model


def test_jsonable_gives_json_every_database_stores():
    value = {1: (np.float32(0.5), np.int64(3)), "scores": np.array([1.0, np.nan]), "inf": math.inf, "path": Path("a/b")}
    assert jsonable(value) == {"1": [0.5, 3], "scores": [1.0, None], "inf": None, "path": "a/b"}
