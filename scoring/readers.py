"""The reader simulator: radiologists with known confusion matrices, reading designs and draws.

One simulator serves the consensus validation (`manage.py validate_consensus`), the Dawid-Skene
benchmark (`python -m consensus.bench_dawid_skene`), the synthetic benchmark project, the phantom
study and the active-learning simulation, so all of them draw grades the same way.

A reader has, per scoring scale, a row-stochastic confusion matrix P(given | true) (rows = true
grade). Two families build them:

- `ordinal_confusion` (readers of the phantom study and the active-learning loop): the true grade
  plus a bias ("shift") plus normal noise ("spread"), binned to grades, with occasional "lapses"
  to a uniform grade; `make_reader_panel` cycles accurate, severe, noisy and lenient readers.
  Reported radiologist agreement on hands is about 0.75 weighted accuracy and 0.98 within-one;
  the default panel is set to that range.
- `laplace_confusions` (the Dawid-Skene benchmark and validation): P(l | k) proportional to
  exp(-|l - k - bias| / spread), spread and bias drawn at random per reader.

`draw_grades` is the one draw. It takes an optional per-item ``visibility`` so that item
difficulty (a joint hidden by overlap, a faint film) can be passed in by a caller that knows it;
without it every item is read through the reader's matrix as is. Every draw comes from an
explicit seed or generator. numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .agreement import accuracy_from_confusion

# Scoring dimensions and their maximum grade. Feet erosion runs 0-10 in SvdH.
DEFAULT_DIMENSIONS: dict[str, int] = {"erosion": 5, "jsn": 4}
FOOT_DIMENSIONS: dict[str, int] = {"foot_erosion": 10, "foot_jsn": 4}

# Grade frequencies of an erosion-like scale: most joints are undamaged, severe damage is rare.
DEFAULT_PREVALENCE = (0.55, 0.2, 0.1, 0.07, 0.05, 0.03)

Rng = np.random.Generator | int | None


def _as_rng(rng: Rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


# --------------------------------------------------------------------------- the draw


def draw_grades(
    true: ArrayLike,
    confusion: ArrayLike,
    rng: Rng = None,
    *,
    reader: ArrayLike | None = None,
    visibility: ArrayLike | None = None,
) -> NDArray[np.int64]:
    """Grades given for items of true grade ``true`` (any shape) through row-stochastic ``confusion``.

    ``confusion`` is one matrix (true x given), or a ``readers x true x given`` stack with
    ``reader`` naming each item's reader (same shape as ``true``). ``visibility`` (optional, same
    shape, values in [0, 1]) is the chance a reader can judge the item at all: an item not seen is
    graded as an undamaged joint would be (grade 0's row), as damage hidden by overlap reads as
    none. Its draws come after the grade draws, so visibility 1 everywhere gives the grades of no
    visibility at all.
    """
    generator = _as_rng(rng)
    t = np.asarray(true).astype(np.int64)
    cumulative = np.cumsum(np.asarray(confusion, dtype=float), axis=-1)
    cumulative[..., -1] = 1.0  # u < 1 always lands in a grade despite rounding
    u = generator.random(t.shape)
    if visibility is not None:
        v = np.broadcast_to(np.asarray(visibility, dtype=float), t.shape)
        if v.size and (v.min() < 0.0 or v.max() > 1.0):
            raise ValueError("visibility must lie in [0, 1]")
        t = np.where(generator.random(t.shape) < v, t, 0)
    rows = cumulative[t] if reader is None else cumulative[np.asarray(reader, dtype=np.int64), t]
    return (u[..., None] >= rows).sum(axis=-1).astype(np.int64)


# --------------------------------------------------------------------------- confusion matrices


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def ordinal_confusion(max_grade: int, spread: float, shift: float = 0.0, lapse: float = 0.0) -> NDArray[np.float64]:
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


def laplace_confusions(n_readers: int, n_grades: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """``readers x true x given`` ordinal profiles: mostly right, errors fall off with distance.

    P(given l | true k) is proportional to exp(-|l - k - bias| / spread), so a miss is usually one
    grade off, as between radiologists, and a reader with a bias of +0.4 drifts upwards.
    """
    spread = rng.uniform(0.35, 0.9, size=n_readers)
    bias = rng.uniform(-0.5, 0.5, size=n_readers)
    grades = np.arange(n_grades)
    distance = np.abs(grades[None, None, :] - grades[None, :, None] - bias[:, None, None])
    weights = np.exp(-distance / spread[:, None, None])
    return weights / weights.sum(axis=2, keepdims=True)


def expected_accuracy(
    confusion: ArrayLike, prevalence: ArrayLike | None = None, *, tolerance: int = 0
) -> float:
    """A reader's expected accuracy from its matrix: `scoring.agreement.accuracy_from_confusion`.

    Without ``prevalence`` every true grade counts equally (the grade-balanced figure, weighted
    accuracy or balanced within-one); with grade prevalences it is the plain share on that
    population. ``tolerance=1`` gives within-one.
    """
    c = np.asarray(confusion, dtype=float)
    if prevalence is None:
        return accuracy_from_confusion(c, tolerance=tolerance)
    w = np.asarray(prevalence, dtype=float)
    if w.shape != (len(c),) or w.min() < 0 or w.sum() <= 0:
        raise ValueError(f"prevalence must be {len(c)} non-negative numbers")
    return accuracy_from_confusion(w[:, None] * c, tolerance=tolerance, balanced=False)


# --------------------------------------------------------------------------- readers and panels


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
        self, true_grades: ArrayLike, dimension: str, rng: Rng = None, *, visibility: ArrayLike | None = None
    ) -> NDArray[np.int64]:
        """Grades this reader gives for films whose true grades are `true_grades` (any shape)."""
        matrix = self._matrix(dimension)
        true = np.asarray(true_grades)
        if true.size and (true.min() < 0 or true.max() >= matrix.shape[0]):
            raise ValueError(f"{dimension} grades must lie in 0..{matrix.shape[0] - 1}")
        return draw_grades(true, matrix, rng, visibility=visibility)


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
        confusion[dim] = ordinal_confusion(max_grade, habits.spread * stretch, habits.shift * stretch, habits.lapse)
    return SimulatedReader(name=name, confusion=confusion, habits=habits, archetype=archetype)


def make_reader_panel(seed: int, n: int = 3, dimensions: dict[str, int] | None = None) -> list[SimulatedReader]:
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
    true_grades: ArrayLike,
    dimension: str,
    rng: Rng = None,
    *,
    visibility: ArrayLike | None = None,
) -> NDArray[np.int64]:
    """Grades of every reader for every item: shape (len(readers), *true_grades.shape)."""
    generator = _as_rng(rng)
    return np.stack([r.grade(true_grades, dimension, generator, visibility=visibility) for r in readers])


# --------------------------------------------------------------------------- reading designs


def reader_sets(*, n_items: int, n_readers: int, per_item: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """Which readers read each item: ``per_item`` distinct readers, the least loaded first.

    Ties in load are broken at random, so every pair of readers shares items (Dawid-Skene needs
    overlap to tell a reader's bias from the truth) and loads differ by at most one.
    """
    if not 1 <= per_item <= n_readers:
        raise ValueError(f"per_item must lie in 1..{n_readers}")
    load = np.zeros(n_readers)
    out = np.empty((n_items, per_item), dtype=np.int64)
    for i in range(n_items):
        order = np.lexsort((rng.random(n_readers), load))
        chosen = np.sort(order[:per_item])
        load[chosen] += 1
        out[i] = chosen
    return out


# --------------------------------------------------------------------------- flat label studies


@dataclass
class LabelStudy:
    """A simulated study as flat label arrays, plus the truth and the readers that produced them."""

    task: NDArray[np.int64]
    worker: NDArray[np.int64]
    label: NDArray[np.int64]
    truth: NDArray[np.int64]  # true grade per task
    confusion: NDArray[np.float64]  # readers x true x given, the matrices the labels were drawn from

    @property
    def n_labels(self) -> int:
        return int(self.task.size)


def label_study_simulate(
    n_labels: int,
    *,
    n_readers: int = 5,
    readers_per_task: int = 3,
    n_grades: int = 6,
    prevalence: tuple[float, ...] | None = DEFAULT_PREVALENCE,
    seed: int = 0,
    visibility: ArrayLike | None = None,
) -> LabelStudy:
    """About ``n_labels`` labels: each task graded by ``readers_per_task`` distinct readers.

    Labels are ordered by task then reader, the order rows come out of a grades table.
    ``prevalence=None`` draws grades uniformly; ``visibility`` is per task (see `draw_grades`).
    """
    rng = np.random.default_rng(seed)
    n_tasks = max(1, n_labels // readers_per_task)
    p = np.full(n_grades, 1.0 / n_grades) if prevalence is None else np.asarray(prevalence, float)
    p = p / p.sum()
    truth = rng.choice(n_grades, size=n_tasks, p=p)
    confusion = laplace_confusions(n_readers, n_grades, rng)
    # The first readers_per_task columns of a random permutation per task: distinct readers.
    readers = np.argsort(rng.random((n_tasks, n_readers)), axis=1)[:, :readers_per_task]
    readers.sort(axis=1)
    task = np.repeat(np.arange(n_tasks), readers_per_task)
    worker = readers.ravel()
    seen = None if visibility is None else np.asarray(visibility, dtype=float)[task]
    label = draw_grades(truth[task], confusion, rng, reader=worker, visibility=seen)
    return LabelStudy(task=task, worker=worker.astype(np.int64), label=label, truth=truth, confusion=confusion)


# --------------------------------------------------------------------------- film studies

# Joint name -> grade, per dimension: {"erosion": {"mcp2": 1, ...}, "jsn": {...}}
FilmGrades = dict[str, dict[str, int]]


@dataclass(frozen=True)
class SimulatedFilm:
    pseudonym: str
    laterality: str
    truth: FilmGrades
    # Joint name -> chance a reader can judge it, per dimension; missing joints are fully visible.
    visibility: FilmGrades | None = None
    body_part: str = "hand"  # "foot": graded on the foot's areas (erosion 0-10)


@dataclass(frozen=True)
class SimulatedRead:
    film: int  # index into SimulatedStudy.films
    reader: int  # index into SimulatedStudy.readers
    grades: FilmGrades


@dataclass
class SimulatedStudy:
    films: list[SimulatedFilm]
    readers: list[str]
    # Per dimension, readers x true grade x given grade: the matrices the reads were drawn from.
    confusion: dict[str, NDArray[np.float64]]
    reads: list[SimulatedRead] = field(default_factory=list)


def study_simulate(
    *,
    films: Sequence[SimulatedFilm],
    readers: Sequence[str],
    confusion: Mapping[str, NDArray[np.float64]],
    per_film: int,
    seed: int,
) -> SimulatedStudy:
    """Each film read by ``per_film`` of the readers, each grading every joint through its matrix."""
    rng = np.random.default_rng(seed)
    matrices = {dim: np.asarray(m, dtype=float) for dim, m in confusion.items()}
    for dim, m in matrices.items():
        if m.shape[0] != len(readers) or m.shape[1] != m.shape[2]:
            raise ValueError(f"{dim} confusion must be readers x grades x grades, got {m.shape}")
    design = reader_sets(n_items=len(films), n_readers=len(readers), per_item=per_film, rng=rng)
    reads = []
    for i, film in enumerate(films):
        for reader in design[i]:
            grades: FilmGrades = {}
            for dim, truth in film.truth.items():
                names = list(truth)
                seen = None
                if film.visibility and dim in film.visibility:
                    seen = np.array([film.visibility[dim].get(n, 1.0) for n in names], dtype=float)
                given = draw_grades(np.array([truth[n] for n in names]), matrices[dim][reader], rng, visibility=seen)
                grades[dim] = {n: int(g) for n, g in zip(names, given)}
            reads.append(SimulatedRead(film=i, reader=int(reader), grades=grades))
    return SimulatedStudy(films=list(films), readers=list(readers), confusion=matrices, reads=reads)


# --------------------------------------------------------------------------- scoring a study


def label_accuracy(labels: Mapping[object, int], truth: Mapping[object, int]) -> float:
    """Share of the truth's items whose label equals the true grade (a missing label is wrong)."""
    if not truth:
        return float("nan")
    return sum(labels.get(key) == grade for key, grade in truth.items()) / len(truth)


def confusion_mad(estimated: Mapping[object, ArrayLike], true: Mapping[object, ArrayLike]) -> float:
    """Mean absolute difference over every cell of the readers' estimated and true matrices."""
    diffs = [np.abs(np.asarray(estimated[r], float) - np.asarray(true[r], float)).ravel() for r in true if r in estimated]
    return float(np.concatenate(diffs).mean()) if diffs else float("nan")


# --------------------------------------------------------------------------- hard scenarios

# Grade frequencies of foot erosion (0-10): most areas undamaged, the upper half of the grid rare.
FOOT_EROSION_PREVALENCE = (0.46, 0.16, 0.1, 0.07, 0.055, 0.045, 0.035, 0.025, 0.02, 0.015, 0.015)


@dataclass(frozen=True)
class Scenario:
    """One study design of the validation matrix: who reads what, and how readers go wrong."""

    name: str
    description: str
    n_tasks: int
    n_readers: int
    per_task: int
    prevalence: tuple[float, ...] = DEFAULT_PREVALENCE


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("default", "120 hand films x 16 erosion areas, 5 readers (accurate, severe, noisy, lenient), 3 per area", 1920, 5, 3),
        Scenario("feet_small", "24 patients, both feet x 6 areas, feet erosion 0-10, 3 readers read everything", 288, 3, 3, FOOT_EROSION_PREVALENCE),
        Scenario("visibility", "as default, but subtle lesions (grades 1-2) are often not seen by anyone: errors depend on the area", 1920, 5, 3),
        Scenario("feet_visibility", "48 patients, both feet x 6 areas, erosion 0-10, 3 readers read everything; subtle lesions (1-3) often not seen by anyone", 576, 3, 3, FOOT_EROSION_PREVALENCE),
        Scenario("drift", "as default, one reader drifts from lenient (-0.6) to severe (+0.9) over the study", 1920, 5, 3),
        Scenario("compressed", "as default, one reader never gives 4 or 5 (compressed scale)", 1920, 5, 3),
        Scenario("careless", "as default, one reader is near-random (80 % lapses)", 1920, 5, 3),
        Scenario("sparse", "10 readers, 2 per area (k-of-n), fewer areas per reader", 1920, 10, 2),
        Scenario("large", "34,000 areas x 3 of 5 readers: 102,000 grades", 34000, 5, 3),
    )
}


