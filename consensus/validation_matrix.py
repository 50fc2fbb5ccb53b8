"""The validation matrix: every hard scenario of the reader simulator x every aggregator, over seeds.

Arrays only (no ORM): each scenario of ``scoring.readers.SCENARIOS`` is drawn once per seed and
fused by every aggregator of ``MATRIX_AGGREGATORS``; each fit is scored against the known truth
and the realised reader matrices, and checked by the degeneracy guard. ``matrix_run`` returns the
per-seed figures; ``matrix_summary`` turns them into means with 95 % intervals (Student t over
seeds) and ``matrix_table`` into the text table ``manage.py validate_consensus --matrix`` prints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from scoring.dawid_skene import dawid_skene
from scoring.guard import degeneracy_check, majority_vote_labels
from scoring.ordinal_ds import ordinal_dawid_skene
from scoring.agreement import accuracy_from_confusion, confusion_matrix
from scoring.readers import SCENARIOS, ScenarioStudy, scenario_simulate

METRICS: tuple[str, ...] = ("accuracy", "balanced", "within_one", "mae", "confusion_error")
METRIC_TITLES = {
    "accuracy": "accuracy",
    "balanced": "grade-balanced accuracy",
    "within_one": "within one grade",
    "mae": "mean absolute error (grades)",
    "confusion_error": "confusion error (mean abs. cell difference)",
}


@dataclass(frozen=True)
class Fit:
    labels: NDArray[np.int64]  # one grade per task
    confusion: NDArray[np.float64] | None  # readers x true x given, the aggregator's estimate
    support: NDArray[np.float64] | None


def _majority(study: ScenarioStudy) -> Fit:
    return Fit(majority_vote_labels(study.task, study.label, study.truth.size, study.n_grades), None, None)


def _crowdkit(study: ScenarioStudy) -> Fit:
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    data = pd.DataFrame({"task": study.task, "worker": study.worker, "label": study.label})
    model = DawidSkene(n_iter=100)
    probas = model.fit_predict_proba(data).reindex(index=range(study.truth.size), columns=range(study.n_grades))
    post = np.nan_to_num(probas.to_numpy(dtype=float))
    counts = np.zeros((study.truth.size, study.n_grades))
    np.add.at(counts, (study.task, study.label), 1.0)
    from scoring.dawid_skene import pick_labels

    W, K = int(study.worker.max()) + 1, study.n_grades
    confusion = np.zeros((W, K, K))
    for (w, given), row in model.errors_.iterrows():
        for true, value in row.items():
            confusion[int(w), int(true), int(given)] = float(value)
    support = np.zeros((W, K))
    np.add.at(support, study.worker, post[study.task])
    return Fit(pick_labels(post, counts), confusion, support)


def _project_ds(study: ScenarioStudy) -> Fit:
    r = dawid_skene(study.task, study.worker, study.label, n_classes=study.n_grades, n_tasks=study.truth.size)
    return Fit(r.labels, r.confusion, r.support)


def _ordinal_ds(study: ScenarioStudy) -> Fit:
    r = ordinal_dawid_skene(study.task, study.worker, study.label, n_classes=study.n_grades, n_tasks=study.truth.size)
    return Fit(r.labels, r.confusion, r.support)


MATRIX_AGGREGATORS: dict[str, Callable[[ScenarioStudy], Fit]] = {
    "MajorityVote": _majority,
    "crowd-kit DS": _crowdkit,
    "DawidSkene": _project_ds,
    "OrdinalDawidSkene": _ordinal_ds,
}


@dataclass(frozen=True)
class Cell:
    """One scenario x aggregator x seed: the figures against the truth and the guard's verdict."""

    scenario: str
    aggregator: str
    seed: int
    figures: dict[str, float]
    guard_tripped: bool
    seconds: float


def fit_figures(study: ScenarioStudy, fit: Fit) -> dict[str, float]:
    """Accuracy, grade-balanced accuracy, within-one, MAE and confusion error of one fit."""
    truth, labels, K = study.truth, fit.labels, study.n_grades
    cm = confusion_matrix(truth, labels, K)
    confusion = fit.confusion
    if confusion is None:
        # Without a model, a reader's profile is read off the consensus: their grades against it.
        W = study.confusion.shape[0]
        counts = np.zeros((W, K, K))
        np.add.at(counts, (study.worker, labels[study.task], study.label), 1.0)
        totals = counts.sum(axis=2, keepdims=True)
        confusion = np.divide(counts, totals, out=np.full_like(counts, 1.0 / K), where=totals > 0)
    # Rows of grades the reader met in the truth: the others say nothing about the estimate.
    met = np.zeros(study.confusion.shape[:2], dtype=bool)
    met[study.worker, truth[study.task]] = True
    return {
        "accuracy": float(np.mean(truth == labels)),
        "balanced": accuracy_from_confusion(cm),
        "within_one": accuracy_from_confusion(cm, tolerance=1, balanced=False),
        "mae": float(np.mean(np.abs(truth - labels))),
        "confusion_error": float(np.abs(confusion - study.confusion)[met].mean()),
    }


