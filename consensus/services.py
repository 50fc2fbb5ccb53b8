"""Writes of the consensus app: compute and store runs, announce them, record adjudications.

The maths lives in `aggregation.py` and the rows-to-arrays step in `arrays.py`; this module fits
the arrays and turns the result back into rows. Debounced recomputes are `recompute.py`'s, and
the simulated studies and benchmark projects `studies.py`'s.
"""
from __future__ import annotations

import logging
import time
import traceback
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F

from annotation.models import JointArea, Project, Radiograph
from scoring.jsonable import jsonable

from . import agreement_report, label_store, selectors
from .aggregation import AGGREGATORS, DEFAULT_AGGREGATOR, AggregationResult, aggregate, aggregate_guarded, compare_aggregators
from .arrays import ExtraLabels, GradeSnapshot, LabelArrays, label_arrays_collect, reader_of_worker
from .longitudinal import longitudinal_refit
from .models import AdjudicatedLabel, AgreementReportCache, ConsensusLabel, ConsensusRun, ConsensusSettings, ConsensusState, Fusion, ReaderEstimate
from .signals import consensus_run_stored


logger = logging.getLogger(__name__)


# Aggregators re-run beside the chosen one to show how much the choice matters. GLAD and MACE are
# left out of the automatic comparison: on a few thousand tasks they take seconds each, on every
# recompute; `manage.py compute_consensus --compare` can still ask for them.
_PART_NAMES = {"hand": "Hands", "foot": "Feet"}
COMPARED_AGGREGATORS: tuple[str, ...] = ("OrdinalDawidSkene", "DawidSkene", "MajorityVote", "Wawa", "OneCoinDawidSkene")


# Above this many grades the automatic comparison is skipped: crowd-kit's OneCoinDawidSkene and
# Wawa alone take tens of seconds on a million grades, several times the consensus itself.
COMPARISON_MAX_LABELS = 200_000


class ConsensusError(Exception):
    """The consensus cannot be computed as asked (unknown aggregator, bad parameters)."""


def consensus_settings_get(*, project: Project) -> ConsensusSettings:
    state, _ = ConsensusSettings.objects.get_or_create(project=project)
    return state


def _compare(frame: pd.DataFrame, n_grades: int, main: AggregationResult, gold: dict[int, int], names: Sequence[str]) -> dict:
    comparison = compare_aggregators(frame, n_grades, names, gold=gold, fitted={main.aggregator: main.labels})
    pairs = [[a, b, n] for (a, b), n in comparison.pairs.items()]
    return {"aggregators": list(comparison.labels), "labels": comparison.labels, "pairs": pairs}


@dataclass(frozen=True)
class _PartResult:
    part: LabelArrays
    result: AggregationResult
    comparison: dict