@dataclass
class ScenarioStudy(LabelStudy):
    """A `LabelStudy` of one scenario; ``confusion`` is the realised P(given | true) per reader.

    Realised (labels counted against the truth, rows normalised; a row without areas keeps the
    matrix it would have been drawn from) because under drift and visibility no single matrix
    drew the labels, and the realised one is what an estimator can at best recover.
    """

    scenario: str = ""
    n_grades: int = 6


def scenario_simulate(name: str, *, seed: int, size: float = 1.0) -> ScenarioStudy:
    """Draw the labels of scenario ``name``; ``size`` scales the number of areas (tests use 0.1-0.3)."""
    try:
        spec = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}") from None
    rng = np.random.default_rng([seed, list(SCENARIOS).index(name)])
    n_tasks = max(30 * spec.per_task, int(round(spec.n_tasks * size)))
    K = len(spec.prevalence)
    dims = {"scale": K - 1}
    panel = make_reader_panel(seed, n=spec.n_readers, dimensions=dims)
    matrices = np.stack([r.confusion["scale"] for r in panel])
    p = np.asarray(spec.prevalence, dtype=float)
    truth = rng.choice(K, size=n_tasks, p=p / p.sum())
    readers = np.argsort(rng.random((n_tasks, spec.n_readers)), axis=1)[:, : spec.per_task]
    readers.sort(axis=1)
    task = np.repeat(np.arange(n_tasks), spec.per_task)
    worker = readers.ravel().astype(np.int64)
    true_of_label = truth[task]
    visibility = None
    if name in ("visibility", "feet_visibility"):
        # A subtle lesion is missed by everyone who cannot see it: one visibility per area. On the
        # foot's 0-10 scale (two sides of up to 5) "subtle" reaches a grade further.
        subtle = 2 if K <= 6 else 3
        per_area = np.where(truth <= subtle, rng.uniform(0.35, 1.0, n_tasks), rng.uniform(0.85, 1.0, n_tasks))
        visibility = per_area[task]
    if name == "compressed":
        squeezed = matrices[1].copy()
        squeezed[:, 3] += squeezed[:, 4:].sum(axis=1)
        squeezed[:, 4:] = 0.0
        matrices[1] = squeezed
    if name == "careless":
        matrices[2] = ordinal_confusion(K - 1, 0.65, 0.0, lapse=0.8)
    label = draw_grades(true_of_label, matrices, rng, reader=worker, visibility=visibility)
    if name == "drift":
        # Reader 0's bias moves linearly with the area's place in the study, in ten steps.
        mine = np.flatnonzero(worker == 0)
        phase = task[mine] * 10 // n_tasks
        for step in range(10):
            at = mine[phase == step]
            shifted = ordinal_confusion(K - 1, 0.45, -0.6 + 1.5 * step / 9, lapse=0.01)
            label[at] = draw_grades(true_of_label[at], shifted, rng)
    realised = np.zeros((spec.n_readers, K, K))
    np.add.at(realised, (worker, true_of_label, label), 1.0)
    totals = realised.sum(axis=2, keepdims=True)
    realised = np.where(totals > 0, realised / np.maximum(totals, 1.0), matrices)
    return ScenarioStudy(
        task=task, worker=worker, label=label, truth=truth, confusion=realised, scenario=name, n_grades=K
    )
