"""Reliability of several readers on the same units: Krippendorff's alpha, ICC(2,1), SEM and SDC.

Pure numpy/scipy over ``readers x units`` (alpha, NaN for a missing grade) or complete
``subjects x raters`` (ICC) arrays. NaN means "undefined", never "zero agreement": alpha is NaN
when fewer than two pairable values exist or every value is the same (expected disagreement 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Level = Literal["nominal", "ordinal", "interval"]

# SDC = 1.96 * sqrt(2) * SEM: the 95 % limit of a difference between two measurements of one subject.
SDC_FACTOR = 1.96 * float(np.sqrt(2.0))


def smallest_detectable_change(sem: float) -> float:
    """Smallest change between two measurements that exceeds measurement error (95 %), from the SEM."""
    return SDC_FACTOR * sem


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
    patients and readers, which is the spread ICC(2,1) is a share of. SDC = 1.96 * sqrt(2) * SEM
    (`smallest_detectable_change`).
    Missing scores are refused: ICC on a two-way layout needs every rater on every subject.
    """
    from scipy.stats import f as f_dist  # imported here: alpha and the rest need numpy only

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
    ci_low = ci_high = float("nan")
    # No interval where it is undefined: a perfect ICC, or no spread between subjects and no error
    # (identical totals on every film), which would divide by zero.
    if np.isfinite(icc) and icc != 1.0:
        a = k * icc / (n * (1.0 - icc))
        b = 1.0 + k * icc * (n - 1) / (n * (1.0 - icc))
        v_den = (a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / ((n - 1) * (k - 1))
        if v_den > 0:
            v = (a * msc + b * mse) ** 2 / v_den
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
        sdc=smallest_detectable_change(sem),
        sd_pooled=sd_pooled,
        n_subjects=n,
        n_raters=k,
        ms_subjects=msr,
        ms_raters=msc,
        ms_error=mse,
    )
