"""Simulated readers: radiologists with known confusion matrices.

Consensus (Dawid-Skene), agreement statistics and model training are tested against readers whose
error patterns are known exactly. Each reader has, per scoring dimension, a confusion matrix
(rows: true grade, columns: given grade) built from three habits seen in real readers:

- spread: ordinal noise around the true grade (a latent normal error, binned to grades);
- shift: a bias towards severe (positive) or lenient (negative) grading;
- lapse: occasionally a grade unrelated to the film (uniform over the scale).

Reported radiologist agreement on hands is about 0.75 weighted accuracy and 0.98 within-one; the
default panel is set to that range. Only numpy is needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# Scoring dimensions and their maximum grade. Feet erosion runs 0-10 in SvdH.
DEFAULT_DIMENSIONS: dict[str, int] = {"erosion": 5, "jsn": 4}
FOOT_DIMENSIONS: dict[str, int] = {"foot_erosion": 10, "foot_jsn": 4}


@dataclass(frozen=True)
class ReaderHabits:
    """Parameters of one reader's confusion matrices (grade units of a 0-5 scale)."""

    spread: float
    shift: float = 0.0
    lapse: float = 0.0


# Archetypes cycled through by `make_reader_panel`.
ARCHETYPES: dict[str, ReaderHabits] = {
    "accurate": ReaderHabits(spread=0.4, shift=0.0, lapse=0.005),
    "severe": ReaderHabits(spread=0.45, shift=0.3, lapse=0.01),
    "noisy": ReaderHabits(spread=0.65, shift=0.0, lapse=0.02),
    "lenient": ReaderHabits(spread=0.45, shift=-0.3, lapse=0.01),
}


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def confusion_matrix(
    max_grade: int, spread: float, shift: float = 0.0, lapse: float = 0.0
) -> np.ndarray:
    """(max_grade+1) x (max_grade+1) row-stochastic matrix of P(given | true).

    The given grade is the true grade plus shift plus normal noise (sd = spread), rounded to the
    nearest grade; errors past either end pile up on 0 or the maximum, as a reader cannot give -1.
    With probability `lapse` the grade is uniform instead.
    """
    if max_grade < 1:
        raise ValueError("max_grade must be at least 1")
    if spread <= 0:
        raise ValueError("spread must be positive")
    if not 0.0 <= lapse <= 1.0:
        raise ValueError("lapse must lie in [0, 1]")
    n = max_grade + 1
    true = np.arange(n, dtype=float)[:, None]
    edges = np.arange(n + 1, dtype=float) - 0.5  # bin edges of the given grades
    z = (edges[None, :] - true - shift) / spread
    cdf = _normal_cdf(z)
    cdf[:, 0] = 0.0
    cdf[:, -1] = 1.0
    probs = np.diff(cdf, axis=1)
    probs = (1.0 - lapse) * probs + lapse / n
    return probs / probs.sum(axis=1, keepdims=True)


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


@dataclass
class SimulatedReader:
    """A reader with a known confusion matrix per dimension ("erosion" 6x6, "jsn" 5x5, ...)."""

    name: str
    confusion: dict[str, np.ndarray]
    habits: ReaderHabits | None = None
    archetype: str = ""
    metadata: dict[str, float] = field(default_factory=dict)

    def max_grade(self, dimension: str) -> int:
        return self._matrix(dimension).shape[0] - 1

    def _matrix(self, dimension: str) -> np.ndarray:
        try:
            return self.confusion[dimension]
        except KeyError:
            raise KeyError(
                f"reader {self.name!r} has no confusion matrix for {dimension!r}; "
                f"it has {sorted(self.confusion)}"
            ) from None

    def grade(
        self,
        true_grades: np.ndarray,
        dimension: str,
        rng: np.random.Generator | int | None = None,
    ) -> np.ndarray:
        """Grades this reader gives for films whose true grades are `true_grades` (any shape)."""
        matrix = self._matrix(dimension)
        true = np.asarray(true_grades)
        if true.size and (true.min() < 0 or true.max() >= matrix.shape[0]):
            raise ValueError(f"{dimension} grades must lie in 0..{matrix.shape[0] - 1}")
        true = true.astype(np.int64)
        cumulative = np.cumsum(matrix, axis=1)
        cumulative[:, -1] = 1.0  # guard against rounding: u < 1 always lands in a grade
        u = _as_rng(rng).random(true.shape)
        return (u[..., None] >= cumulative[true]).sum(axis=-1).astype(np.int64)


