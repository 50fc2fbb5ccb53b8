"""Writes of the consensus app: compute and store runs, request recomputes, record adjudications.

The maths lives in `aggregation.py`; this module turns submitted grades into the long rows it
takes and its result back into rows. Hands and feet are fused apart: each (body part, maximum
grade) pair is its own grade grid, so feet erosion keeps its 0-10 scale and readers' foot habits
do not blur their hand profiles.
"""
from __future__ import annotations

import logging
import math
import time
import traceback
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotation.models import Assignment, Grade, JointArea, Project, Radiograph

from .aggregation import AGGREGATORS, AggregationResult, aggregate
from .models import AdjudicatedLabel, ConsensusLabel, ConsensusRun, ConsensusSettings, ReaderEstimate

logger = logging.getLogger(__name__)

# Aggregators re-run beside the chosen one to show how much the choice matters. GLAD and MACE are
# left out of the automatic comparison: on a few thousand tasks they take seconds each, on every
# recompute; `manage.py compute_consensus --compare` can still ask for them.
COMPARED_AGGREGATORS: tuple[str, ...] = ("DawidSkene", "MajorityVote", "Wawa", "OneCoinDawidSkene")

# A pseudo-reader's grades, e.g. a model version's: {(radiograph_id, area_id): grade}.
ExtraLabels = Mapping[str, Mapping[tuple[int, int], int]]


class ConsensusError(Exception):
    """The consensus cannot be computed as asked (unknown aggregator, bad parameters)."""


@dataclass
class _Part:
    """One grade grid of a dimension: the long rows handed to `aggregate` and their keys."""

    body_part: str
    max_grade: int
    tasks: list[tuple[int, int]] = field(default_factory=list)  # (radiograph_id, area_id) by task index
    rows: list[tuple[int, str, int]] = field(default_factory=list)  # (task index, worker key, grade)
    gold: dict[int, int] = field(default_factory=dict)

    def task_index(self, key: tuple[int, int], index: dict[tuple[int, int], int]) -> int:
        if key not in index:
            index[key] = len(self.tasks)
            self.tasks.append(key)
        return index[key]


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


def _collect_parts(*, project: Project, dimension: str, extra_labels: ExtraLabels | None) -> dict[tuple[str, int], _Part]:
    areas = {
        area.pk: area
        for area in JointArea.objects.filter(scheme_id=project.scheme_id, dimension=dimension)
    }
    grades = Grade.objects.filter(
        assignment__radiograph__project=project,
        assignment__status=Assignment.Status.SUBMITTED,
        area__dimension=dimension,
    ).values_list("assignment__radiograph_id", "area_id", "assignment__reader_id", "value")
    parts: dict[tuple[str, int], _Part] = {}
    indexes: dict[tuple[str, int], dict[tuple[int, int], int]] = defaultdict(dict)

    def part_of(area_id: int) -> tuple[tuple[str, int], _Part]:
        area = areas[area_id]
        key = (area.body_part, area.max_grade)
        if key not in parts:
            parts[key] = _Part(body_part=area.body_part, max_grade=area.max_grade)
        return key, parts[key]

    for radiograph_id, area_id, reader_id, value in grades.order_by("assignment__radiograph_id", "area_id", "assignment__reader_id"):
        key, part = part_of(area_id)
        task = part.task_index((radiograph_id, area_id), indexes[key])
        part.rows.append((task, reader_key(reader_id), int(value)))
    for name, labels in (extra_labels or {}).items():
        for (radiograph_id, area_id), value in labels.items():
            if area_id not in areas:
                continue
            key, part = part_of(area_id)
            # A pseudo-reader joins readers; it never makes a consensus on its own.
            task = indexes[key].get((radiograph_id, area_id))
            if task is not None:
                part.rows.append((task, str(name), int(value)))
    for (radiograph_id, area_id), grade in adjudicated_gold(project=project, dimension=dimension).items():
        if area_id not in areas:
            continue
        key, part = part_of(area_id)
        part.gold[part.task_index((radiograph_id, area_id), indexes[key])] = grade
    return dict(sorted(parts.items()))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


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
) -> ConsensusRun:
    """Fuse the project's submitted grades of one dimension and store the run with its labels.

    Only submitted assignments count. Adjudicated grades go in as gold. `extra_labels` adds
    pseudo-readers (a model version's grades) to the fit; that is a lead's decision and is
    recorded on the run. A failure is stored as a failed run with its error and returned, so the
    dashboard can say what went wrong; nothing of the failed attempt's labels is kept.
    """
    if aggregator not in AGGREGATORS:
        raise ConsensusError(f"unknown aggregator {aggregator!r}; choose one of {', '.join(AGGREGATORS)}")
    started = time.perf_counter()
    base = {
        "project": project,
        "dimension": dimension,
        "aggregator": aggregator,
        "params": _jsonable(dict(params or {})),
        "trigger": trigger,
        "requested_by": requested_by,
        "includes_model": bool(extra_labels),
    }
    try:
        parts = _collect_parts(project=project, dimension=dimension, extra_labels=extra_labels)
        fitted = []
        for part in parts.values():
            frame = pd.DataFrame(part.rows, columns=["task", "worker", "label"])
            n_grades = part.max_grade + 1
            result = aggregate(frame, n_grades=n_grades, aggregator=aggregator, gold=part.gold, params=params)
            comparison = _compare(frame, n_grades, result, part.gold, compare_with) if len(frame) else {}
            fitted.append(_PartResult(part=part, result=result, comparison=comparison))
        return _run_store(base=base, fitted=fitted, duration_s=time.perf_counter() - started)
    except Exception as error:  # noqa: BLE001 - every failure becomes a visible failed run
        logger.exception("consensus of %s %s failed", project, dimension)
        return _run_store_failed(
            base=base,
            error=f"{type(error).__name__}: {error}\n\n{traceback.format_exc(limit=5)}",
            duration_s=time.perf_counter() - started,
        )


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
def _run_store(*, base: dict, fitted: list[_PartResult], duration_s: float) -> ConsensusRun:
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
        **{**base, "params": _jsonable(results[0].params) if results else base["params"]},
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
        comparison=_comparison_summary(fitted),
        library_versions=results[0].versions if results else {},
    )
    labels = []
    estimates = []
    for item in fitted:
        part, result = item.part, item.result
        given: dict[int, list[int]] = defaultdict(list)
        for task, _worker, grade in part.rows:
            given[task].append(grade)
        log_n = math.log(part.max_grade + 1)
        for i, task in enumerate(result.tasks):
            radiograph_id, area_id = part.tasks[task]
            posterior = result.posterior[i]
            grades = given.get(task, [])
            nonzero = posterior[posterior > 0]
            labels.append(
                ConsensusLabel(
                    run=run,
                    radiograph_id=radiograph_id,
                    area_id=area_id,
                    label=result.labels[task],
                    posterior=[float(p) for p in posterior],
                    is_gold=task in part.gold,
                    n_readers=len(grades),
                    spread=(max(grades) - min(grades)) if grades else 0,
                    uncertainty=float(-(nonzero * np.log(nonzero)).sum() / log_n),
                )
            )
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
    ConsensusLabel.objects.bulk_create(labels, batch_size=2000)
    ReaderEstimate.objects.bulk_create(estimates)
    return run


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
                radiograph_id, area_id = item.part.tasks[task]
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
    return [
        consensus_compute(project=project, dimension=dimension, aggregator=name, trigger=trigger, requested_by=requested_by)
        for dimension in dimensions
    ]


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
