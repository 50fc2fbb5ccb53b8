"""Writes of the consensus app: compute and store runs, request recomputes, record adjudications.

The maths lives in `aggregation.py`; this module turns submitted grades into the long rows it
takes and its result back into rows. Hands and feet are fused apart: each (body part, maximum
grade) pair is its own grade grid, so feet erosion keeps its 0-10 scale and readers' foot habits
do not blur their hand profiles.
"""
from __future__ import annotations

import io
import logging
import math
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from annotation.models import Assignment, Grade, GradeChange, JointArea, Membership, Patient, Project, Radiograph, Visit
from annotation.services import (
    GradeInput,
    assignment_submit,
    assignments_create,
    grade_bulk_save,
    membership_set,
    project_create,
    radiograph_add,
)
from scoring import readers as simulator

from .aggregation import AGGREGATORS, AggregationResult, aggregate
from .models import AdjudicatedLabel, ConsensusLabel, ConsensusRun, ConsensusSettings, ReaderEstimate
from .signals import consensus_run_stored

logger = logging.getLogger(__name__)

# Aggregators re-run beside the chosen one to show how much the choice matters. GLAD and MACE are
# left out of the automatic comparison: on a few thousand tasks they take seconds each, on every
# recompute; `manage.py compute_consensus --compare` can still ask for them.
COMPARED_AGGREGATORS: tuple[str, ...] = ("DawidSkene", "MajorityVote", "Wawa", "OneCoinDawidSkene")
# Above this many grades the automatic comparison is skipped: crowd-kit's OneCoinDawidSkene and
# Wawa alone take tens of seconds on a million grades, several times the consensus itself.
COMPARISON_MAX_LABELS = 200_000

# A pseudo-reader's grades, e.g. a model version's: {(radiograph_id, area_id): grade}.
ExtraLabels = Mapping[str, Mapping[tuple[int, int], int]]


class ConsensusError(Exception):
    """The consensus cannot be computed as asked (unknown aggregator, bad parameters)."""


@dataclass
class _Part:
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


def _reader_id(worker: Hashable) -> int | None:
    text = str(worker)
    return int(text.split(":", 1)[1]) if text.startswith("reader:") else None


def consensus_settings_get(*, project: Project) -> ConsensusSettings:
    state, _ = ConsensusSettings.objects.get_or_create(project=project)
    return state


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


def _grade_rows(*, project: Project, area_ids: Sequence[int]) -> NDArray[np.int64]:
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
        # One text value for all rows: psycopg hands over each row of a result or of a COPY as
        # its own Python object, which costs more than the query itself at this size.
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT string_agg(concat_ws(',', c0, c1, c2, c3), E'\\n') FROM ({sql}) AS t (c0, c1, c2, c3)", params
            )
            (text,) = cursor.fetchone()
        if not text:
            return np.zeros((0, 4), dtype=np.int64)
        array = pd.read_csv(io.StringIO(text), header=None, dtype=np.int64, engine="c").to_numpy()
    else:
        array = np.array(list(rows), dtype=np.int64).reshape(-1, 4)
    return array[np.lexsort((array[:, 2], array[:, 1], array[:, 0]))]


def _collect_parts(*, project: Project, dimension: str, extra_labels: ExtraLabels | None) -> dict[tuple[str, int], _Part]:
    areas = {
        area.pk: area
        for area in JointArea.objects.filter(scheme_id=project.scheme_id, dimension=dimension)
    }
    grid_of = {pk: (area.body_part, area.max_grade) for pk, area in areas.items()}
    rows = _grade_rows(project=project, area_ids=sorted(areas))
    gold_all = adjudicated_gold(project=project, dimension=dimension)
    keys = sorted({grid_of[a] for a in np.unique(rows[:, 1]).tolist()} | {grid_of[a] for _r, a in gold_all if a in grid_of})
    readers = np.unique(rows[:, 2])
    reader_keys = np.array([reader_key(int(r)) for r in readers], dtype=object)
    parts: dict[tuple[str, int], _Part] = {}
    for key in keys:
        in_grid = np.array([pk for pk, grid in grid_of.items() if grid == key], dtype=np.int64)
        mine = rows[np.isin(rows[:, 1], in_grid)]
        # Rows are sorted by (radiograph, area), so a task's number is its first appearance.
        pairs, task = np.unique(mine[:, :2], axis=0, return_inverse=True) if len(mine) else (np.zeros((0, 2), np.int64), np.zeros(0, np.int64))
        part = _Part(
            body_part=key[0],
            max_grade=key[1],
            tasks=pairs.astype(np.int64).reshape(-1, 2),
            task=task.astype(np.int64).ravel(),
            worker=reader_keys[np.searchsorted(readers, mine[:, 2])],
            label=mine[:, 3].astype(np.int64),
        )
        index = {(int(r), int(a)): i for i, (r, a) in enumerate(part.tasks.tolist())}
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


