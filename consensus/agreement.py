"""Reader agreement statistics for ordinal joint grades: pure functions over numpy arrays.

Grades are integers ``0..n_grades-1``. Multi-reader inputs are ``readers x units`` float arrays
with ``NaN`` where a reader did not grade a unit; ``ratings_matrix`` builds one from long rows.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

T = TypeVar("T")

Level = Literal["nominal", "ordinal", "interval"]


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
    return as_int


def _paired(
    truth: ArrayLike, given: ArrayLike, n_grades: int | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    t = _as_grades(truth, n_grades, "truth")
    g = _as_grades(given, n_grades, "given")
    if t.shape != g.shape:
        raise ValueError(f"truth and given differ in length: {t.size} vs {g.size}")
    return t, g


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


def confusion_matrix(truth: ArrayLike, given: ArrayLike, n_grades: int) -> NDArray[np.int64]:
    """Counts ``cm[t, g]`` of items with true grade ``t`` given grade ``g`` (rows = truth)."""
    t, g = _paired(truth, given, n_grades)
    cm = np.zeros((n_grades, n_grades), dtype=np.int64)
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


def weighted_accuracy(truth: ArrayLike, given: ArrayLike, n_grades: int) -> float:
    """Balanced accuracy: the mean per-grade recall over grades present in ``truth``.

    This is what the originating study calls "weighted accuracy"; it stops the large grade-0 class
    from dominating. NaN for empty input.
    """
    cm = confusion_matrix(truth, given, n_grades)
    support = cm.sum(axis=1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float(np.mean(np.diag(cm)[present] / support[present]))


def within_one_accuracy(truth: ArrayLike, given: ArrayLike) -> float:
    """Share of items whose given grade is at most one step from the truth. NaN for empty input."""
    t, g = _paired(truth, given)
    if t.size == 0:
        return float("nan")
    return float(np.mean(np.abs(t - g) <= 1))


def quadratic_weighted_kappa(a: ArrayLike, b: ArrayLike, n_grades: int) -> float:
    """Cohen's kappa with quadratic disagreement weights ``(i - j)^2 / (K - 1)^2``.

    Returns 1.0 when both raters agree perfectly, even if they used a single grade (kappa is then
    0/0 by the formula, but no disagreement was observed), and NaN for empty input.
    """
    x, y = _paired(a, b, n_grades)
    if x.size == 0:
        return float("nan")
    observed = confusion_matrix(x, y, n_grades).astype(float)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / x.size
    idx = np.arange(n_grades)
    weights = (idx[:, None] - idx[None, :]) ** 2 / max(n_grades - 1, 1) ** 2
    obs_d = float((weights * observed).sum())
    exp_d = float((weights * expected).sum())
    if obs_d == 0.0:
        return 1.0
    if exp_d == 0.0:
        return float("nan")
    return 1.0 - obs_d / exp_d


def pairwise_kappa(
    ratings: ArrayLike,
    n_grades: int,
    readers: Sequence[Hashable] | None = None,
    *,
    min_shared: int = 2,
) -> dict[tuple[Hashable, Hashable], float]:
    """Quadratic weighted kappa for every reader pair on the units both graded.

    ``ratings`` is ``readers x units`` with NaN gaps. Pairs sharing fewer than ``min_shared``
    units get NaN: a kappa from one shared joint is noise, and NaN keeps the pair visible.
    """
    m = np.asarray(ratings, dtype=float)
    if m.ndim != 2:
        raise ValueError("ratings must be a readers x units array")
    names = list(readers) if readers is not None else list(range(m.shape[0]))
    if len(names) != m.shape[0]:
        raise ValueError("one reader name per row is needed")
    out: dict[tuple[Hashable, Hashable], float] = {}
    for i, j in combinations(range(m.shape[0]), 2):
        both = ~np.isnan(m[i]) & ~np.isnan(m[j])
        if both.sum() < min_shared:
            out[(names[i], names[j])] = float("nan")
        else:
            out[(names[i], names[j])] = quadratic_weighted_kappa(m[i, both], m[j, both], n_grades)
    return out


@dataclass(frozen=True)
class ReaderAgreement:
    """One reader's grades against reference labels (usually the consensus) on shared units."""

    n_units: int
    confusion: NDArray[np.int64]  # rows = reference grade, columns = reader's grade
    confusion_normalised: NDArray[np.float64]
    weighted_accuracy: float
    within_one: float


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
        t, g = ref[keep], row[keep]
        cm = confusion_matrix(t, g, n_grades)
        out[name] = ReaderAgreement(
            n_units=int(keep.sum()),
            confusion=cm,
            confusion_normalised=row_normalise(cm),
            weighted_accuracy=weighted_accuracy(t, g, n_grades),
            within_one=within_one_accuracy(t, g),
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


# --------------------------------------------------------------------------- Krippendorff's alpha


def krippendorff_alpha(ratings: ArrayLike, level: Level = "ordinal") -> float:
    """Krippendorff's alpha for a ``readers x units`` array with NaN for missing values.

    Follows Krippendorff (2011), "Computing Krippendorff's alpha-reliability": units with fewer
    than two values are unpairable and dropped; values are compared through the coincidence
    matrix. The ordinal metric uses the marginal frequencies of the values that occur, so it
    depends on rank and on how often each grade is used, not on the grade numbers themselves.
    Returns NaN when fewer than two pairable values exist or all values are identical (expected
    disagreement zero: alpha is 0/0, undefined).
    """
    m = np.asarray(ratings, dtype=float)
    if m.ndim != 2:
        raise ValueError("ratings must be a readers x units array")
    if level not in ("nominal", "ordinal", "interval"):
        raise ValueError(f"level must be nominal, ordinal or interval, got {level!r}")
    per_unit = (~np.isnan(m)).sum(axis=0)
    m = m[:, per_unit >= 2]
    if m.size == 0:
        return float("nan")
    values = np.unique(m[~np.isnan(m)])
    # counts[u, c]: how many readers gave value c in unit u
    counts = np.stack([(m == v).sum(axis=0) for v in values], axis=1).astype(float)
    pairable = counts.sum(axis=1)
    # Coincidence matrix: every ordered pair of values within a unit, weighted 1/(m_u - 1).
    w = 1.0 / (pairable - 1.0)
    coincidence = (counts * w[:, None]).T @ counts - np.diag((counts * w[:, None]).sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    delta2 = _metric(values, n_c, level)
    observed = float((coincidence * delta2).sum())
    expected = float((np.outer(n_c, n_c) * delta2).sum())
    if expected == 0.0:
        return float("nan")
    return 1.0 - (n - 1.0) * observed / expected


def _metric(values: NDArray[np.float64], n_c: NDArray[np.float64], level: Level) -> NDArray[np.float64]:
    """Squared difference function delta^2(c, k) between the occurring values."""
    if level == "nominal":
        return 1.0 - np.eye(values.size)
    if level == "interval":
        return (values[:, None] - values[None, :]) ** 2
    # ordinal: (sum of n_g for g from c to k, minus half of n_c and n_k)^2
    cum = np.concatenate([[0.0], np.cumsum(n_c)])
    i = np.arange(values.size)
    lo, hi = np.minimum.outer(i, i), np.maximum.outer(i, i)
    between = cum[hi + 1] - cum[lo]
    return (between - (n_c[:, None] + n_c[None, :]) / 2.0) ** 2


# --------------------------------------------------------------------------- ICC(2,1)


@dataclass(frozen=True)
class ICCResult:
    """Two-way random, absolute agreement, single-rater ICC with its interval and SEM/SDC."""

    icc: float
    ci_low: float
    ci_high: float
    sem: float  # standard error of measurement, in grade units
    sdc: float  # smallest detectable change between two measurements, in grade units
    sd_pooled: float
    n_subjects: int
    n_raters: int
    ms_subjects: float
    ms_raters: float
    ms_error: float


def icc_2_1(scores: ArrayLike, confidence: float = 0.95) -> ICCResult:
    """Shrout & Fleiss ICC(2,1) (McGraw & Wong ICC(A,1)) for a complete ``subjects x raters`` array.

    The confidence interval is McGraw & Wong's (1996) F-based interval with Satterthwaite degrees
    of freedom. SEM = SD_pooled * sqrt(1 - ICC) with SD_pooled the sample standard deviation
    (ddof=1) of all subjects x raters scores together, i.e. the spread a single reading has across
    patients and readers, which is the spread ICC(2,1) is a share of. SDC = 1.96 * sqrt(2) * SEM.
    Missing scores are refused: ICC on a two-way layout needs every rater on every subject.
    """
    from scipy.stats import f as f_dist  # scipy comes with crowd-kit (via scikit-learn)

    x = np.asarray(scores, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError("scores must be subjects x raters with at least 2 of each")
    if np.isnan(x).any():
        raise ValueError("scores must be complete (no NaN) for ICC(2,1)")
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * float(((x.mean(axis=1) - grand) ** 2).sum())
    ss_cols = n * float(((x.mean(axis=0) - grand) ** 2).sum())
    ss_total = float(((x - grand) ** 2).sum())
    ss_err = ss_total - ss_rows - ss_cols
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))

    denom = msr + (k - 1) * mse + k * (msc - mse) / n
    icc = (msr - mse) / denom if denom != 0 else float("nan")

    # McGraw & Wong (1996), case 2A: interval for ICC(A,1).
    alpha = 1.0 - confidence
    a = k * icc / (n * (1.0 - icc))
    b = 1.0 + k * icc * (n - 1) / (n * (1.0 - icc))
    v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / ((n - 1) * (k - 1)))
    f_low = f_dist.ppf(1.0 - alpha / 2.0, n - 1, v)
    f_high = f_dist.ppf(1.0 - alpha / 2.0, v, n - 1)
    ci_low = n * (msr - f_low * mse) / (f_low * (k * msc + (k * n - k - n) * mse) + n * msr)
    ci_high = n * (f_high * msr - mse) / (k * msc + (k * n - k - n) * mse + n * f_high * msr)

    sd_pooled = float(x.std(ddof=1))
    sem = sd_pooled * float(np.sqrt(max(1.0 - icc, 0.0)))
    return ICCResult(
        icc=float(icc),
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        sem=sem,
        sdc=1.96 * float(np.sqrt(2.0)) * sem,
        sd_pooled=sd_pooled,
        n_subjects=n,
        n_raters=k,
        ms_subjects=msr,
        ms_raters=msc,
        ms_error=mse,
    )