def consensus_compute(
    *,
    project: Project,
    dimension: str,
    aggregator: str = DEFAULT_AGGREGATOR,
    params: Mapping[str, Any] | None = None,
    trigger: str = ConsensusRun.Trigger.COMMAND,
    requested_by: AbstractBaseUser | None = None,
    extra_labels: ExtraLabels | None = None,
    compare_with: Sequence[str] = COMPARED_AGGREGATORS,
    compare_max_labels: int | None = COMPARISON_MAX_LABELS,
    timings: dict[str, float] | None = None,
    announce: bool = True,
    fusion: str = "per_film",
    warm_start: bool = True,
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

    `fusion` "longitudinal" refits each grid so a joint's consensus never falls over a patient's
    visits (`consensus.longitudinal`); the run records which fusion made its labels.

    With `warm_start`, EM starts from the parameters of the stored consensus when it was fitted
    with the same aggregator and parameters: after one more read that takes a few iterations
    instead of hundreds, and lands on the labels a cold fit gives. Either way only the labels
    that changed are written (`label_store`).
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
        "fusion": fusion,
    }
    if fusion not in Fusion.values:
        raise ConsensusError(f"unknown fusion {fusion!r}; choose one of {', '.join(Fusion.values)}")
    warm = _warm_states(project=project, dimension=dimension, aggregator=aggregator, params=base["params"]) if warm_start else {}
    base["warm_start"] = bool(warm)
    try:
        clock = _Clock(timings)
        # The update after a read starts from the stored consensus: its labels (what changed is
        # written) and the snapshot of the grades it read (only reads submitted since are read).
        stored = label_store.stored_state(project_id=project.pk, dimension=dimension) if warm_start else None
        read: dict = {}
        parts = label_arrays_collect(
            project=project, dimension=dimension, extra_labels=extra_labels,
            snapshot=stored.snapshot if stored else None, read=read,
        )  # fmt: skip
        clock.lap("read_rows")
        n_labels = sum(len(part.label) for part in parts.values())
        compare = compare_max_labels is None or n_labels <= compare_max_labels
        fitted = []
        for part in parts.values():
            frame = part.frame()
            n_grades = part.max_grade + 1
            # The degeneracy guard runs on every fit; a grid whose fit trips it stores a fallback's labels.
            result = aggregate_guarded(
                frame, n_grades=n_grades, aggregator=aggregator, gold=part.gold, params=params,
                warm_start=warm.get(label_store.part_key(part.body_part, part.max_grade)),
            )  # fmt: skip
            if fusion == Fusion.LONGITUDINAL:
                result = longitudinal_refit(part=part, result=result)
            clock.lap("fit")
            comparison = _compare(frame, n_grades, result, part.gold, compare_with) if len(frame) and compare else {}
            clock.lap("compare")
            fitted.append(_PartResult(part=part, result=result, comparison=comparison))
        skipped = None if compare else f"{n_labels} grades, above the comparison limit of {compare_max_labels}"
        run = _run_store(
            base=base, fitted=fitted, duration_s=time.perf_counter() - started, comparison_skipped=skipped,
            stored=stored, snapshot=read["snapshot"],
        )  # fmt: skip
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


def _warm_states(*, project: Project, dimension: str, aggregator: str, params: dict) -> dict[str, dict]:
    """The stored fit's parameters per grade grid, if it used this aggregator and these parameters."""
    state = ConsensusState.objects.filter(project=project, dimension=dimension).values_list("fit_states", flat=True).first()
    if not state or state.get("aggregator") != aggregator or state.get("params") != params:
        return {}
    return dict(state.get("parts", {}))


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
def _run_store(
    *, base: dict, fitted: list[_PartResult], duration_s: float, comparison_skipped: str | None = None,
    stored: label_store.StoredState | None = None, snapshot: GradeSnapshot | None = None,
) -> ConsensusRun:
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
    tripped = [item for item in fitted if item.result.guard.get("tripped")]
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
                "labels_from": item.result.aggregator,
                "unreliable": bool(item.result.guard.get("tripped")),
                "guard": jsonable(item.result.guard.get("figures", {})),
            }
            for item in fitted
        ],
        unreliable=bool(tripped),
        unreliable_reason=" ".join(
            f"{_PART_NAMES.get(item.part.body_part, item.part.body_part)} (0-{item.part.max_grade}): "
            f"{item.result.guard['reason']}"
            for item in tripped
        ),
        comparison={"skipped": comparison_skipped} if comparison_skipped else _comparison_summary(fitted),
        library_versions=results[0].versions if results else {},
    )
    estimates = []
    _references_lock(project=base["project"])
    fit_states = {
        "aggregator": base["aggregator"],
        "params": base["params"],
        "fusion": base["fusion"],
        "parts": {
            label_store.part_key(item.part.body_part, item.part.max_grade): item.result.fit_state
            for item in fitted
            if item.result.fit_state and item.result.aggregator == base["aggregator"]
        },
    }
    run.labels_written = _labels_store(run=run, fitted=fitted, fit_states=fit_states, stored=stored, snapshot=snapshot)
    ConsensusRun.objects.filter(pk=run.pk).update(labels_written=run.labels_written)
    for item in fitted:
        part, result = item.part, item.result
        for worker, matrix in result.reader_confusion.items():
            reader_id = reader_of_worker(worker)
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
    run.label_rows.exclude(radiograph_id__in=Radiograph.objects.values("pk")).delete()
    run.label_rows.exclude(area_id__in=JointArea.objects.values("pk")).delete()


