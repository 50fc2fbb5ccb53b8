"""Agreement between two sets of ordinal grades, for readers and the model alike: numpy only.

Grades are integers ``0..n_grades-1``. Multi-reader inputs are ``readers x units`` float arrays
with ``NaN`` where a reader did not grade a unit; ``ratings_matrix`` builds one from long rows.

One definition each, used by the consensus dashboard, the model's evaluation and the simulated
readers:

- confusion matrix: ``cm[t, g]`` counts items of true (reference) grade ``t`` given grade ``g``;
  rows are the truth.
- weighted accuracy: the originating study's name for *grade-balanced* accuracy, the mean over the
  grades present in the truth of the share given exactly that grade. Always answering "0" scores
  1 / (number of grades present), not the share of zeros.
- within-one accuracy: the *plain* share of items given a grade at most one step from the truth.
  Grade 0 dominates it, so ``balanced_within_one`` gives the grade-balanced variant (the mean over
  present grades, as weighted accuracy); where both are shown, both are named.
- quadratic weighted kappa: Cohen's kappa with disagreement weights ``(i - j)^2 / (K - 1)^2``.

Edge cases, decided once here:

- empty input: every figure is NaN (nothing was compared; 0 would read as total disagreement);
- a grade absent from the truth does not count in a balanced mean (its recall is undefined);
- kappa is 1.0 when no disagreement was observed, even if both raters used one grade only (the
  formula is then 0/0, but the raters never disagreed). Where the chance disagreement is 0 with
  some observed disagreement kappa would be NaN (undefined); with finite data that cannot happen,
  as chance disagreement 0 means both raters used the same single grade.
- fractional, missing or off-scale grades are refused with a ValueError, never truncated.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

T = TypeVar("T")


# --------------------------------------------------------------------------- helpers


def _as_grades(values: ArrayLike, n_grades: int | None = None, name: str = "grades") -> NDArray[np.int64]:
    """Return a 1-D int array, refusing fractional values and (if given) grades off the grid."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.all(np.isfinite(arr.astype(float))):
        raise ValueError(f"{name} contains missing values")
    as_int = arr.astype(np.int64)
    if arr.size and not np.array_equal(as_int, arr.astype(float)):
        raise ValueError(f"{name} must be whole numbers")
    if n_grades is not None and as_int.size and (as_int.min() < 0 or as_int.max() >= n_grades):
        raise ValueError(f"{name} must lie in 0..{n_grades - 1}")
    if as_int.size and as_int.min() < 0:
        raise ValueError(f"{name} must not be negative")
    return as_int


def _paired(
    truth: ArrayLike, given: ArrayLike, n_grades: int | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64], int]:
    """Both grade arrays checked, and the grade count (the highest grade seen + 1 when not given)."""
    t = _as_grades(truth, n_grades, "truth")
    g = _as_grades(given, n_grades, "given")
    if t.shape != g.shape:
        raise ValueError(f"truth and given differ in length: {t.size} vs {g.size}")
    if n_grades is None:
        n_grades = int(max(t.max(), g.max())) + 1 if t.size else 1
    return t, g, n_grades


def ratings_matrix(
    units: Sequence[Hashable], readers: Sequence[Hashable], grades: Sequence[float]
) -> tuple[NDArray[np.float64], list[Hashable], list[Hashable]]:
    """Pivot long rows (unit, reader, grade) into a ``readers x units`` array with NaN gaps.

    Returns the matrix and the reader and unit orders (sorted, so the layout is reproducible).
    A reader who graded a unit twice is an input error, not something to average silently.
    """
    if not (len(units) == len(readers) == len(grades)):
        raise ValueError("units, readers and grades must have the same length")
    reader_order = sorted(set(readers), key=repr)
    unit_order = sorted(set(units), key=repr)
    r_index = {r: i for i, r in enumerate(reader_order)}
    u_index = {u: j for j, u in enumerate(unit_order)}
    out = np.full((len(reader_order), len(unit_order)), np.nan)
    for u, r, g in zip(units, readers, grades):
        i, j = r_index[r], u_index[u]
        if not np.isnan(out[i, j]):
            raise ValueError(f"reader {r!r} graded unit {u!r} more than once")
        out[i, j] = float(g)
    return out, reader_order, unit_order


