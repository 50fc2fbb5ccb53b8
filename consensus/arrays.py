"""Rows to arrays: a project's submitted grades, adjudicated gold and pseudo-readers as the label
arrays `aggregation.aggregate` takes, one grade grid at a time.

Hands and feet are fused apart: each (body part, maximum grade) pair is its own grade grid, so
feet erosion keeps its 0-10 scale and readers' foot habits do not blur their hand profiles.
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models.expressions import RawSQL
from numpy.typing import NDArray

from annotation.models import Assignment, Grade, JointArea, Project

from .models import AdjudicatedLabel


# A pseudo-reader's grades, e.g. a model version's: {(radiograph_id, area_id): grade}.
ExtraLabels = Mapping[str, Mapping[tuple[int, int], int]]


@dataclass
class LabelArrays:
    """One grade grid of a dimension: the label arrays handed to `aggregate` and their keys.

    Arrays rather than row tuples: a large study has a million grades, and a Python object per
    grade costs more than the whole EM.
    """

    body_part: str
    max_grade: int
    tasks: NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))  # (radiograph_id, area_id) by task index
    task: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # task index of each label
    worker: NDArray[np.object_] = field(default_factory=lambda: np.zeros(0, dtype=object))  # worker key of each label
    label: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    gold: dict[int, int] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        # Workers stay Python objects: pandas would copy them into its string type first.
        return pd.DataFrame({"task": self.task, "worker": pd.Series(self.worker, dtype=object), "label": self.label})


def reader_key(user_id: int) -> str:
    # Workers are strings so that readers and pseudo-readers ("model:v3") share one column type.
    return f"reader:{user_id}"


def reader_of_worker(worker: Hashable) -> int | None:
    """The user id behind a worker key, or None for a pseudo-reader."""
    text = str(worker)
    return int(text.split(":", 1)[1]) if text.startswith("reader:") else None


def adjudicated_gold(*, project: Project, dimension: str) -> dict[tuple[int, int], int]:
    """The newest adjudicated grade of every (radiograph, area) of the project and dimension."""
    gold: dict[tuple[int, int], int] = {}
    rows = (
        AdjudicatedLabel.objects.filter(radiograph__project=project, area__dimension=dimension)
        .order_by("radiograph_id", "area_id", "-created_at", "-id")
        .values_list("radiograph_id", "area_id", "grade")
    )
    for radiograph_id, area_id, grade in rows:
        gold.setdefault((radiograph_id, area_id), grade)
    return gold


def grade_rows(*, project: Project, area_ids: Sequence[int], assignment_ids: Sequence[int] | None = None) -> NDArray[np.int64]:
    """Submitted grades of the given areas as an (n, 4) array: radiograph, area, reader, value.

    Sorted by radiograph, area and reader, so task numbering does not depend on the database's
    row order. `assignment_ids` limits the read to those reads. On PostgreSQL the rows come as
    one binary value read by numpy in place (`_binary_rows`).
    """
    rows = Grade.objects.filter(
        assignment__radiograph__project=project,
        assignment__status=Assignment.Status.SUBMITTED,
        area_id__in=list(area_ids),
    )
    if assignment_ids is not None:
        rows = rows.filter(assignment_id__in=list(assignment_ids))
    rows = (
        rows.order_by()  # Grade's default ordering would add a join and a sort the array does not need
        .values_list("assignment__radiograph_id", "area_id", "assignment__reader_id", "value")
    )
    if not area_ids or (assignment_ids is not None and not len(assignment_ids)):
        return np.zeros((0, 4), dtype=np.int64)
    if connection.vendor == "postgresql":
        sql, params = rows.query.sql_with_params()
        data = _binary_rows(sql, params, [("radiograph", "i4"), ("area", "i4"), ("reader", "i4"), ("value", "i4")])
        if data is None:
            return np.zeros((0, 4), dtype=np.int64)
        array = data.view(">i4").reshape(-1, 4).astype(np.int64)
    else:
        array = np.array(list(rows), dtype=np.int64).reshape(-1, 4)
    return array[np.lexsort((array[:, 2], array[:, 1], array[:, 0]))]


@dataclass(frozen=True)
class GradeSnapshot:
    """The submitted grades of one dimension as a run read them, and the reads they came from.

    A read can only change the consensus by being submitted or taken back (a submitted read's
    grades are closed to saves), so the next run compares the submitted reads, a small query,
    and reads the grades of the reads that differ instead of every grade of the project.
    """

    area_ids: NDArray[np.int64]  # the dimension's areas, sorted
    reads: NDArray[np.int64]  # (m, 4): assignment id, submitted at (microseconds), radiograph, reader; sorted by id
    rows: NDArray[np.int64]  # (n, 4): grade_rows' radiograph, area, reader, value


# Above this share of reads changed since the snapshot, one full read is cheaper than the diff.
SNAPSHOT_MAX_CHANGED = 0.2


def _binary_rows(sql: str, params: Sequence, columns: Sequence[tuple[str, str]]) -> NDArray | None:
    """Rows of `sql` as one binary value of fixed-width big-endian columns, read by numpy in place:
    psycopg hands over each row of a result or of a COPY as its own Python object, which costs
    more than the query itself at a million grades, and parsing text costs seconds."""
    send = {"i4": "int4send({0}::int4)", "i8": "int8send({0}::int8)"}
    names = [f"c{i}" for i in range(len(columns))]
    packed = " || ".join(send[kind].format(name) for name, (_label, kind) in zip(names, columns))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT string_agg({packed}, ''::bytea) FROM ({sql}) AS t ({', '.join(names)})", params)
        (data,) = cursor.fetchone()
    if not data:
        return None
    return np.frombuffer(bytes(data), dtype=np.dtype([(label, ">" + kind) for label, kind in columns]))


def submitted_reads(*, project: Project) -> NDArray[np.int64]:
    """The project's submitted reads as an (m, 4) array sorted by assignment id: id, submitted at
    in microseconds since the epoch (0 if unknown), radiograph, reader."""
    reads = Assignment.objects.filter(radiograph__project=project, status=Assignment.Status.SUBMITTED).order_by()
    if connection.vendor == "postgresql":
        # The timestamp as whole microseconds, the resolution PostgreSQL stores.
        at = RawSQL(f'COALESCE((EXTRACT(EPOCH FROM "{Assignment._meta.db_table}"."submitted_at") * 1000000)::int8, 0)', [])
        sql, params = reads.annotate(at_us=at).values_list("pk", "at_us", "radiograph_id", "reader_id").query.sql_with_params()
        data = _binary_rows(sql, params, [("id", "i4"), ("at", "i8"), ("radiograph", "i4"), ("reader", "i4")])
        if data is None:
            return np.zeros((0, 4), dtype=np.int64)
        array = np.stack([data[name].astype(np.int64) for name in ("id", "at", "radiograph", "reader")], axis=1)
    else:
        array = np.array(
            [
                (pk, round(at.timestamp() * 1_000_000) if at else 0, r, u)
                for pk, at, r, u in reads.values_list("pk", "submitted_at", "radiograph_id", "reader_id")
            ],
            dtype=np.int64,
        ).reshape(-1, 4)
    return array[np.argsort(array[:, 0], kind="stable")]


def _read_keys(reads: NDArray[np.int64]) -> NDArray[np.int64]:
    return (reads[:, 2] << 32) | reads[:, 3]  # (radiograph, reader): one read each


def grade_rows_update(
    *, project: Project, area_ids: Sequence[int], snapshot: GradeSnapshot | None
) -> tuple[NDArray[np.int64], GradeSnapshot, int | None]:
    """The submitted grades of `area_ids` (as `grade_rows` gives them), a snapshot of them, and
    how many reads differ from `snapshot` (None when every grade was read).

    With a snapshot of the same areas, the rows of reads taken back since are dropped and the
    grades of reads submitted since are read, by assignment; the result equals a full read
    (tested). The reads are listed before their grades are read, so a read submitted in between
    is read in full now and again, not twice, next time: rows are replaced per (radiograph, reader).
    """
    areas = np.asarray(sorted(area_ids), dtype=np.int64)
    reads = submitted_reads(project=project)
    usable = snapshot is not None and np.array_equal(snapshot.area_ids, areas)
    if usable:
        old = snapshot.reads
        at = np.searchsorted(old[:, 0], reads[:, 0])
        inside = at < len(old)
        same = np.zeros(len(reads), dtype=bool)
        same[inside] = (old[at[inside], 0] == reads[inside, 0]) & (old[at[inside], 1] == reads[inside, 1])
        kept = np.zeros(len(old), dtype=bool)
        kept[at[same]] = True
        added, gone = reads[~same], old[~kept]
        changed = len(added) + len(gone)
        usable = changed <= SNAPSHOT_MAX_CHANGED * max(len(reads), 1)
    if not usable:
        rows = grade_rows(project=project, area_ids=list(areas))
        return rows, GradeSnapshot(area_ids=areas, reads=reads, rows=rows), None
    if not changed:
        return snapshot.rows, GradeSnapshot(area_ids=areas, reads=reads, rows=snapshot.rows), 0
    rows = snapshot.rows
    drop = np.isin((rows[:, 0] << 32) | rows[:, 2], np.concatenate([_read_keys(added), _read_keys(gone)]))
    new = grade_rows(project=project, area_ids=list(areas), assignment_ids=added[:, 0].tolist()) if len(added) else rows[:0]
    rows = _rows_merge(rows[~drop], new)
    return rows, GradeSnapshot(area_ids=areas, reads=reads, rows=rows), changed


def _rows_merge(kept: NDArray[np.int64], new: NDArray[np.int64]) -> NDArray[np.int64]:
    """Sorted rows and a few more, in `grade_rows`' order, without sorting the whole again."""
    both = np.concatenate([kept, new])
    span = both.max(axis=0, initial=0) + 1
    if len(both) and float(span[0]) * float(span[1]) * float(span[2]) >= 2.0**62:
        return both[np.lexsort((both[:, 2], both[:, 1], both[:, 0]))]
    key = (both[:, 0] * span[1] + both[:, 1]) * span[2] + both[:, 2]  # (radiograph, area, reader) as one number
    new = new[np.argsort(key[len(kept):], kind="stable")]
    return np.insert(kept, np.searchsorted(key[: len(kept)], np.sort(key[len(kept):])), new, axis=0)


