"""Longitudinal phantoms: series of 2-4 visits whose damage progresses at patient rates and never heals."""
from __future__ import annotations

import numpy as np
import pytest

from modeling.ml.longitudinal import (
    TIMEPOINT_NAMES,
    progress_grades,
    render_series,
    sample_cohort,
    sample_longitudinal_patient,
    total_score,
    true_change,
)
from modeling.ml.phantoms import PhantomConfig


def test_grades_never_fall_between_visits_and_every_series_has_two_to_four_visits() -> None:
    cohort = sample_cohort(seed=3, n_patients=60)
    assert {len(p.visits) for p in cohort} == {2, 3, 4}
    for patient in cohort:
        assert [v.timepoint for v in patient.visits] == list(TIMEPOINT_NAMES[: len(patient.visits)])
        for side in "LR":
            series = patient.grades(side)
            for before, after in zip(series, series[1:]):
                for dimension in before:
                    assert all(after[dimension][j] >= before[dimension][j] for j in before[dimension])


def test_most_patients_are_stable_and_the_rapid_few_carry_most_of_the_progression() -> None:
    cohort = sample_cohort(seed=5, n_patients=200)
    per_year = np.array([true_change(p, 0, len(p.visits) - 1)["total"] / (p.visits[-1].months / 12) for p in cohort])
    rapid = np.array([p.rapid for p in cohort])
    assert 0.05 < rapid.mean() < 0.3
    assert np.median(per_year[~rapid]) <= 1.0
    assert np.median(per_year[rapid]) > 4 * max(np.median(per_year[~rapid]), 0.5)
    assert per_year[rapid].sum() > per_year[~rapid].sum()


def test_rapid_progression_brings_new_erosions_growth_of_old_ones_and_narrowing() -> None:
    rng = np.random.default_rng(0)
    patient = sample_longitudinal_patient(rng, pseudonym="X", n_visits=2)
    before = {"erosion": {"mcp2": 0, "mcp3": 2, "pip2": 0}, "jsn": {"mcp2": 1, "pip2": 0}}
    after = progress_grades(before, np.random.default_rng(1), rate=6.0, years=2.0)
    assert after["erosion"]["mcp2"] > 0 or after["erosion"]["pip2"] > 0  # a new erosion
    assert after["erosion"]["mcp3"] > 2  # an existing one grew
    assert after["jsn"]["mcp2"] > 1 or after["jsn"]["pip2"] > 0  # narrowing
    assert total_score(after) > total_score(before)
    assert patient.visits[0].months == 0 and patient.visits[1].months == 12


def test_films_of_a_series_keep_the_hand_but_change_pose_between_visits() -> None:
    patient = sample_longitudinal_patient(np.random.default_rng(2), pseudonym="Y", n_visits=2)
    films = render_series(patient, "L", seed=9, config=PhantomConfig(width=192, height=240, mode="simple"))
    assert len(films) == 2
    assert films[0].hand_size == pytest.approx(films[1].hand_size)
    moved = np.linalg.norm(np.array(films[0].landmarks["mcp2"]) - np.array(films[1].landmarks["mcp2"]))
    assert moved > 0.5  # pixels: a new pose, not the same film twice
    assert films[1].grades == {dim: {**{j: 0 for j in films[1].grades[dim]}, **patient.grades("L")[1][dim]} for dim in films[1].grades}
