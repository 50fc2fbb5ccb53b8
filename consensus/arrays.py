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
        return pd.DataFrame({"task": self.task, "worker": self.worker, "label": self.label})


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


def grade_rows(*, project: Project, area_ids: Sequence[int]) -> NDArray[np.int64]:
    """Submitted grades of the given areas as an (n, 4) array: radiograph, area, reader, value.

    Sorted by radiograph, area and reader, so task numbering does not depend on the database's
    row order. On PostgreSQL the rows come through COPY and are parsed by pandas: for a million
    grades that is several times faster than building a Python tuple per row.
    """
    rows = (
        Grade.objects.filter(
            assignment__radiograph__project=project,
            assignment__status=Assignment.Status.SUBMITTED,
            area_id__in=list(area_ids),
        )
        .order_by()  # Grade's default ordering would add a join and a sort the array does not need
        .values_list("assignment__radiograph_id", "area_id", "assignment__reader_id", "value")
    )
    if not area_ids:
        return np.zeros((0, 4), dtype=np.int64)
    if connection.vendor == "postgresql":
        # One binary value for all rows, four big-endian int32 per grade, read by numpy in place:
        # psycopg hands over each row of a result or of a COPY as its own Python object, which
        # costs more than the query itself at a million grades, and parsing text costs seconds.
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT string_agg(int4send(c0::int4) || int4send(c1::int4) || int4send(c2::int4) || int4send(c3::int4), "
                f"''::bytea) FROM ({sql}) AS t (c0, c1, c2, c3)",
                params,
            )
            (data,) = cursor.fetchone()
        if not data:
            return np.zeros((0, 4), dtype=np.int64)
        array = np.frombuffer(bytes(data), dtype=">i4").reshape(-1, 4).astype(np.int64)
    else:
        array = np.array(list(rows), dtype=np.int64).reshape(-1, 4)
    return array[np.lexsort((array[:, 2], array[:, 1], array[:, 0]))]


def label_arrays_collect(*, project: Project, dimension: str, extra_labels: ExtraLabels | None) -> dict[tuple[str, int], LabelArrays]:
    """The label arrays of every grade grid of `dimension`, keyed by (body part, maximum grade):
    submitted grades, the pseudo-readers of `extra_labels` on tasks readers graded, and the
    adjudicated grades as gold (a gold-only task gets a task number of its own)."""
    areas = {
        area.pk: area
        for area in JointArea.objects.filter(scheme_id=project.scheme_id, dimension=dimension)
    }
    grid_of = {pk: (area.body_part, area.max_grade) for pk, area in areas.items()}
    rows = grade_rows(project=project, area_ids=sorted(areas))
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