def label_arrays_collect(
    *, project: Project, dimension: str, extra_labels: ExtraLabels | None, snapshot: GradeSnapshot | None = None,
    read: dict | None = None,
) -> dict[tuple[str, int], LabelArrays]:
    """The label arrays of every grade grid of `dimension`, keyed by (body part, maximum grade):
    submitted grades, the pseudo-readers of `extra_labels` on tasks readers graded, and the
    adjudicated grades as gold (a gold-only task gets a task number of its own).

    With the `snapshot` of the grades an earlier run read, only the reads submitted or taken
    back since then are read (`grade_rows_update`); `read`, when given, receives the snapshot
    of this read ("snapshot") and how it was made ("reads_changed", None for a full read).
    """
    areas = {
        area.pk: area
        for area in JointArea.objects.filter(scheme_id=project.scheme_id, dimension=dimension)
    }
    grid_of = {pk: (area.body_part, area.max_grade) for pk, area in areas.items()}
    rows, fresh, changed = grade_rows_update(project=project, area_ids=sorted(areas), snapshot=snapshot)
    if read is not None:
        read["snapshot"], read["reads_changed"] = fresh, changed
    gold_all = adjudicated_gold(project=project, dimension=dimension)
    keys = sorted({grid_of[a] for a in np.unique(rows[:, 1]).tolist()} | {grid_of[a] for _r, a in gold_all if a in grid_of})
    readers = np.unique(rows[:, 2])
    reader_keys = np.array([reader_key(int(r)) for r in readers], dtype=object)
    parts: dict[tuple[str, int], LabelArrays] = {}
    for key in keys:
        in_grid = np.array([pk for pk, grid in grid_of.items() if grid == key], dtype=np.int64)
        mine = rows[np.isin(rows[:, 1], in_grid)]
        # Rows are sorted by (radiograph, area), so a task starts where the pair changes and its
        # number is its first appearance (what np.unique(axis=0) gives, in one pass).
        starts = np.ones(len(mine), dtype=bool)
        starts[1:] = (mine[1:, 0] != mine[:-1, 0]) | (mine[1:, 1] != mine[:-1, 1])
        pairs, task = mine[starts, :2], np.cumsum(starts) - 1
        part = LabelArrays(
            body_part=key[0],
            max_grade=key[1],
            tasks=pairs.astype(np.int64).reshape(-1, 2),
            task=task.astype(np.int64).ravel(),
            worker=reader_keys[np.searchsorted(readers, mine[:, 2])],
            label=mine[:, 3].astype(np.int64),
        )
        # A dict of every task only when pseudo-readers or gold need a lookup: at a million
        # grades building it costs more than reading the rows.
        needs_index = bool(extra_labels) or any(grid_of.get(a) == key for _r, a in gold_all)
        index = {(int(r), int(a)): i for i, (r, a) in enumerate(part.tasks.tolist())} if needs_index else {}
        extra_task, extra_worker, extra_label = [], [], []
        for name, labels in (extra_labels or {}).items():
            for (radiograph_id, area_id), value in labels.items():
                # A pseudo-reader joins readers; it never makes a consensus on its own.
                task_of = index.get((radiograph_id, area_id)) if grid_of.get(area_id) == key else None
                if task_of is not None:
                    extra_task.append(task_of)
                    extra_worker.append(str(name))
                    extra_label.append(int(value))
        if extra_task:
            part.task = np.concatenate([part.task, np.array(extra_task, dtype=np.int64)])
            part.worker = np.concatenate([part.worker, np.array(extra_worker, dtype=object)])
            part.label = np.concatenate([part.label, np.array(extra_label, dtype=np.int64)])
        added = []
        for (radiograph_id, area_id), grade in gold_all.items():
            if grid_of.get(area_id) != key:
                continue
            task_of = index.get((radiograph_id, area_id))
            if task_of is None:
                task_of = index[(radiograph_id, area_id)] = len(index)
                added.append((radiograph_id, area_id))
            part.gold[task_of] = grade
        if added:
            part.tasks = np.concatenate([part.tasks, np.array(added, dtype=np.int64)])
        parts[key] = part
    return parts
