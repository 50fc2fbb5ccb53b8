"""Longitudinal fusion: a grade grid's tasks laid out as series over each patient's visits, refitted
with `scoring.progression.longitudinal_dawid_skene` so a joint's consensus never falls between visits.

A series is one joint area of one side of one patient; its films are ordered by the visit's
acquisition date, then by the visit's creation (`visit_order`). The per-film fit's posteriors start
the EM; its labels are replaced by the monotone decoding. Adjudicated (gold) grades override the
decoding afterwards, as they do in every aggregator.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np
import pandas as pd

from annotation.models import Radiograph
from scoring.progression import longitudinal_dawid_skene, series_positions

from .aggregation import MIN_ROW_SUPPORT, AggregationResult
from .arrays import LabelArrays

FAR_FUTURE = dt.date.max


def visit_order(acquired_on: dt.date | None, visit_id: int) -> tuple[dt.date, int]:
    """Chronological sort key of a visit: its date, then its creation order (undated visits last)."""
    return (acquired_on or FAR_FUTURE, visit_id)


def radiograph_series(radiograph_ids: Iterable[int]) -> dict[int, tuple[tuple[int, str, str], tuple[dt.date, int]]]:
    """Per radiograph: its series key (patient, body part, side) and its visit's sort key."""
    rows = Radiograph.objects.filter(pk__in=list(radiograph_ids)).values_list(
        "pk", "visit__patient_id", "body_part", "laterality", "visit__acquired_on", "visit_id"
    )
    return {pk: ((patient, part, side), visit_order(date, visit)) for pk, patient, part, side, date, visit in rows}


def longitudinal_refit(*, part: LabelArrays, result: AggregationResult) -> AggregationResult:
    """The per-film `result` of one grade grid refitted so every series' labels are non-decreasing."""
    if not result.tasks:
        return result
    order = np.asarray(result.tasks, dtype=np.int64)  # task index of each result row
    films = radiograph_series(np.unique(part.tasks[:, 0]).tolist())
    keys = [
        ((*films[int(r)][0], int(a)), films[int(r)][1]) for r, a in part.tasks[order].tolist()
    ]
    chain, position = series_positions(keys)
    row_of_task = np.full(len(part.tasks), -1, dtype=np.int64)
    row_of_task[order] = np.arange(order.size)
    worker_codes, worker_index = pd.factorize(pd.Series(part.worker))
    graded = row_of_task[part.task] >= 0
    fit = longitudinal_dawid_skene(
        row_of_task[part.task][graded], worker_codes[graded], part.label[graded],
        chain=chain, position=position, n_classes=result.n_grades, n_workers=len(worker_index),
        init_posteriors=result.posterior,
    )  # fmt: skip
    labels = {task: int(g) for task, g in zip(result.tasks, fit.labels)}
    posterior = fit.posteriors.copy()
    for task, grade in part.gold.items():
        i = int(row_of_task[task])
        if i >= 0:
            labels[task] = int(grade)
            posterior[i] = np.eye(result.n_grades)[grade]
    uniform = np.full(result.n_grades, 1.0 / result.n_grades)
    confusion = {}
    for i, worker in enumerate(worker_index):
        matrix = fit.confusion[i].copy()
        support = result.reader_support.get(worker)
        if support is not None:
            matrix[np.asarray(support) < MIN_ROW_SUPPORT] = uniform
        confusion[worker] = matrix
    result.labels = labels
    result.posterior = posterior
    result.reader_confusion = confusion
    result.iterations = (result.iterations or 0) + fit.iterations
    result.converged = bool(fit.converged) if result.converged is None else bool(result.converged and fit.converged)
    result.params = {**result.params, "fusion": "longitudinal"}
    return result
