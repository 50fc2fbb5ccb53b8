"""Simulated reader studies with a known truth, for validating the consensus against it.

Arrays and plain dataclasses only, no ORM: a study is drawn here from true grades and reader
confusion matrices that the caller supplies (the modeling app's phantom grades and simulated
readers, or ``consensus.bench_dawid_skene.reader_confusions``), and scored here against the
consensus read back from the database. Every draw comes from one explicit seed.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

# Joint name -> grade, per dimension: {"erosion": {"mcp2": 1, ...}, "jsn": {...}}
FilmGrades = dict[str, dict[str, int]]


@dataclass(frozen=True)
class SimulatedFilm:
    pseudonym: str
    laterality: str
    truth: FilmGrades


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


def grades_draw(
    true: NDArray[np.int64], confusion: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.int64]:
    """Grades a reader with row-stochastic ``confusion`` (rows = true grade) gives for ``true``."""
    cumulative = np.cumsum(confusion, axis=1)
    cumulative[:, -1] = 1.0  # u < 1 always lands in a grade despite rounding
    u = rng.random(np.shape(true))
    return (u[..., None] >= cumulative[np.asarray(true, dtype=np.int64)]).sum(axis=-1).astype(np.int64)


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
                given = grades_draw(np.array([truth[n] for n in names]), matrices[dim][reader], rng)
                grades[dim] = {n: int(g) for n, g in zip(names, given)}
            reads.append(SimulatedRead(film=i, reader=int(reader), grades=grades))
    return SimulatedStudy(films=list(films), readers=list(readers), confusion=matrices, reads=reads)


def accuracy(labels: Mapping[object, int], truth: Mapping[object, int]) -> float:
    """Share of the truth's items whose label equals the true grade (a missing label is wrong)."""
    if not truth:
        return float("nan")
    return sum(labels.get(key) == grade for key, grade in truth.items()) / len(truth)


def confusion_mad(estimated: Mapping[str, NDArray[np.float64]], true: Mapping[str, NDArray[np.float64]]) -> float:
    """Mean absolute difference over every cell of the readers' estimated and true matrices."""
    diffs = [np.abs(np.asarray(estimated[r], float) - np.asarray(true[r], float)).ravel() for r in true if r in estimated]
    return float(np.concatenate(diffs).mean()) if diffs else float("nan")
