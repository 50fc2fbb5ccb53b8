"""Runs that store only what changed, warm-started updates after one more read, and the grade
rows read back as arrays: the labels stay those a full recompute with a full write gives."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from annotation.models import Assignment, Grade, Project
from consensus import label_store, services, studies
from consensus.aggregation import DEFAULT_AGGREGATOR, aggregate
from consensus.arrays import grade_rows
from consensus.models import ConsensusLabel, ConsensusRun, ConsensusState

pytestmark = pytest.mark.django_db


def _project() -> Project:
    # 3000 grades: 32 films of 31 hand areas (2976 grades), 3 of 4 readers per film.
    return studies.synthetic_project_create(slug="incremental", n_labels=3000, n_readers=4).project


def _labels(run: ConsensusRun) -> dict[tuple[int, int], tuple[int, list[float], int]]:
    return {
        (r, a): (label, posterior, n)
        for r, a, label, posterior, n in run.labels.values_list("radiograph_id", "area_id", "label", "posterior", "n_readers")
    }


def _direct(project: Project, dimension: str, n_grades: int) -> dict:
    """What the full recompute with a full write stored: a direct aggregate call on every grade."""
    rows = Grade.objects.filter(
        assignment__radiograph__project=project, assignment__status=Assignment.Status.SUBMITTED, area__dimension=dimension
    ).values_list("assignment__radiograph_id", "area_id", "assignment__reader_id", "value")
    frame = pd.DataFrame(sorted(((r, a), f"reader:{reader}", v) for r, a, reader, v in rows), columns=["task", "worker", "label"])
    result = aggregate(frame, n_grades=n_grades, aggregator=DEFAULT_AGGREGATOR)
    return {task: (result.labels[task], result.posteriors[task]) for task in result.tasks}


def _one_more_read(project: Project) -> Assignment:
    """Take the newest read back so that submitting it again is one more read for the consensus."""
    read = Assignment.objects.filter(radiograph__project=project).order_by("-pk").first()
    Assignment.objects.filter(pk=read.pk).update(status=Assignment.Status.IN_PROGRESS)
    return read


def test_update_after_one_more_read_warm_starts_and_gives_the_labels_of_a_full_recompute(schemes) -> None:
    project = _project()
    read = _one_more_read(project)
    before = services.consensus_compute(project=project, dimension="erosion")
    assert not before.warm_start and before.labels_written == before.n_tasks  # the first run writes every label
    Assignment.objects.filter(pk=read.pk).update(status=Assignment.Status.SUBMITTED)

    update = services.consensus_compute(project=project, dimension="erosion")
    full = services.consensus_compute(project=project, dimension="erosion", warm_start=False)

    assert update.status == full.status == ConsensusRun.Status.OK
    assert update.warm_start and not full.warm_start
    assert update.iterations < full.iterations
    warm, cold = _labels(update), _labels(full)
    assert warm.keys() == cold.keys() and len(warm) == update.n_tasks == 32 * 16
    assert {k: v[0] for k, v in warm.items()} == {k: v[0] for k, v in cold.items()}
    gap = max(np.abs(np.subtract(warm[k][1], cold[k][1])).max() for k in warm)
    assert gap <= 2 * label_store.POSTERIOR_TOLERANCE
    # The read's 16 erosion areas gained a reader, so at least those rows are new. (On this small
    # project one read moves most posteriors by more than the tolerance; at 10^6 grades it does not.)
    changed = {(r, a) for r, a in update.label_rows.values_list("radiograph_id", "area_id")}
    assert {(read.radiograph_id, a) for (r, a) in warm if r == read.radiograph_id} <= changed
    assert 16 <= update.labels_written == len(changed) < update.n_tasks
    assert all(warm[(read.radiograph_id, a)][2] == 3 for (r, a) in warm if r == read.radiograph_id)
    # Nothing new, nothing written: the same cold fit again finds every stored row unchanged.
    again = services.consensus_compute(project=project, dimension="erosion", warm_start=False)
    assert again.labels_written == 0 and not again.label_rows.exists()
    assert _labels(again) == cold


def test_stored_labels_equal_those_of_the_full_write_and_earlier_runs_keep_theirs(schemes) -> None:
    project = _project()
    first = services.consensus_compute(project=project, dimension="jsn", warm_start=False)
    kept = _labels(first)
    direct = _direct(project, "jsn", 5)
    assert {k: v[0] for k, v in kept.items()} == {k: v[0] for k, v in direct.items()}
    np.testing.assert_allclose([kept[k][1] for k in direct], [direct[k][1] for k in direct], rtol=0, atol=1e-12)

    # Every read of one film taken back: its areas leave the consensus of the next run only.
    film = Assignment.objects.filter(radiograph__project=project).order_by("pk").first().radiograph_id
    Assignment.objects.filter(radiograph_id=film).update(status=Assignment.Status.IN_PROGRESS)
    later = services.consensus_compute(project=project, dimension="jsn")
    now = _labels(later)
    assert {r for r, _a in kept} - {r for r, _a in now} == {film}
    assert len(now) == len(kept) - 15
    assert _labels(first) == kept  # the earlier run still reads exactly what it stored
    direct = _direct(project, "jsn", 5)
    assert {k: v[0] for k, v in now.items()} == {k: v[0] for k, v in direct.items()}
    gap = max(np.abs(np.subtract(now[k][1], direct[k][1])).max() for k in direct)
    assert gap <= label_store.POSTERIOR_TOLERANCE
    # The film's rows are superseded in the later run's version, not deleted.
    assert set(ConsensusLabel.objects.filter(radiograph_id=film, run=first).values_list("superseded_in", flat=True)) == {later.version}


def test_without_stored_arrays_a_run_supersedes_every_open_label_and_writes_all(schemes) -> None:
    project = _project()
    services.consensus_compute(project=project, dimension="erosion")
    ConsensusState.objects.filter(project=project).delete()
    again = services.consensus_compute(project=project, dimension="erosion")
    assert not again.warm_start and again.labels_written == again.n_tasks
    assert again.labels.count() == again.n_tasks  # no label of the first run leaks into the second


def test_grade_rows_read_as_one_binary_value_equal_the_orm_rows(schemes) -> None:
    project = _project()
    _one_more_read(project)
    areas = sorted(project.scheme.areas.values_list("pk", flat=True))
    rows = grade_rows(project=project, area_ids=areas)
    expected = sorted(
        Grade.objects.filter(assignment__radiograph__project=project, assignment__status=Assignment.Status.SUBMITTED)
        .values_list("assignment__radiograph_id", "area_id", "assignment__reader_id", "value")
    )
    assert rows.dtype == np.int64 and rows.shape == (2976 - 31, 4)
    assert [tuple(r) for r in rows.tolist()] == expected


def test_part_changes_keeps_rows_within_tolerance_and_writes_the_rest() -> None:
    def labels(keys, label, posterior, run_id):
        n = len(keys)
        return label_store.PartLabels(
            key=np.asarray(keys, dtype=np.int64), run_id=np.full(n, run_id), label=np.asarray(label),
            posterior=np.asarray(posterior, dtype=float), is_gold=np.zeros(n, bool), n_readers=np.full(n, 3),
            spread=np.zeros(n, np.int64),
        )  # fmt: skip

    old = labels([1, 2, 3], [0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]], run_id=7)
    new = labels([2, 3, 4], [1, 0, 0], [[0.2005, 0.7995], [0.6, 0.4], [1.0, 0.0]], run_id=8)
    changes = label_store.part_changes(new=new, old=old)
    assert changes.written.key.tolist() == [3, 4]  # 2 moved by 5e-4 only: kept as stored
    assert changes.closed.key.tolist() == [1, 3] and changes.closed.run_id.tolist() == [7, 7]
    assert changes.state.key.tolist() == [2, 3, 4] and changes.state.run_id.tolist() == [7, 8, 8]
    assert changes.state.posterior[0].tolist() == [0.2, 0.8]  # the stored posterior, not the new one