def jsonable(value: Any) -> Any:
    """`value` as JSON a JSONField stores on every database: string keys, numpy values as Python
    ones, and NaN or infinity as null (PostgreSQL's jsonb refuses them); anything else as text."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _compare(frame: pd.DataFrame, n_grades: int, main: AggregationResult, gold: dict[int, int], names: Sequence[str]) -> dict:
    labels = {main.aggregator: main.labels}
    for name in names:
        if name != main.aggregator:
            labels[name] = aggregate(frame, n_grades=n_grades, aggregator=name, gold=gold).labels
    ordered = list(labels)
    pairs = [
        [a, b, sum(labels[a][t] != labels[b].get(t) for t in labels[a])]
        for i, a in enumerate(ordered)
        for b in ordered[i + 1:]
    ]
    return {"aggregators": ordered, "labels": labels, "pairs": pairs}


@dataclass(frozen=True)
class _PartResult:
    part: _Part
    result: AggregationResult
    comparison: dict


def consensus_compute(
    *,
    project: Project,
    dimension: str,
    aggregator: str = "DawidSkene",
    params: Mapping[str, Any] | None = None,
    trigger: str = ConsensusRun.Trigger.COMMAND,
    requested_by: AbstractBaseUser | None = None,
    extra_labels: ExtraLabels | None = None,
    compare_with: Sequence[str] = COMPARED_AGGREGATORS,
    compare_max_labels: int | None = COMPARISON_MAX_LABELS,
    timings: dict[str, float] | None = None,
    announce: bool = True,
) -> ConsensusRun:
    """Fuse the project's submitted grades of one dimension and store the run with its labels.

    Only submitted assignments count. Adjudicated grades go in as gold. `extra_labels` adds
    pseudo-readers (a model version's grades) to the fit; that is a lead's decision and is
    recorded on the run. A failure is stored as a failed run with its error and returned, so the
    dashboard can say what went wrong; nothing of the failed attempt's labels is kept.

    The comparison with `compare_with` is skipped, and recorded as skipped, above
    `compare_max_labels` grades (None: never skipped): crowd-kit's aggregators take tens of
    seconds on a million grades, longer than the consensus itself. `timings`, when given, is
    filled with the seconds spent reading rows, fitting, comparing and storing.

    A stored run is announced (`consensus.signals.consensus_run_stored`) once it commits, unless
    `announce` is False because the caller announces several runs together.
    """
    if aggregator not in AGGREGATORS:
        raise ConsensusError(f"unknown aggregator {aggregator!r}; choose one of {', '.join(AGGREGATORS)}")
    started = time.perf_counter()
    base = {
        "project": project,
        "dimension": dimension,
        "aggregator": aggregator,
        "params": jsonable(dict(params or {})),
        "trigger": trigger,
        "requested_by": requested_by,
        "includes_model": bool(extra_labels),
    }
    try:
        clock = _Clock(timings)
        parts = _collect_parts(project=project, dimension=dimension, extra_labels=extra_labels)
        clock.lap("read_rows")
        n_labels = sum(len(part.label) for part in parts.values())
        compare = compare_max_labels is None or n_labels <= compare_max_labels
        fitted = []
        for part in parts.values():
            frame = part.frame()
            n_grades = part.max_grade + 1
            result = aggregate(frame, n_grades=n_grades, aggregator=aggregator, gold=part.gold, params=params)
            clock.lap("fit")
            comparison = _compare(frame, n_grades, result, part.gold, compare_with) if len(frame) and compare else {}
            clock.lap("compare")
            fitted.append(_PartResult(part=part, result=result, comparison=comparison))
        skipped = None if compare else f"{n_labels} grades, above the comparison limit of {compare_max_labels}"
        run = _run_store(base=base, fitted=fitted, duration_s=time.perf_counter() - started, comparison_skipped=skipped)
        clock.lap("store")
        if announce:
            consensus_runs_announce(runs=[run])
        return run
    except Exception as error:  # noqa: BLE001 - every failure becomes a visible failed run
        logger.exception("consensus of %s %s failed", project, dimension)
        return _run_store_failed(
            base=base,
            error=f"{type(error).__name__}: {error}\n\n{traceback.format_exc(limit=5)}",
            duration_s=time.perf_counter() - started,
        )


def consensus_runs_announce(*, runs: Sequence[ConsensusRun]) -> None:
    """Send `consensus_run_stored` for the successful `runs` of one project once they commit."""
    stored = [run for run in runs if run.status == ConsensusRun.Status.OK]
    if not stored:
        return
    project_id, run_ids = stored[0].project_id, [run.pk for run in stored]
    transaction.on_commit(lambda: consensus_run_stored.send(sender=ConsensusRun, project_id=project_id, run_ids=run_ids))


def _next_version(*, project: Project, dimension: str) -> int:
    # Writing the settings row first takes the project's write lock (a row lock on PostgreSQL, the
    # database write lock on SQLite), so two concurrent computes never pick the same version.
    state = consensus_settings_get(project=project)
    ConsensusSettings.objects.filter(pk=state.pk).update(request_seq=F("request_seq"))
    latest = ConsensusRun.objects.filter(project=project, dimension=dimension).order_by("-version").first()
    return (latest.version if latest else 0) + 1


@transaction.atomic
def _run_store_failed(*, base: dict, error: str, duration_s: float) -> ConsensusRun:
    version = _next_version(project=base["project"], dimension=base["dimension"])
    return ConsensusRun.objects.create(
        **base, version=version, status=ConsensusRun.Status.FAILED, error=error, duration_s=duration_s
    )


@transaction.atomic
def _run_store(*, base: dict, fitted: list[_PartResult], duration_s: float, comparison_skipped: str | None = None) -> ConsensusRun:
    version = _next_version(project=base["project"], dimension=base["dimension"])
    results = [item.result for item in fitted]
    readers = {w for r in results for w in r.reader_label_counts}
    few = sorted({w for r in results for w in r.few_label_readers})
    label_counts: dict[str, int] = defaultdict(int)
    for r in results:
        for worker, count in r.reader_label_counts.items():
            label_counts[worker] += count
    iterations = [r.iterations for r in results if r.iterations is not None]
    converged = [r.converged for r in results if r.converged is not None]
    run = ConsensusRun.objects.create(
        **{**base, "params": jsonable(results[0].params) if results else base["params"]},
        version=version,
        n_tasks=sum(r.n_tasks for r in results),
        n_readers=len(readers),
        n_labels=sum(r.n_labels for r in results),
        n_gold=sum(len(r.gold_tasks) for r in results),
        iterations=max(iterations) if iterations else None,
        converged=all(converged) if converged else None,
        duration_s=duration_s,
        few_label_readers=[_worker_summary(w, label_counts[w]) for w in few],
        parts=[
            {
                "body_part": item.part.body_part,
                "max_grade": item.part.max_grade,
                "n_tasks": item.result.n_tasks,
                "n_readers": item.result.n_workers,
                "n_labels": item.result.n_labels,
                "n_gold": len(item.result.gold_tasks),
                "iterations": item.result.iterations,
                "converged": item.result.converged,
            }
            for item in fitted
        ],
        comparison={"skipped": comparison_skipped} if comparison_skipped else _comparison_summary(fitted),
        library_versions=results[0].versions if results else {},
    )
    estimates = []
    _references_lock(project=base["project"])
    for item in fitted:
        part, result = item.part, item.result
        _labels_store(run=run, part=part, result=result)
        for worker, matrix in result.reader_confusion.items():
            reader_id = _reader_id(worker)
            if reader_id is None:
                continue  # pseudo-readers have no user row; their profile is the modeling app's
            estimates.append(
                ReaderEstimate(
                    run=run,
                    reader_id=reader_id,
                    body_part=part.body_part,
                    n_labels=result.reader_label_counts.get(worker, 0),
                    few_labels=worker in result.few_label_readers,
                    confusion=[[float(x) for x in row] for row in matrix],
                    support=[float(x) for x in result.reader_support[worker]],
                )
            )
    ReaderEstimate.objects.bulk_create(estimates)
    _labels_orphans_drop(run=run)
    return run


def _references_lock(*, project: Project) -> None:
    # What a foreign-key check does per row, once for the whole run: until this transaction ends
    # no radiograph of the project can be deleted, so none of the labels written next can lose
    # its film; a delete waits and then cascades to them through Django as usual.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {Radiograph._meta.db_table} WHERE project_id = %s FOR KEY SHARE", [project.pk])


def _labels_orphans_drop(*, run: ConsensusRun) -> None:
    """Drop labels whose radiograph or area was deleted between reading the grades and the lock."""
    ConsensusLabel.objects.filter(run=run).exclude(radiograph_id__in=Radiograph.objects.values("pk")).delete()
    ConsensusLabel.objects.filter(run=run).exclude(area_id__in=JointArea.objects.values("pk")).delete()


LABEL_COLUMNS = ("run_id", "radiograph_id", "area_id", "label", "posterior", "is_gold", "n_readers", "spread", "uncertainty")


def _labels_store(*, run: ConsensusRun, part: _Part, result: AggregationResult) -> None:
    """Store one grade grid's consensus labels, computed column-wise over all tasks at once."""
    if not result.tasks:
        return
    order = np.asarray(result.tasks, dtype=np.int64)
    n_tasks = len(part.tasks)
    counts = np.bincount(part.task, minlength=n_tasks)
    high = np.full(n_tasks, -1, dtype=np.int64)
    low = np.full(n_tasks, np.iinfo(np.int64).max, dtype=np.int64)
    np.maximum.at(high, part.task, part.label)
    np.minimum.at(low, part.task, part.label)
    spread = np.where(counts > 0, high - low, 0)[order]
    posterior = np.asarray(result.posterior, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(posterior > 0, posterior * np.log(np.where(posterior > 0, posterior, 1.0)), 0.0)
    uncertainty = -terms.sum(axis=1) / math.log(part.max_grade + 1)
    columns = {
        "radiograph_id": part.tasks[order, 0].tolist(),
        "area_id": part.tasks[order, 1].tolist(),
        "label": [result.labels[task] for task in result.tasks],
        "posterior": posterior.tolist(),
        "is_gold": np.isin(order, np.fromiter(part.gold, dtype=np.int64, count=len(part.gold))).tolist(),
        "n_readers": counts[order].tolist(),
        "spread": spread.tolist(),
        "uncertainty": [float(u) + 0.0 for u in uncertainty],  # + 0.0 turns -0.0 into 0.0
    }
    if connection.vendor == "postgresql":
        _labels_copy(run_id=run.pk, columns=columns)
        return
    ConsensusLabel.objects.bulk_create(
        (
            ConsensusLabel(run=run, **{name: values[i] for name, values in columns.items()})
            for i in range(len(order))
        ),
        batch_size=5000,
    )


def _labels_copy(*, run_id: int, columns: dict[str, list]) -> None:
    # COPY writes the rows as one text stream: about five times faster than INSERT batches for
    # the hundreds of thousands of labels of a large study. Every value is a number, a boolean or
    # a list of finite floats, whose Python text is also its JSON text (and three times quicker
    # to make than json.dumps), so nothing needs escaping in COPY's text format.
    table = ConsensusLabel._meta.db_table
    lines = [
        f"{run_id}\t{r}\t{a}\t{lab}\t{p}\t{'t' if g else 'f'}\t{n}\t{sp}\t{u!r}\n"
        for r, a, lab, p, g, n, sp, u in zip(*(columns[name] for name in LABEL_COLUMNS[1:]))
    ]
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({', '.join(LABEL_COLUMNS)}) FROM STDIN") as copy:
        copy.write("".join(lines))


class _Clock:
    """Adds the seconds since the previous lap to `timings[name]`; does nothing without timings."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now


def _worker_summary(worker: Hashable, labels: int) -> dict:
    reader_id = _reader_id(worker)
    if reader_id is None:
        return {"reader_id": None, "name": str(worker), "labels": labels}
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=reader_id).first()
    return {"reader_id": reader_id, "name": user.get_username() if user else str(worker), "labels": labels}


def _comparison_summary(fitted: list[_PartResult]) -> dict:
    """Label changes between aggregators, summed over the grade grids, with the changed tasks."""
    pairs: dict[tuple[str, str], int] = defaultdict(int)
    aggregators: list[str] = []
    changed: list[dict] = []
    n_tasks = 0
    for item in fitted:
        comparison = item.comparison
        if not comparison:
            continue
        n_tasks += len(item.result.tasks)
        for name in comparison["aggregators"]:
            if name not in aggregators:
                aggregators.append(name)
        for a, b, n in comparison["pairs"]:
            pairs[(a, b)] += n
        labels = comparison["labels"]
        main = item.result.aggregator
        for task, grade in labels[main].items():
            others = {name: labels[name][task] for name in labels if name != main and labels[name].get(task) != grade}
            if others:
                radiograph_id, area_id = (int(x) for x in item.part.tasks[task])
                changed.append({"radiograph_id": radiograph_id, "area_id": area_id, "label": grade, "others": others})
    return {
        "aggregators": aggregators,
        "n_tasks": n_tasks,
        "pairs": [[a, b, n] for (a, b), n in pairs.items()],
        # Capped: the list serves the dashboard's examples, not an audit.
        "changed": changed[:200],
        "n_changed": len(changed),
    }


# --------------------------------------------------------------------------- recompute requests


@transaction.atomic
def consensus_recompute_request(
    *,
    project: Project,
    delay_seconds: int | None = None,
    aggregator: str | None = None,
    trigger: str = ConsensusRun.Trigger.SUBMISSION,
    requested_by: AbstractBaseUser | None = None,
) -> int:
    """Ask for a recompute of every dimension; returns the request's sequence number.

    The task is enqueued after this transaction commits, `delay_seconds` later (the project's
    quiet time when None), and skips itself if a later request superseded it.
    """
    from .tasks import consensus_recompute_task

    consensus_settings_get(project=project)
    state = ConsensusSettings.objects.select_for_update().get(project=project)
    now = timezone.now()
    if state.request_seq == state.computed_seq:
        state.pending_since = now
    state.request_seq += 1
    state.requested_at = now
    state.save(update_fields=["request_seq", "requested_at", "pending_since"])
    seq = state.request_seq
    countdown = state.delay_seconds if delay_seconds is None else delay_seconds
    kwargs = {
        "project_id": project.pk,
        "seq": seq,
        "aggregator": aggregator,
        "trigger": str(trigger),
        "requested_by_id": requested_by.pk if requested_by is not None else None,
    }
    transaction.on_commit(lambda: consensus_recompute_task.apply_async(kwargs=kwargs, countdown=countdown))
    return seq


def consensus_recompute_after_submission(*, project_id: int) -> int | None:
    """Request a debounced recompute after a reader's submission, if the project wants one."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not consensus_settings_get(project=project).auto_recompute:
        return None
    return consensus_recompute_request(project=project, trigger=ConsensusRun.Trigger.SUBMISSION)


@transaction.atomic
def _recompute_claim(*, project_id: int, seq: int) -> str | None:
    """Decide whether request `seq` still needs a compute; if so mark it taken. Returns why not."""
    state = ConsensusSettings.objects.select_for_update().filter(project_id=project_id).first()
    if state is None:
        return "no request recorded"
    now = timezone.now()
    if state.computed_seq >= seq:
        return "already covered by a later compute"
    if state.request_seq > seq:
        waited = now - state.pending_since if state.pending_since else timedelta(0)
        if waited < timedelta(seconds=state.max_wait_seconds):
            return f"superseded by request {state.request_seq}"
    # Everything committed before now is read by the compute that follows, which covers every
    # request recorded so far, not only this one.
    state.computed_seq = state.request_seq
    state.pending_since = None
    state.compute_started_at = now
    state.save(update_fields=["computed_seq", "pending_since", "compute_started_at"])
    return None


def consensus_recompute(
    *,
    project_id: int,
    seq: int,
    aggregator: str | None = None,
    trigger: str = ConsensusRun.Trigger.SUBMISSION,
    requested_by_id: int | None = None,
) -> list[ConsensusRun]:
    """Run a requested recompute unless superseded: one run per dimension the scheme scores."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return []
    reason = _recompute_claim(project_id=project_id, seq=seq)
    if reason is not None:
        logger.info("consensus recompute %s of project %s skipped: %s", seq, project_id, reason)
        return []
    from django.contrib.auth import get_user_model

    requested_by = get_user_model().objects.filter(pk=requested_by_id).first() if requested_by_id else None
    name = aggregator or consensus_settings_get(project=project).aggregator
    dimensions = (
        JointArea.objects.filter(scheme_id=project.scheme_id).values_list("dimension", flat=True).distinct().order_by("dimension")
    )
    runs = [
        consensus_compute(
            project=project, dimension=dimension, aggregator=name, trigger=trigger, requested_by=requested_by, announce=False
        )
        for dimension in dimensions
    ]
    consensus_runs_announce(runs=runs)
    return runs


# --------------------------------------------------------------------------- adjudication


@transaction.atomic
def adjudicated_label_create(
    *,
    radiograph: Radiograph,
    area: JointArea,
    grade: int,
    lead: AbstractBaseUser,
    note: str = "",
    recompute: bool = True,
) -> AdjudicatedLabel:
    """Record a lead's final grade; it becomes gold in the next run, which is requested here."""
    label = AdjudicatedLabel.objects.create(radiograph=radiograph, area=area, grade=grade, lead=lead, note=note)
    if recompute and consensus_settings_get(project=radiograph.project).auto_recompute:
        consensus_recompute_request(
            project=radiograph.project, trigger=ConsensusRun.Trigger.DASHBOARD, requested_by=lead
        )
    return label


# --------------------------------------------------------------------------- simulated studies


def _project_remove(*, slug: str) -> bool:
    """Delete a simulated project and its placeholder image files; True if one existed."""
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        return False
    paths = [name for name in project.radiographs.values_list("image", flat=True) if name]
    with transaction.atomic():
        # Children first, each a set-based delete, so a million grades are not collected in memory.
        AdjudicatedLabel.objects.filter(radiograph__project=project).delete()
        ConsensusLabel.objects.filter(run__project=project).delete()
        GradeChange.objects.filter(grade__assignment__radiograph__project=project).delete()
        Grade.objects.filter(assignment__radiograph__project=project).delete()
        project.delete()
    from django.core.files.storage import default_storage

    for name in paths:
        if default_storage.exists(name):
            default_storage.delete(name)
    return True


def _study_readers(*, project: Project, usernames: Sequence[str]) -> list[AbstractBaseUser]:
    from django.contrib.auth import get_user_model

    users = []
    for username in usernames:
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()  # simulated readers never log in
            user.save(update_fields=["password"])
        membership_set(user=user, project=project, role=Membership.Role.READER)
        users.append(user)
    return users


def _placeholder_png(key: str) -> bytes:
    # 8x8 grey pixels drawn from the key's hash: distinct bytes per film, as radiograph_add
    # identifies a film by its checksum.
    import hashlib

    from PIL import Image

    digest = hashlib.sha256(key.encode()).digest() + hashlib.sha256(key.encode() + b"/2").digest()
    buffer = io.BytesIO()
    Image.frombytes("L", (8, 8), digest).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class ValidationFigures:
    """One dimension of a simulated study: the consensus against the known truth."""

    dimension: str
    n_tasks: int
    n_labels: int
    accuracy: dict[str, float]  # aggregator -> share of joints given their true grade
    confusion_mad: float  # mean |estimated - true| over every cell of every reader's matrix
    run: ConsensusRun


def simulated_study_import(*, study: simulator.SimulatedStudy, slug: str, name: str) -> Project:
    """Load a simulated study the way a real one arrives: films, assignments, saved and submitted grades.

    A project with `slug` is deleted first, with its runs and files, so importing the same study
    twice leaves one identical project. Automatic recomputes are switched off for it: the caller
    computes when every reading is in.
    """
    _project_remove(slug=slug)
    per_film = Counter(read.film for read in study.reads)
    project = project_create(name=name, slug=slug, readers_per_radiograph=max(per_film.values(), default=1))
    ConsensusSettings.objects.create(project=project, auto_recompute=False)
    users = _study_readers(project=project, usernames=[f"{slug}-{reader}" for reader in study.readers])
    areas = {
        (area.dimension, area.joint.name): area
        for area in JointArea.objects.filter(scheme_id=project.scheme_id, body_part="hand").select_related("joint")
    }
    films = [
        radiograph_add(
            project=project,
            pseudonym=film.pseudonym,
            laterality=film.laterality,
            image_bytes=_placeholder_png(f"{slug}/{i}"),
            image_suffix="png",
            width=8,
            height=8,
        ).radiograph
        for i, film in enumerate(study.films)
    ]
    for read in study.reads:
        (assignment,) = assignments_create(radiograph=films[read.film], readers=[users[read.reader]])
        items = [
            GradeInput(area=areas[(dimension, joint)], value=value, version=0)
            for dimension, grades in read.grades.items()
            for joint, value in grades.items()
            if (dimension, joint) in areas
        ]
        grade_bulk_save(assignment=assignment, user=users[read.reader], items=items)
        assignment_submit(assignment=assignment)
    return project


def consensus_validate(
    *, study: simulator.SimulatedStudy, slug: str, params: Mapping[str, Any] | None = None
) -> list[ValidationFigures]:
    """Import `study`, compute majority vote and Dawid-Skene per dimension, and score both against the truth.

    Majority vote is computed first, so the project's latest consensus is Dawid-Skene's.
    """
    project = simulated_study_import(study=study, slug=slug, name=f"Consensus validation ({slug})")
    radiographs = list(project.radiographs.order_by("id").values_list("id", flat=True))
    areas = {
        (area.dimension, area.joint.name): area.pk
        for area in JointArea.objects.filter(scheme_id=project.scheme_id, body_part="hand").select_related("joint")
    }
    usernames = {f"{slug}-{reader}": i for i, reader in enumerate(study.readers)}
    out = []
    for dimension in sorted(study.confusion):
        truth = {
            (radiographs[i], areas[(dimension, joint)]): grade
            for i, film in enumerate(study.films)
            for joint, grade in film.truth.get(dimension, {}).items()
            if (dimension, joint) in areas
        }
        accuracy = {}
        run = None
        for aggregator in ("MajorityVote", "DawidSkene"):
            run = consensus_compute(
                project=project, dimension=dimension, aggregator=aggregator,
                params=params if aggregator == "DawidSkene" else None, compare_with=(),
            )  # fmt: skip
            if run.status != ConsensusRun.Status.OK:
                raise ConsensusError(f"{aggregator} on {dimension} failed: {run.error.splitlines()[0]}")
            labels = {(r, a): label for r, a, label in run.labels.values_list("radiograph_id", "area_id", "label")}
            accuracy[aggregator] = simulator.label_accuracy(labels, truth)
        estimated = {
            usernames[username]: np.asarray(confusion)
            for username, confusion in run.reader_estimates.values_list("reader__username", "confusion")
        }
        true = dict(enumerate(study.confusion[dimension]))
        out.append(
            ValidationFigures(
                dimension=dimension,
                n_tasks=run.n_tasks,
                n_labels=run.n_labels,
                accuracy=accuracy,
                confusion_mad=simulator.confusion_mad(estimated, true),
                run=run,
            )
        )
    return out


@dataclass(frozen=True)
class SyntheticProject:
    project: Project
    n_labels: int
    reused: bool
    build_s: float


# Grade frequencies of a typical RA cohort: most joints undamaged, severe damage rare.
SYNTHETIC_PREVALENCE = {"erosion": (0.55, 0.2, 0.1, 0.07, 0.05, 0.03), "jsn": (0.5, 0.22, 0.14, 0.09, 0.05)}


def synthetic_project_create(
    *, slug: str, n_labels: int, n_readers: int = 5, per_radiograph: int = 3, seed: int = 0, rebuild: bool = False
) -> SyntheticProject:
    """A project of hand films holding about `n_labels` submitted grades from simulated readers.

    For timing the consensus on realistic volumes, so rows go in with set-based writes: patients,
    visits, films and assignments by `bulk_create`, grades by COPY on PostgreSQL (`bulk_create`
    elsewhere), and each grade's history row by one INSERT ... SELECT. Films have no image file.
    A project of that slug with the same number of grades is reused unless `rebuild`.
    """
    started = time.perf_counter()
    existing = Project.objects.filter(slug=slug).first()
    if existing is not None and not rebuild:
        count = Grade.objects.filter(assignment__radiograph__project=existing).count()
        expected = _synthetic_size(n_labels, per_radiograph, existing.scheme_id)[1]
        if count == expected:
            return SyntheticProject(project=existing, n_labels=count, reused=True, build_s=time.perf_counter() - started)
    _project_remove(slug=slug)
    project = project_create(name=f"Consensus benchmark ({slug})", slug=slug, readers_per_radiograph=per_radiograph)
    ConsensusSettings.objects.create(project=project, auto_recompute=False)
    users = _study_readers(project=project, usernames=[f"bench-reader-{i + 1}" for i in range(n_readers)])
    n_films, total = _synthetic_size(n_labels, per_radiograph, project.scheme_id)
    rng = np.random.default_rng(seed)
    areas = list(JointArea.objects.filter(scheme_id=project.scheme_id, body_part="hand").order_by("dimension", "order"))
    with transaction.atomic():
        patients = Patient.objects.bulk_create(
            [Patient(project=project, pseudonym=f"BENCH-{i:07d}") for i in range((n_films + 1) // 2)], batch_size=5000
        )
        visits = Visit.objects.bulk_create([Visit(patient=p, timepoint="baseline") for p in patients], batch_size=5000)
        films = Radiograph.objects.bulk_create(
            [
                Radiograph(
                    project=project, visit=visits[i // 2], laterality="LR"[i % 2], image="", width=8, height=8,
                    checksum=f"{slug}-{i}", status=Radiograph.Status.READ, submitted_reads=per_radiograph,
                )
                for i in range(n_films)
            ],
            batch_size=5000,
        )  # fmt: skip
        design = simulator.reader_sets(n_items=n_films, n_readers=n_readers, per_item=per_radiograph, rng=rng)
        now = timezone.now()
        assignments = Assignment.objects.bulk_create(
            [
                Assignment(reader=users[r], radiograph=film, status=Assignment.Status.SUBMITTED, started_at=now, submitted_at=now)
                for film, readers in zip(films, design)
                for r in readers
            ],
            batch_size=5000,
        )
        # Grades: every reading scores every hand area through its reader's confusion matrix.
        values = np.empty((len(assignments), len(areas)), dtype=np.int64)
        reader_of = design.ravel()
        for dimension, prevalence in SYNTHETIC_PREVALENCE.items():
            cols = [j for j, area in enumerate(areas) if area.dimension == dimension]
            n_grades = len(prevalence)
            truth = rng.choice(n_grades, size=(n_films, len(cols)), p=np.asarray(prevalence) / sum(prevalence))
            truth_per_reading = np.repeat(truth, per_radiograph, axis=0)
            confusion = simulator.laplace_confusions(n_readers, n_grades, rng)
            for r in range(n_readers):
                rows = reader_of == r
                values[np.ix_(rows, cols)] = simulator.draw_grades(truth_per_reading[rows], confusion[r], rng)
        assignment_ids = np.repeat([a.pk for a in assignments], len(areas))
        area_ids = np.tile([a.pk for a in areas], len(assignments))
        _grades_insert(assignment_ids=assignment_ids, area_ids=area_ids, values=values.ravel(), now=now)
        _grade_history_insert(project=project, now=now)
    if connection.vendor == "postgresql":
        # Fresh statistics for the planner: without them, queries over a million new rows can pick
        # plans that take minutes. Autovacuum would do it later; the benchmark measures now.
        tables = ", ".join(m._meta.db_table for m in (Radiograph, Assignment, Grade, GradeChange))
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {tables}")
    return SyntheticProject(project=project, n_labels=total, reused=False, build_s=time.perf_counter() - started)


def _synthetic_size(n_labels: int, per_radiograph: int, scheme_id: int) -> tuple[int, int]:
    per_reading = JointArea.objects.filter(scheme_id=scheme_id, body_part="hand").count()
    n_films = max(1, round(n_labels / (per_reading * per_radiograph)))
    return n_films, n_films * per_radiograph * per_reading


def _grades_insert(*, assignment_ids: NDArray[np.int64], area_ids: NDArray[np.int64], values: NDArray[np.int64], now) -> None:
    if connection.vendor == "postgresql":
        stamp = now.isoformat()
        text = "".join(
            f"{a}\t{b}\t{v}\tmanual\t1\t{stamp}\n" for a, b, v in zip(assignment_ids.tolist(), area_ids.tolist(), values.tolist())
        )
        table = Grade._meta.db_table
        with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {table} (assignment_id, area_id, value, source, version, updated_at) FROM STDIN"
        ) as copy:
            copy.write(text)
        return
    Grade.objects.bulk_create(
        (
            Grade(assignment_id=a, area_id=b, value=v, version=1)
            for a, b, v in zip(assignment_ids.tolist(), area_ids.tolist(), values.tolist())
        ),
        batch_size=10000,
    )


def _grade_history_insert(*, project: Project, now) -> None:
    # One history row per grade, as grade_bulk_save writes for a first save: built by the database
    # from the grade rows themselves rather than shipped back and forth a row at a time.
    change, grade, assignment, radiograph = (m._meta.db_table for m in (GradeChange, Grade, Assignment, Radiograph))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {change} (grade_id, changed_by_id, changed_at, old_value, new_value, source, version) "
            f"SELECT g.id, a.reader_id, %s, NULL, g.value, g.source, g.version FROM {grade} g "
            f"JOIN {assignment} a ON a.id = g.assignment_id JOIN {radiograph} r ON r.id = a.radiograph_id "
            f"WHERE r.project_id = %s",
            [now, project.pk],
        )