def matrix_run(
    *,
    seeds: Sequence[int],
    scenarios: Sequence[str] = tuple(SCENARIOS),
    aggregators: Sequence[str] = tuple(MATRIX_AGGREGATORS),
    size: float = 1.0,
    progress: Callable[[str], None] | None = None,
) -> list[Cell]:
    """Every scenario x aggregator x seed; ``size`` scales the number of areas of every scenario."""
    cells = []
    for name in scenarios:
        for seed in seeds:
            study = scenario_simulate(name, seed=seed, size=size)
            for agg in aggregators:
                started = time.perf_counter()
                fit = MATRIX_AGGREGATORS[agg](study)
                seconds = time.perf_counter() - started
                verdict = degeneracy_check(
                    study.task, study.worker, study.label, fit.labels,
                    n_classes=study.n_grades, confusion=fit.confusion, support=fit.support,
                )  # fmt: skip
                cells.append(Cell(name, agg, seed, fit_figures(study, fit), verdict.tripped, seconds))
            if progress:
                progress(f"{name} seed {seed}: {study.n_labels} grades")
    return cells


# Two-sided 97.5 % Student t quantiles by degrees of freedom; 1.96 beyond the table.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
         10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}  # fmt: skip


def interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95 % interval over seeds (Student t; 0 half-width for one seed)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return float(x.mean()) if x.size else float("nan"), 0.0
    df = x.size - 1
    t = _T975.get(df) or next((v for k, v in sorted(_T975.items()) if k >= df), 1.96)
    return float(x.mean()), float(t * x.std(ddof=1) / math.sqrt(x.size))


def matrix_summary(cells: Sequence[Cell]) -> dict[tuple[str, str], dict[str, tuple[float, float]]]:
    """(scenario, aggregator) -> metric -> (mean, half-width); plus "guard" (share of seeds tripped)."""
    grouped: dict[tuple[str, str], list[Cell]] = {}
    for c in cells:
        grouped.setdefault((c.scenario, c.aggregator), []).append(c)
    out = {}
    for key, group in grouped.items():
        row = {m: interval([c.figures[m] for c in group]) for m in METRICS}
        row["guard"] = (float(np.mean([c.guard_tripped for c in group])), 0.0)
        row["seconds"] = (float(np.mean([c.seconds for c in group])), 0.0)
        out[key] = row
    return out


def matrix_table(summary: dict[tuple[str, str], dict[str, tuple[float, float]]]) -> str:
    """Markdown table: one row per scenario and aggregator, mean +- 95 % half-width per metric."""
    head = "| scenario | aggregator | accuracy | grade-balanced | within one | MAE | confusion error | guard | s |"
    lines = [head, "|" + " --- |" * 9]
    for (scenario, agg), row in summary.items():
        cells = [f"{row[m][0]:.3f} ± {row[m][1]:.3f}" for m in METRICS]
        guard = f"{row['guard'][0]:.0%}"
        lines.append(f"| {scenario} | {agg} | " + " | ".join(cells) + f" | {guard} | {row['seconds'][0]:.2f} |")
    return "\n".join(lines)


def default_verdicts(
    summary: dict[tuple[str, str], dict[str, tuple[float, float]]], default: str = "OrdinalDawidSkene"
) -> list[str]:
    """Where the default is worse than majority vote or crowd-kit DS beyond both intervals, in words."""
    notes = []
    scenarios = sorted({s for s, _ in summary}, key=list(SCENARIOS).index)
    for scenario in scenarios:
        mine = summary.get((scenario, default))
        if mine is None:
            continue
        for rival in ("MajorityVote", "crowd-kit DS"):
            other = summary.get((scenario, rival))
            if other is None:
                continue
            for metric in ("accuracy", "balanced"):
                (m, hm), (o, ho) = mine[metric], other[metric]
                if m + hm < o - ho:
                    notes.append(f"{scenario}: {default} below {rival} on {METRIC_TITLES[metric]} ({m:.3f} vs {o:.3f})")
        if mine["guard"][0] > 0:
            notes.append(f"{scenario}: the guard tripped on {default} in {mine['guard'][0]:.0%} of seeds")
    return notes
