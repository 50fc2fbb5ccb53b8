"""Fuse several readers' grades per joint into one consensus grade with crowd-kit aggregators.

Pure glue over pandas and numpy: long rows ``(task, worker, label)`` in, an ``AggregationResult``
out, with every per-grade array laid on the full ``0..n_grades-1`` grid. crowd-kit leaves several
things open, settled here as follows.

* **Full grid.** crowd-kit only knows grades that occur in the data. Posteriors are reindexed to
  all ``n_grades`` columns (absent grades get probability 0) and each row is renormalised to sum
  to 1. Reader confusion matrices are laid out ``n_grades x n_grades`` with rows = true grade.
* **Unestimated confusion rows.** A row whose true grade the reader (softly) met in fewer than
  ``MIN_ROW_SUPPORT`` tasks carries no information from the data, so it is filled with the
  uniform distribution. Uniform, not identity: identity would claim the reader is perfect on a
  grade nobody saw them grade and would inflate any accuracy read off the matrix; uniform is the
  neutral "no evidence" row (it also leaves a vote uninformative if reused as a prior). The
  expected count behind each row is returned in ``reader_support`` so a dashboard can grey out
  thin rows. DawidSkene's rows come from crowd-kit's ``errors_``; OneCoinDawidSkene has one skill
  ``s`` per reader, laid out as ``s`` on the diagonal and ``(1 - s) / (n_grades - 1)`` elsewhere,
  so none of its rows is thin.
* **Ties.** The consensus grade is the most probable one. Grades whose probabilities are equal
  (within ``TIE_TOLERANCE``) are broken in favour of the grade nearest the median of the task's
  reader grades, then the lower grade. The median keeps a split vote on an ordinal scale in the
  middle of what readers said; the lower grade as last resort avoids over-calling damage. This
  replaces crowd-kit's ``idxmax``, which picks whichever column pandas happened to put first.
* **Readers with few labels.** Readers with fewer than ``min_labels_per_reader`` labels stay in
  the fit (every submitted grade counts, and dropping them could leave a task with no grade) but
  are listed in ``few_label_readers``: their estimated confusion matrix rests on too few grades to
  be shown as a reliable profile.
* **Gold (adjudicated) labels.** DawidSkene receives them as ``true_labels``, so they also steer
  the reader confusion estimates. The other aggregators have no such input; for every aggregator
  the gold task's consensus is then set to the gold grade with a one-hot posterior. A gold task
  with no reader grades still appears in the result. A gold grade that no reader ever gave cannot
  be passed to crowd-kit (it would create a column of NaN), so it is applied only as an override.
* **Posteriors that are not probabilities.** Every aggregator here returns a distribution, but
  MajorityVote's is the vote share and Wawa's the agreement-weighted vote share: fine for ranking
  uncertainty, not calibrated probabilities. Only the model-based aggregators (DawidSkene,
  OneCoinDawidSkene, GLAD, MACE) give a posterior in the statistical sense.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from itertools import combinations
from typing import Any, NamedTuple

import attr
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from scoring.dawid_skene import dawid_skene
from scoring.guard import degeneracy_check
from scoring.ordinal_ds import ordinal_dawid_skene

AGGREGATORS: tuple[str, ...] = (
    "OrdinalDawidSkene", "DawidSkene", "MajorityVote", "Wawa", "OneCoinDawidSkene", "GLAD", "MACE",
)  # fmt: skip
# The project default: the regularised ordinal fit won or tied every scenario of the validation
# matrix (README, "Consensus validation matrix") and never tripped the guard there.
DEFAULT_AGGREGATOR = "OrdinalDawidSkene"
# Where a fit trips the degeneracy guard, labels come from the first of these that does not:
# the ordinal fit (priors keep it from the collapses plain DS falls into), then majority vote,
# which cannot collapse away from the readers because it is what they said.
FALLBACK_AGGREGATORS: tuple[str, ...] = ("OrdinalDawidSkene", "MajorityVote")
DS_FAMILY: frozenset[str] = frozenset({"DawidSkene", "OneCoinDawidSkene"})

# Defaults that differ from crowd-kit's own. MACE draws every restart from the same integer
# random_state, so its default 10 restarts repeat one run ten times; one restart gives the same
# answer for a fraction of the time.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {"MACE": {"n_restarts": 1}}

# DawidSkene runs on scoring.dawid_skene (crowd-kit's numbers at a fixed iteration count, a
# stopping rule on the true log-likelihood and the posterior step, and fast enough for 10^6 labels).
DS_PARAMS: tuple[str, ...] = ("max_iter", "tol", "tol_posterior")
DS_DEFAULTS: dict[str, Any] = {name: inspect.signature(dawid_skene).parameters[name].default for name in DS_PARAMS}
ORDINAL_PARAMS: tuple[str, ...] = ("max_iter", "tol_posterior", "strength", "decay", "pool", "class_strength")
ORDINAL_DEFAULTS: dict[str, Any] = {
    name: inspect.signature(ordinal_dawid_skene).parameters[name].default for name in ORDINAL_PARAMS
}
MIN_ROW_SUPPORT = 1.0  # expected tasks per true grade below which a confusion row is not estimated
TIE_TOLERANCE = 1e-9


@dataclass
class AggregationResult:
    """Consensus grades and diagnostics of one aggregation run over one grading dimension."""

    aggregator: str
    params: dict[str, Any]  # effective constructor parameters, crowd-kit defaults included
    n_grades: int
    tasks: list[Hashable]  # row order of ``posterior``
    posterior: NDArray[np.float64]  # tasks x n_grades, rows sum to 1
    labels: dict[Hashable, int]
    # n_grades x n_grades per reader, rows = true grade, P(given | true); DS family only
    reader_confusion: dict[Hashable, NDArray[np.float64]]
    reader_support: dict[Hashable, NDArray[np.float64]]  # expected tasks per true grade behind each row
    reader_label_counts: dict[Hashable, int]
    few_label_readers: list[Hashable]
    gold_tasks: list[Hashable]
    iterations: int | None  # None for aggregators without an iterative fit
    converged: bool | None
    loss_history: list[float]
    n_tasks: int
    n_workers: int
    n_labels: int
    duration_s: float  # wall time of the whole call, fit and reindexing
    versions: dict[str, str] = field(default_factory=dict)  # libraries that produced the run
    # The degeneracy guard's verdict (scoring.guard): tripped, reason in words, figures, and
    # "requested" = the aggregator asked for when these labels come from a fallback.
    guard: dict[str, Any] = field(default_factory=dict)
    # The fitted parameters of the Dawid-Skene family, for a later warm start (`warm_start` of
    # `aggregate`): {"workers": [...], "priors": K floats, "confusion": workers x K x K}.
    fit_state: dict[str, Any] = field(default_factory=dict)

    @property
    def posteriors(self) -> dict[Hashable, NDArray[np.float64]]:
        """Posterior per task, for callers that store one row per task."""
        return {task: self.posterior[i] for i, task in enumerate(self.tasks)}


def aggregate(
    labels: pd.DataFrame,
    *,
    n_grades: int,
    aggregator: str = "DawidSkene",
    gold: Mapping[Hashable, int] | None = None,
    params: Mapping[str, Any] | None = None,
    min_labels_per_reader: int = 20,
    warm_start: Mapping[str, Any] | None = None,
) -> AggregationResult:
    """Fuse ``labels`` (columns task, worker, label; integer grades) into one grade per task.

    ``params`` go to the crowd-kit constructor (e.g. ``{"n_iter": 200, "tol": 1e-6}``).
    ``warm_start``, a previous result's ``fit_state``, starts the EM of DawidSkene and
    OrdinalDawidSkene from those parameters; the other aggregators ignore it.
    Raises ValueError for an unknown aggregator, bad parameters, grades off the grid, missing
    values, or a reader grading the same task twice (pass only the latest version of a grade).
    """
    started = time.perf_counter()
    if aggregator not in AGGREGATORS:
        raise ValueError(f"unknown aggregator {aggregator!r}; choose one of {', '.join(AGGREGATORS)}")
    if n_grades < 2:
        raise ValueError("n_grades must be at least 2")
    data, codes = _validated(labels, n_grades)
    gold_map = _validated_gold(gold, n_grades)
    if aggregator in ("DawidSkene", "OrdinalDawidSkene"):
        result = _aggregate_dawid_skene(
            data, gold_map, n_grades, params, min_labels_per_reader, started, aggregator, warm_start=warm_start, codes=codes
        )
        result.guard = _guard(data, result, codes)
        return result
    model = _build(aggregator, params)

    probas = _fit(model, aggregator, data, gold_map) if len(data) else pd.DataFrame()

    tasks: list[Hashable] = pd.unique(data["task"]).tolist() if len(data) else []
    seen = set(tasks)
    tasks += [t for t in gold_map if t not in seen]
    posterior = _full_grid_posterior(probas, tasks, n_grades)
    medians = data.groupby("task", sort=False)["label"].median() if len(data) else pd.Series(dtype=float)
    chosen = [_pick_grade(row, medians.get(task, np.nan)) for task, row in zip(tasks, posterior)]

    index = {task: i for i, task in enumerate(tasks)}
    for task, grade in gold_map.items():
        posterior[index[task]] = np.eye(n_grades)[grade]
        chosen[index[task]] = grade

    counts = data["worker"].value_counts(sort=False) if len(data) else pd.Series(dtype=int)
    label_counts = {_py(w): int(c) for w, c in counts.items()}
    confusion, support = ({}, {})
    if aggregator in DS_FAMILY and len(data):
        support = _reader_support(data, tasks, posterior, n_grades)
        confusion = _reader_confusion(model, aggregator, support, n_grades)

    history = [float(x) for x in getattr(model, "loss_history_", []) or []]
    iterations, converged = _convergence(model, aggregator, history)
    result = AggregationResult(
        aggregator=aggregator,
        params=_effective_params(model),
        n_grades=n_grades,
        tasks=tasks,
        posterior=posterior,
        labels={task: int(g) for task, g in zip(tasks, chosen)},
        reader_confusion=confusion,
        reader_support=support,
        reader_label_counts=label_counts,
        few_label_readers=sorted((w for w, c in label_counts.items() if c < min_labels_per_reader), key=repr),
        gold_tasks=list(gold_map),
        iterations=iterations,
        converged=converged,
        loss_history=history,
        n_tasks=len(tasks),
        n_workers=len(label_counts),
        n_labels=len(data),
        duration_s=time.perf_counter() - started,
        versions={"crowd-kit": version("crowd-kit"), "pandas": pd.__version__, "numpy": np.__version__},
    )
    result.guard = _guard(data, result, codes)
    return result


def aggregate_guarded(
    labels: pd.DataFrame,
    *,
    n_grades: int,
    aggregator: str = DEFAULT_AGGREGATOR,
    gold: Mapping[Hashable, int] | None = None,
    params: Mapping[str, Any] | None = None,
    min_labels_per_reader: int = 20,
    warm_start: Mapping[str, Any] | None = None,
) -> AggregationResult:
    """``aggregate``, and where its fit trips the degeneracy guard, the first sound fallback's labels.

    The returned result says which aggregator made the labels (``aggregator``) and, in
    ``guard``, that the requested one tripped (``tripped``, ``reason`` in words, ``requested``).
    When every fallback trips too, majority vote's labels are returned, still marked tripped:
    they are at least what the readers said.
    """
    kwargs = {"n_grades": n_grades, "gold": gold, "min_labels_per_reader": min_labels_per_reader}
    first = aggregate(labels, aggregator=aggregator, params=params, warm_start=warm_start, **kwargs)
    if not first.guard.get("tripped"):
        return first
    chosen = None
    for name in FALLBACK_AGGREGATORS:
        if name == aggregator:
            continue
        chosen = aggregate(labels, aggregator=name, **kwargs)
        if not chosen.guard.get("tripped"):
            break
    if chosen is None:  # the request was the last fallback itself
        chosen = first
    chosen.guard = {
        **chosen.guard,
        "tripped": True,
        "requested": aggregator,
        "reason": (
            f"The {aggregator} consensus looks degenerate: {first.guard['reason']} "
            f"The labels come from {chosen.aggregator} instead."
            if chosen is not first
            else f"The {aggregator} consensus looks degenerate: {first.guard['reason']}"
        ),
    }
    return chosen


@dataclass(frozen=True)
class AggregatorComparison:
    labels: dict[str, dict[Hashable, int]]  # aggregator -> its consensus grade per task
    pairs: dict[tuple[str, str], int]  # (a, b) -> tasks whose grade differs between a and b


def compare_aggregators(
    labels: pd.DataFrame,
    n_grades: int,
    names: Sequence[str] = AGGREGATORS,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    gold: Mapping[Hashable, int] | None = None,
    fitted: Mapping[str, Mapping[Hashable, int]] | None = None,
) -> AggregatorComparison:
    """Every aggregator's grades, and the number of tasks whose grade differs between each pair.

    ``fitted`` holds grades already computed (a run's own aggregator, with its parameters): they
    are not fitted again and come first. Pairs are ``(a, b)`` in that order, then as ``names``
    lists them. A large count says the choice of aggregator matters for this data and is worth a
    look before training on the labels.
    """
    params = params or {}
    results = {name: dict(grades) for name, grades in (fitted or {}).items()}
    for name in names:
        if name not in results:
            results[name] = aggregate(labels, n_grades=n_grades, aggregator=name, gold=gold, params=params.get(name)).labels
    return AggregatorComparison(
        labels=results,
        pairs={
            (a, b): sum(results[a][task] != results[b].get(task) for task in results[a])
            for a, b in combinations(results, 2)
        },
    )


def _aggregate_dawid_skene(
    data: pd.DataFrame,
    gold_map: dict[Hashable, int],
    n_grades: int,
    params: Mapping[str, Any] | None,
    min_labels_per_reader: int,
    started: float,
    name: str = "DawidSkene",
    warm_start: Mapping[str, Any] | None = None,
    codes: _Codes | None = None,
) -> AggregationResult:
    allowed, defaults = (ORDINAL_PARAMS, ORDINAL_DEFAULTS) if name == "OrdinalDawidSkene" else (DS_PARAMS, DS_DEFAULTS)
    unknown = sorted(set(params or {}) - set(allowed))
    if unknown:
        raise ValueError(f"bad parameters for {name}: {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    fit_fn = ordinal_dawid_skene if name == "OrdinalDawidSkene" else dawid_skene
    task_codes, task_index, worker_codes, worker_index = codes or _codes_of(data)  # first-appearance order, as pd.unique
    tasks: list[Hashable] = task_index.tolist()
    seen = set(tasks)
    tasks += [t for t in gold_map if t not in seen]
    gold = np.full(len(tasks), -1, dtype=np.int64)
    if gold_map:  # a dict of every task only when gold needs a lookup: at 10^6 grades it costs more than EM
        row = {task: i for i, task in enumerate(tasks)}
        for task, grade in gold_map.items():
            gold[row[task]] = grade
    fit = fit_fn(
        task_codes, worker_codes, data["label"].to_numpy(np.int64),
        n_classes=n_grades, n_tasks=len(tasks), n_workers=len(worker_index), gold=gold,
        init_params=_warm_params(warm_start, worker_index, n_grades), **(params or {}),
    )  # fmt: skip
    workers = [_py(w) for w in worker_index]
    counts = np.bincount(worker_codes, minlength=len(workers))
    uniform = np.full(n_grades, 1.0 / n_grades)
    confusion = {}
    for i, worker in enumerate(workers):
        m = fit.confusion[i].copy()
        m[fit.support[i] < MIN_ROW_SUPPORT] = uniform
        confusion[worker] = m
    label_counts = {w: int(c) for w, c in zip(workers, counts)}
    return AggregationResult(
        aggregator=name,
        params={**defaults, **(params or {})},
        n_grades=n_grades,
        tasks=tasks,
        posterior=fit.posteriors,
        labels=dict(zip(tasks, fit.labels.tolist())),
        reader_confusion=confusion,
        reader_support={w: fit.support[i] for i, w in enumerate(workers)},
        reader_label_counts=label_counts,
        few_label_readers=sorted((w for w, c in label_counts.items() if c < min_labels_per_reader), key=repr),
        gold_tasks=list(gold_map),
        iterations=fit.iterations,
        converged=fit.converged,
        loss_history=fit.log_likelihood.tolist(),  # observed-data log-likelihood, not crowd-kit's ELBO
        n_tasks=len(tasks),
        n_workers=len(workers),
        n_labels=len(data),
        duration_s=time.perf_counter() - started,
        versions={"numpy": np.__version__, "scipy": version("scipy"), "pandas": pd.__version__},
        fit_state={"workers": [str(w) for w in workers], "priors": fit.priors.tolist(), "confusion": fit.confusion.tolist()},
    )


def _warm_params(
    state: Mapping[str, Any] | None, worker_index: pd.Index, n_grades: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """A previous fit's priors and confusion laid out on today's readers, or None to start cold.

    A reader the previous fit did not know gets uniform rows (no evidence either way); a state
    on another grade grid is not usable and gives a cold start.
    """
    if not state or not len(worker_index):
        return None
    priors = np.asarray(state.get("priors", []), dtype=float)
    confusion = np.asarray(state.get("confusion", []), dtype=float)
    if priors.shape != (n_grades,) or confusion.shape[1:] != (n_grades, n_grades):
        return None
    # Grades the previous fit had no mass on keep a sliver, so a grade new since then can win.
    priors = np.maximum(priors, 1e-6)
    priors = priors / priors.sum()
    at = {str(w): i for i, w in enumerate(state.get("workers", []))}
    layout = np.full((len(worker_index), n_grades, n_grades), 1.0 / n_grades)
    for j, worker in enumerate(worker_index):
        i = at.get(str(_py(worker)))
        if i is not None and i < len(confusion):
            layout[j] = confusion[i]
    # Likewise a grade a reader never gave before keeps a sliver of probability in every row.
    layout = np.maximum(layout, 1e-6)
    return priors, layout / layout.sum(axis=2, keepdims=True)


# --------------------------------------------------------------------------- input checks


class _Codes(NamedTuple):
    """The task and worker columns factorised once per fit, in first-appearance order: hashing a
    million worker names costs more than a warm-started EM, and every step needs the codes."""

    task: NDArray[np.int64]
    tasks: pd.Index
    worker: NDArray[np.int64]
    workers: pd.Index


def _codes_of(data: pd.DataFrame) -> _Codes:
    task_codes, task_index = pd.factorize(data["task"])
    worker_codes, worker_index = pd.factorize(data["worker"])
    return _Codes(task_codes, task_index, worker_codes, worker_index)


def _validated(labels: pd.DataFrame, n_grades: int) -> tuple[pd.DataFrame, _Codes]:
    missing = {"task", "worker", "label"} - set(labels.columns)
    if missing:
        raise ValueError(f"labels lack column(s): {', '.join(sorted(missing))}")
    data = labels[["task", "worker", "label"]].reset_index(drop=True)
    codes = _codes_of(data)
    # factorize gives a missing task or worker the code -1, so only the grades need a look of their own.
    if (codes.task < 0).any() or (codes.worker < 0).any() or data["label"].isna().any():
        raise ValueError("labels contain missing values")
    grades = data["label"].to_numpy()
    if len(data) and not np.array_equal(grades.astype(np.int64), grades.astype(float)):
        raise ValueError("labels must be whole-number grades")
    data = data.assign(label=grades.astype(np.int64))
    if len(data) and (data["label"].min() < 0 or data["label"].max() >= n_grades):
        raise ValueError(f"labels must lie in 0..{n_grades - 1}")
    # Duplicates found on integer codes: pandas' duplicated over two object columns costs more
    # than a warm-started EM at a million grades.
    pair = codes.task.astype(np.int64) * (int(codes.worker.max(initial=0)) + 1) + codes.worker
    dup = pd.Series(pair).duplicated().to_numpy()
    if dup.any():
        first = data.loc[dup].iloc[0]
        raise ValueError(f"worker {first['worker']!r} graded task {first['task']!r} more than once")
    return data, codes


def _validated_gold(gold: Mapping[Hashable, int] | None, n_grades: int) -> dict[Hashable, int]:
    out: dict[Hashable, int] = {}
    for task, grade in (gold or {}).items():
        if int(grade) != grade or not 0 <= int(grade) < n_grades:
            raise ValueError(f"gold grade {grade!r} for task {task!r} is not in 0..{n_grades - 1}")
        out[task] = int(grade)
    return out


# --------------------------------------------------------------------------- crowd-kit calls


def _build(aggregator: str, params: Mapping[str, Any] | None) -> Any:
    from crowdkit import aggregation as ck

    # Wawa is composed from MajorityVote below, so only its (empty) parameter set is checked here.
    cls = ck.MajorityVote if aggregator == "Wawa" else getattr(ck, aggregator)
    kwargs = {**DEFAULT_PARAMS.get(aggregator, {}), **(params or {})}
    if aggregator == "Wawa" and kwargs:
        raise ValueError(f"Wawa takes no parameters, got {', '.join(kwargs)}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        allowed = [f.name for f in attr.fields(cls) if f.init]
        raise ValueError(f"bad parameters for {aggregator}: {exc}; allowed: {', '.join(allowed)}") from exc


def _fit(model: Any, aggregator: str, data: pd.DataFrame, gold: dict[Hashable, int]) -> pd.DataFrame:
    if aggregator == "DawidSkene":
        observed = set(data["label"].unique().tolist())
        present = set(data["task"].unique().tolist())
        usable = {t: g for t, g in gold.items() if g in observed and t in present}
        true_labels = pd.Series(usable, dtype=np.int64) if usable else None
        return model.fit_predict_proba(data, true_labels=true_labels)
    if aggregator == "Wawa":
        return _wawa_proba(data)
    return model.fit_predict_proba(data)


def _wawa_proba(data: pd.DataFrame) -> pd.DataFrame:
    """Worker Agreement With Aggregate: majority vote weighted by each reader's agreement with it.

    The same two steps as ``crowdkit.aggregation.Wawa``, composed directly because that class's
    predict step calls scikit-learn's ``check_is_fitted``, which raises on crowd-kit objects with
    scikit-learn >= 1.6 (no ``__sklearn_tags__``).
    """
    from crowdkit.aggregation import MajorityVote
    from crowdkit.aggregation.utils import get_accuracy

    mv = MajorityVote().fit(data)
    skills = get_accuracy(data, true_labels=mv.labels_, by="worker")
    return MajorityVote().fit(data, skills=skills).probas_


def _effective_params(model: Any) -> dict[str, Any]:
    # MajorityVote's fields only matter when skills are passed in, which never happens here.
    if type(model).__name__ == "MajorityVote":
        return {}
    return {f.name: getattr(model, f.name) for f in attr.fields(type(model)) if f.init}


def _convergence(model: Any, aggregator: str, history: list[float]) -> tuple[int | None, bool | None]:
    """Iterations run and whether the loss change fell below ``tol`` before ``n_iter`` ran out.

    MajorityVote and Wawa are closed-form; MACE runs a fixed number of variational steps with no
    stopping test, so neither has a convergence to report.
    """
    if aggregator not in ("DawidSkene", "OneCoinDawidSkene", "GLAD") or not history:
        return None, None
    n = len(history)
    stopped_early = n < model.n_iter
    settled = n >= 2 and history[-1] - history[-2] < model.tol
    return n, bool(stopped_early or settled)


# --------------------------------------------------------------------------- full grid


def _full_grid_posterior(probas: pd.DataFrame, tasks: list[Hashable], n_grades: int) -> NDArray[np.float64]:
    if not tasks:
        return np.zeros((0, n_grades))
    if probas.empty:
        values = np.zeros((len(tasks), n_grades))
    else:
        grid = probas.reindex(index=tasks, columns=list(range(n_grades)))
        values = np.nan_to_num(grid.to_numpy(dtype=float), nan=0.0)
    totals = values.sum(axis=1, keepdims=True)
    # Tasks with no mass (gold-only tasks, before their override) get a flat row, not NaN.
    return np.divide(values, totals, out=np.full_like(values, 1.0 / n_grades), where=totals > 0)


def _pick_grade(row: NDArray[np.float64], median: float) -> int:
    best = np.flatnonzero(row >= row.max() - TIE_TOLERANCE)
    if best.size == 1 or np.isnan(median):
        return int(best[0])
    distance = np.abs(best - median)
    return int(best[np.flatnonzero(distance == distance.min())[0]])


def _reader_support(
    data: pd.DataFrame, tasks: list[Hashable], posterior: NDArray[np.float64], n_grades: int
) -> dict[Hashable, NDArray[np.float64]]:
    """Expected number of each reader's tasks per true grade (sum of the task posteriors)."""
    rows = pd.Index(tasks).get_indexer(data["task"])
    out: dict[Hashable, NDArray[np.float64]] = {}
    for worker, idx in data.groupby("worker", sort=False).indices.items():
        out[_py(worker)] = posterior[rows[idx]].sum(axis=0)
    return out


def _reader_confusion(
    model: Any, aggregator: str, support: dict[Hashable, NDArray[np.float64]], n_grades: int
) -> dict[Hashable, NDArray[np.float64]]:
    """Per-reader P(given grade | true grade), rows = true grade, on the full grid."""
    uniform = np.full(n_grades, 1.0 / n_grades)
    out: dict[Hashable, NDArray[np.float64]] = {}
    if aggregator == "OneCoinDawidSkene":
        # One skill per reader: P(correct) = s, errors spread evenly. Built on the full grid from
        # the skill itself, since crowd-kit's errors_ spreads 1 - s over the observed grades only.
        # Its rows are not estimated per grade, so the thin-row rule below does not apply.
        for worker, skill in model.skills_.items():
            s = float(skill)
            m = np.full((n_grades, n_grades), (1.0 - s) / (n_grades - 1))
            np.fill_diagonal(m, s)
            out[_py(worker)] = m
        return out

    # errors_: index (worker, given grade), columns true grade, each column sums to 1 per worker.
    errors = model.errors_
    for worker in support:
        block = errors.xs(worker, level="worker")  # support keys are plain values; xs matches them
        m = np.zeros((n_grades, n_grades))
        given = block.index.to_numpy(dtype=np.int64)
        for true_grade in block.columns:
            m[int(true_grade), given] = block[true_grade].to_numpy(dtype=float)
        sums = m.sum(axis=1, keepdims=True)
        m = np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)
        out[worker] = m
    for worker, m in out.items():
        m[support[worker] < MIN_ROW_SUPPORT] = uniform
    return out


def _guard(data: pd.DataFrame, result: AggregationResult, codes: _Codes | None = None) -> dict[str, Any]:
    """The degeneracy guard on one fit, on index arrays in the result's task order."""
    if not len(data):
        return {"tripped": False, "reason": "", "figures": {}}
    # Both result paths list the labelled tasks in first-appearance order, then gold-only ones.
    task, _tasks, worker_codes, workers = codes or _codes_of(data)
    consensus = np.fromiter(result.labels.values(), dtype=np.int64, count=len(result.tasks))
    confusion = support = None
    if result.reader_confusion:
        keys = [_py(w) for w in workers]
        confusion = np.stack([result.reader_confusion[k] for k in keys])
        support = np.stack([result.reader_support[k] for k in keys])
    verdict = degeneracy_check(
        task, worker_codes, data["label"].to_numpy(np.int64), consensus,
        n_classes=result.n_grades, confusion=confusion, support=support, reader_names=[str(w) for w in workers],
    )  # fmt: skip
    return {"tripped": verdict.tripped, "reason": verdict.reason, "figures": verdict.figures}


def _py(value: Any) -> Hashable:
    """numpy scalar -> plain Python value, so result keys compare and serialise as callers expect."""
    return value.item() if isinstance(value, np.generic) else value