# What makes two runs the same fit, so that one may keep the other's unchanged rows.
_FIT_IDENTITY = ("aggregator", "params", "fusion")


def _labels_store(
    *, run: ConsensusRun, fitted: list[_PartResult], fit_states: dict, stored: label_store.StoredState | None = None,
    snapshot: GradeSnapshot | None = None,
) -> int:
    """Write what changed since the stored consensus, supersede what it replaces, keep the arrays
    (with the `snapshot` of the grades this run read).

    `stored`, the state read before the fit, is used when it still describes the newest
    successful run before this one. Returns the number of label rows written.
    """
    where = {"project_id": run.project_id, "dimension": run.dimension, "before_version": run.version}
    found = label_store.stored_state_still(loaded=stored, **where) if stored else label_store.stored_state(**where)
    state, old_parts = found.state, found.parts
    if old_parts is not None and any(state.fit_states.get(name) != fit_states[name] for name in _FIT_IDENTITY):
        # Another aggregator, other parameters or another fusion made the stored rows: a run
        # inherits rows only from the same fit, so its posteriors are never another model's.
        old_parts = None
    if old_parts is None:
        label_store.labels_supersede_all(run=run)
        old_parts = {}
    written, new_parts = 0, {}
    for item in fitted:
        key = label_store.part_key(item.part.body_part, item.part.max_grade)
        labels = label_store.part_labels(run_id=run.pk, part=item.part, result=item.result)
        changes = label_store.part_changes(new=labels, old=old_parts.pop(key, None))
        label_store.labels_supersede(run=run, closed=changes.closed)
        written += label_store.labels_write(run=run, rows=changes.written, max_grade=item.part.max_grade)
        new_parts[key] = changes.state
    for gone in old_parts.values():  # a grade grid nobody grades any more
        label_store.labels_supersede(run=run, closed=gone)
    arrays = label_store.state_pack(new_parts, snapshot)
    if state is None:
        state = ConsensusState.objects.create(project_id=run.project_id, dimension=run.dimension, run=run, arrays=b"")
    label_store.state_arrays_write(state_id=state.pk, run_id=run.pk, arrays=arrays, fit_states=fit_states)
    return written


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
    reader_id = reader_of_worker(worker)
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
    from .recompute import consensus_recompute_request  # recompute builds on this module
    label = AdjudicatedLabel.objects.create(radiograph=radiograph, area=area, grade=grade, lead=lead, note=note)
    if recompute and consensus_settings_get(project=radiograph.project).auto_recompute:
        consensus_recompute_request(
            project=radiograph.project, trigger=ConsensusRun.Trigger.DASHBOARD, requested_by=lead
        )
    return label


@transaction.atomic
def consensus_fusion_set(*, project: Project, fusion: str) -> ConsensusSettings:
    """Choose how the project's consensus fuses grades (per film or longitudinal) from the next run on."""
    if fusion not in Fusion.values:
        raise ConsensusError(f"unknown fusion {fusion!r}; choose one of {', '.join(Fusion.values)}")
    state = consensus_settings_get(project=project)
    state.fusion = fusion
    state.save(update_fields=["fusion"])
    return state


@transaction.atomic
def agreement_reports_store(*, project: Project, runs: list[ConsensusRun]) -> list[AgreementReportCache]:
    """Compute and keep the whole-scale agreement report of every scale the stored `runs` cover,
    with the serving model as a pseudo-reader, as the lead's page shows it."""
    extra = agreement_report.model_readers(project=project)
    by_dimension = {run.dimension: run for run in runs if run.status == ConsensusRun.Status.OK}
    stored = []
    for scale in selectors.scale_list(project=project):
        run = by_dimension.get(scale.dimension)
        if run is None:
            continue
        started = time.perf_counter()
        report = agreement_report.agreement_report(project=project, scale=scale, extra_readers=extra)
        cache, _ = AgreementReportCache.objects.update_or_create(
            run=report.run or run, body_part=scale.body_part, max_grade=scale.max_grade,
            defaults={
                "model_readers": sorted(str(name) for name in extra), "report": agreement_report.report_to_json(report),
                "duration_s": time.perf_counter() - started,
            },
        )  # fmt: skip
        stored.append(cache)
    return stored
