"""Simulated readers of a patient's series, behaving as readers do in each reading mode.

A reader's habits (`scoring.readers.ReaderHabits`: spread, shift, lapse) set how one film is read:
the true grade plus the reader's shift plus normal noise, rounded to a grade, with an occasional
lapse to a uniform grade (the same draw as `scoring.readers.ordinal_confusion`). How the errors of
one joint's films relate to each other depends on the mode, as reported for paired reading:

- ``independent``: every film is read alone, in its own session among other patients' films. The
  reader's calibration drifts between sessions (a session shift, sd ``DRIFT_SD``), and the noise
  of each film is its own: errors at two visits are independent, so change scores are noisy and
  negative changes common.
- ``paired_hidden``: the films are side by side in a random order with dates hidden. Most of a
  joint's error is shared by all its films (the reader compares like with like: ``SHARED`` of the
  noise variance), and each film after the first is graded by how it differs from the one seen
  before it, so an unchanged joint keeps its grade and change is read better; the reader has no
  reason to avoid regression.
- ``paired_known``: side by side in chronological order. The same shared error, and the reader,
  knowing damage does not heal, rarely scores a joint lower than at the earlier visit: a fall is
  carried forward with probability ``CARRY_FORWARD``. Knowing the order also invites expectation:
  with probability ``EXPECTATION`` a follow-up joint that is borderline is nudged one grade up.

numpy only; every draw comes from an explicit generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .readers import ReaderHabits

Mode = Literal["independent", "paired_known", "paired_hidden"]
MODES: tuple[Mode, ...] = ("independent", "paired_known", "paired_hidden")

DRIFT_SD = 0.3  # sd of a reader's shift between reading sessions, in grades
SHARED = 0.9  # share of a joint's noise variance common to all its films when read side by side
CARRY_FORWARD = 0.9  # chance a reader in known order keeps a joint's earlier grade rather than lower it
EXPECTATION = 0.03  # chance a borderline follow-up joint is nudged up when the order is known


@dataclass(frozen=True)
class SeriesReader:
    name: str
    habits: ReaderHabits


def read_series(
    reader: SeriesReader,
    true: ArrayLike,
    max_grade: int,
    mode: Mode,
    rng: np.random.Generator,
) -> NDArray[np.int64]:
    """Grades one reader gives a series: ``true`` is ``timepoints x areas`` in chronological order.

    The returned grades are in chronological order too, whatever the order the reader saw: in
    ``paired_hidden`` mode the films are shuffled before reading and the grades mapped back.
    """
    t = np.asarray(true, dtype=float)
    if t.ndim != 2:
        raise ValueError("true must be timepoints x areas")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    T, A = t.shape
    h = reader.habits
    if mode == "independent":
        session = rng.normal(0.0, DRIFT_SD, size=(T, 1))
        noise = rng.normal(0.0, h.spread, size=(T, A))
        latent = t + h.shift + session + noise
        grades = np.clip(np.rint(latent), 0, max_grade)
        lapse = rng.random((T, A)) < h.lapse
        grades = np.where(lapse, rng.integers(0, max_grade + 1, size=(T, A)), grades)
    else:
        order = rng.permutation(T) if mode == "paired_hidden" else np.arange(T)
        shared = rng.normal(0.0, h.spread * np.sqrt(SHARED), size=(1, A))
        own = rng.normal(0.0, h.spread * np.sqrt(1.0 - SHARED), size=(T, A))
        seen = t[order] + h.shift + shared + own  # in the order the reader saw the films
        # A lapse side by side misjudges the joint on every film alike: the reader compares the
        # films, so a wrong grade on one is carried to the others.
        lapsed = rng.random((1, A)) < h.lapse
        seen = seen + np.where(lapsed, rng.integers(0, max_grade + 1, size=(1, A)) - seen[:1], 0.0)
        # Side by side, the first film is graded on its own and each next one by how much it
        # differs from the film before it: an unchanged joint keeps its grade.
        graded = np.empty_like(seen)
        graded[0] = np.clip(np.rint(seen[0]), 0, max_grade)
        for i in range(1, T):
            graded[i] = np.clip(graded[i - 1] + np.rint(seen[i] - seen[i - 1]), 0, max_grade)
        latent = np.empty_like(seen)
        latent[order] = seen  # mapped back to chronological order
        grades = np.empty_like(graded)
        grades[order] = graded
    if mode == "paired_known":
        nudge = (rng.random((T, A)) < EXPECTATION) & (np.abs(latent - np.rint(latent)) > 0.3)
        nudge[0] = False
        grades = np.minimum(grades + nudge, max_grade)
        carry = rng.random((T, A)) < CARRY_FORWARD
        for i in range(1, T):
            grades[i] = np.where(carry[i] & (grades[i] < grades[i - 1]), grades[i - 1], grades[i])
    return grades.astype(np.int64)


def make_series_panel(seed: int, n: int = 3) -> list[SeriesReader]:
    """`n` readers cycling accurate, severe, noisy and lenient habits, jittered by the seed."""
    from .readers import make_reader_panel

    return [SeriesReader(name=r.name, habits=r.habits) for r in make_reader_panel(seed, n=n)]  # type: ignore[arg-type]