# --------------------------------------------------------------------------- two-rater statistics


def confusion_matrix(truth: ArrayLike, given: ArrayLike, n_grades: int | None = None) -> NDArray[np.int64]:
    """Counts ``cm[t, g]`` of items with true grade ``t`` given grade ``g`` (rows = truth)."""
    t, g, k = _paired(truth, given, n_grades)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (t, g), 1)
    return cm


def row_normalise(cm: ArrayLike) -> NDArray[np.float64]:
    """Divide each row by its total so row ``t`` reads P(given | truth = t).

    A row with no samples stays all zero rather than becoming NaN or uniform: a dashboard should
    show "no data" for a grade nobody had, not invent a distribution for it.
    """
    m = np.asarray(cm, dtype=float)
    totals = m.sum(axis=1, keepdims=True)
    return np.divide(m, totals, out=np.zeros_like(m), where=totals > 0)


def accuracy_from_confusion(cm: ArrayLike, *, tolerance: int = 0, balanced: bool = True) -> float:
    """Share of items given a grade at most ``tolerance`` steps from the truth, from a confusion matrix.

    ``cm`` holds counts or probability mass (rows = truth). ``balanced`` takes the mean of that
    share over the grades present in the truth (rows with mass); otherwise it is pooled over all
    items. Every accuracy in this package is this function; NaN when the matrix holds nothing.
    """
    m = np.asarray(cm, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {m.shape}")
    k = m.shape[0]
    near = np.abs(np.arange(k)[:, None] - np.arange(k)[None, :]) <= tolerance
    support = m.sum(axis=1)
    hits = (m * near).sum(axis=1)
    present = support > 0
    if not present.any():
        return float("nan")
    if balanced:
        return float(np.mean(hits[present] / support[present]))
    return float(hits.sum() / support.sum())


def weighted_accuracy(truth: ArrayLike, given: ArrayLike, n_grades: int | None = None) -> float:
    """Grade-balanced accuracy: the mean share of exact grades over grades present in ``truth``."""
    return accuracy_from_confusion(confusion_matrix(truth, given, n_grades))


def within_one_accuracy(truth: ArrayLike, given: ArrayLike, n_grades: int | None = None) -> float:
    """Plain share of items whose given grade is at most one step from the truth."""
    return accuracy_from_confusion(confusion_matrix(truth, given, n_grades), tolerance=1, balanced=False)


def balanced_within_one(truth: ArrayLike, given: ArrayLike, n_grades: int | None = None) -> float:
    """Grade-balanced within-one: the mean over grades present in ``truth`` of the within-one share."""
    return accuracy_from_confusion(confusion_matrix(truth, given, n_grades), tolerance=1)


def quadratic_weighted_kappa(a: ArrayLike, b: ArrayLike, n_grades: int | None = None) -> float:
    """Cohen's kappa with quadratic disagreement weights ``(i - j)^2 / (K - 1)^2`` (edge cases above)."""
    x, y, k = _paired(a, b, n_grades)
    if x.size == 0:
        return float("nan")
    observed = confusion_matrix(x, y, k).astype(float)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / x.size
    idx = np.arange(k)
    weights = (idx[:, None] - idx[None, :]) ** 2 / max(k - 1, 1) ** 2
    obs_d = float((weights * observed).sum())
    exp_d = float((weights * expected).sum())
    if obs_d == 0.0:
        return 1.0
    if exp_d == 0.0:
        return float("nan")
    return 1.0 - obs_d / exp_d


def grade_report(truth: ArrayLike, given: ArrayLike, n_grades: int) -> dict[str, Any]:
    """Every figure above for one scale as a JSON-safe dict (the model's evaluation report)."""
    t, g, _ = _paired(truth, given, n_grades)
    return {
        "n": int(t.size),
        "accuracy": float(np.mean(t == g)) if t.size else float("nan"),
        "weighted_accuracy": weighted_accuracy(t, g, n_grades),
        "within_one": within_one_accuracy(t, g, n_grades),
        "within_one_balanced": balanced_within_one(t, g, n_grades),
        "qwk": quadratic_weighted_kappa(t, g, n_grades),
        "confusion": confusion_matrix(t, g, n_grades).tolist(),
    }


@dataclass(frozen=True)
class ReaderAgreement:
    """One reader's grades against reference labels (usually the consensus) on shared units."""

    n_units: int
    confusion: NDArray[np.int64]  # rows = reference grade, columns = reader's grade
    confusion_normalised: NDArray[np.float64]
    weighted_accuracy: float
    within_one: float  # plain share
    within_one_balanced: float


def reader_vs_consensus(
    ratings: ArrayLike,
    consensus: ArrayLike,
    n_grades: int,
    readers: Sequence[Hashable] | None = None,
    units: ArrayLike | None = None,
) -> dict[Hashable, ReaderAgreement]:
    """Per-reader confusion and accuracy against ``consensus`` (one grade per unit).

    ``ratings`` is ``readers x units`` with NaN gaps; ``units`` optionally restricts the
    comparison to a boolean mask or index array over units. Readers with no graded unit in the
    selection still appear, with zero counts and NaN accuracies, so a table keeps every reader.
    Note that the reader's own grades fed the consensus, so these figures flatter the reader a
    little; that is the study's convention and it is shown the same way to every reader.
    """
    m = np.asarray(ratings, dtype=float)
    ref = np.asarray(consensus, dtype=float)
    if m.ndim != 2 or ref.ndim != 1 or m.shape[1] != ref.size:
        raise ValueError("ratings must be readers x units and consensus one value per unit")
    if units is not None:
        m, ref = m[:, units], ref[units]
    names = list(readers) if readers is not None else list(range(m.shape[0]))
    if len(names) != m.shape[0]:
        raise ValueError("one reader name per row is needed")
    out: dict[Hashable, ReaderAgreement] = {}
    for name, row in zip(names, m):
        keep = ~np.isnan(row) & ~np.isnan(ref)
        cm = confusion_matrix(ref[keep], row[keep], n_grades)
        out[name] = ReaderAgreement(
            n_units=int(keep.sum()),
            confusion=cm,
            confusion_normalised=row_normalise(cm),
            weighted_accuracy=accuracy_from_confusion(cm),
            within_one=accuracy_from_confusion(cm, tolerance=1, balanced=False),
            within_one_balanced=accuracy_from_confusion(cm, tolerance=1),
        )
    return out


def by_group(
    groups: ArrayLike, fn: Callable[..., T], *unit_arrays: ArrayLike, **kwargs: object
) -> dict[Hashable, T]:
    """Apply ``fn`` separately to each joint group (pip, mcp, wrist, ...).

    ``groups`` names the group of every unit; each array in ``unit_arrays`` is sliced along its
    last axis (units), so both ``readers x units`` matrices and per-unit vectors work, e.g.
    ``by_group(groups, reader_vs_consensus, ratings, consensus, n_grades=6)``.
    """
    g = np.asarray(groups)
    arrays = [np.asarray(a) for a in unit_arrays]
    for a in arrays:
        if a.shape[-1] != g.size:
            raise ValueError(f"array with {a.shape[-1]} units does not match {g.size} group labels")
    out: dict[Hashable, T] = {}
    for name in sorted(set(g.tolist()), key=repr):
        mask = g == name
        out[name] = fn(*(a[..., mask] for a in arrays), **kwargs)
    return out
