"""Patient-level bootstrap intervals for any metric computed over rows (areas, hands).

Areas of one patient are not independent (one severe patient contributes many high grades), so
the resampling unit is the patient: each replicate draws patients with replacement and keeps all
of their rows. The interval is the percentile interval of the replicates. numpy only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class Interval:
    value: float  # the metric on all rows
    low: float
    high: float
    replicates: int

    def as_dict(self, digits: int = 3) -> dict[str, float]:
        return {"value": round(self.value, digits), "low": round(self.low, digits), "high": round(self.high, digits)}

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def patient_bootstrap(
    metric: Callable[[NDArray[np.int64]], float],
    groups: ArrayLike,
    *,
    replicates: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """``metric(rows)`` on all rows, with a percentile interval over patient resamples.

    ``groups`` gives each row's patient; ``metric`` receives an index array into the rows (with
    repeats when a patient is drawn twice) and returns a number. Replicates whose metric is not
    finite (a grade absent from a resample, for a balanced accuracy) are dropped.
    """
    g = np.asarray(groups)
    if g.ndim != 1 or g.size == 0:
        raise ValueError("groups must be a non-empty 1-d array, one patient per row")
    if not 0.0 < level < 1.0:
        raise ValueError("level must lie in (0, 1)")
    patients, codes = np.unique(g, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    starts = np.r_[0, np.cumsum(np.bincount(codes, minlength=len(patients)))]
    rows_of = [order[starts[i] : starts[i + 1]] for i in range(len(patients))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(replicates):
        pick = rng.integers(0, len(patients), size=len(patients))
        value = float(metric(np.concatenate([rows_of[p] for p in pick])))
        if np.isfinite(value):
            values.append(value)
    point = float(metric(np.arange(g.size)))
    if not values:
        return Interval(point, float("nan"), float("nan"), 0)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return Interval(point, float(low), float(high), len(values))