def make_reader(
    name: str,
    habits: ReaderHabits,
    dimensions: dict[str, int] | None = None,
    archetype: str = "",
) -> SimulatedReader:
    """A reader whose matrices all follow `habits`.

    Spread and shift are in grades of a 0-5 scale; on longer scales (foot erosion 0-10) they grow
    with the square root of the scale, as a wider scale splits the same visual judgement finer.
    """
    dims = dimensions or DEFAULT_DIMENSIONS
    confusion = {}
    for dim, max_grade in dims.items():
        stretch = math.sqrt(max_grade / 5.0) if max_grade > 5 else 1.0
        confusion[dim] = confusion_matrix(
            max_grade, habits.spread * stretch, habits.shift * stretch, habits.lapse
        )
    return SimulatedReader(name=name, confusion=confusion, habits=habits, archetype=archetype)


def make_reader_panel(
    seed: int, n: int = 3, dimensions: dict[str, int] | None = None
) -> list[SimulatedReader]:
    """`n` readers with distinct habits: accurate, severe-biased, noisy, lenient, then repeating.

    The seed jitters each reader's parameters by up to 10 per cent, so panels differ between
    seeds while keeping their archetypes; the true matrices stay on the readers for tests.
    """
    if n < 1:
        raise ValueError("a panel needs at least one reader")
    rng = np.random.default_rng(seed)
    names = list(ARCHETYPES)
    panel = []
    for i in range(n):
        kind = names[i % len(names)]
        base = ARCHETYPES[kind]
        jitter = 1.0 + 0.1 * rng.uniform(-1.0, 1.0, size=3)
        habits = ReaderHabits(
            spread=float(base.spread * jitter[0]),
            shift=float(base.shift * jitter[1]),
            lapse=float(base.lapse * jitter[2]),
        )
        panel.append(make_reader(f"reader_{i + 1}_{kind}", habits, dimensions, archetype=kind))
    return panel


def simulate_reads(
    readers: list[SimulatedReader],
    true_grades: np.ndarray,
    dimension: str,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Grades of every reader for every item: shape (len(readers), *true_grades.shape)."""
    generator = _as_rng(rng)
    return np.stack([r.grade(true_grades, dimension, generator) for r in readers])


def empirical_confusion(true: np.ndarray, given: np.ndarray, n_grades: int) -> np.ndarray:
    """Row-normalised confusion counted from paired grades; rows never seen stay all zero."""
    t = np.asarray(true, dtype=np.int64).ravel()
    g = np.asarray(given, dtype=np.int64).ravel()
    counts = np.zeros((n_grades, n_grades))
    np.add.at(counts, (t, g), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def _weights(n: int, weights: np.ndarray | None) -> np.ndarray:
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,) or w.min() < 0 or w.sum() <= 0:
        raise ValueError(f"weights must be {n} non-negative numbers")
    return w / w.sum()


def weighted_accuracy(confusion: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Chance of the exact grade, true grades weighted by `weights` (default: equally, i.e.
    class-balanced accuracy; pass grade prevalences for plain accuracy on that population)."""
    c = np.asarray(confusion, dtype=float)
    return float(np.dot(_weights(len(c), weights), np.diag(c)))


def within_one_accuracy(confusion: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Chance of a grade at most one away from the truth, weighted as in `weighted_accuracy`."""
    c = np.asarray(confusion, dtype=float)
    n = len(c)
    near = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]) <= 1
    return float(np.dot(_weights(n, weights), (c * near).sum(axis=1)))
