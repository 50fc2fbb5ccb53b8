"""Image-aware simulated readers: misses follow visibility, and each habit shows in the grades."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.image_readers import IMAGE_ARCHETYPES, ImageReader, make_image_reader_panel, miss_probability, visibility_array


def _missed_share(reader: ImageReader, visibility: float, n: int = 20000) -> float:
    true = np.full((n, 1), 2)
    given = reader.grade(true, np.full((n, 1), visibility), 5, np.random.default_rng(3))
    return float(np.mean(given == 0))


def test_the_miss_rate_falls_as_visibility_rises():
    careful = IMAGE_ARCHETYPES["careful"]
    rates = [_missed_share(careful, v) for v in (0.05, 0.2, 0.35, 0.6, 0.95)]
    assert all(a > b for a, b in zip(rates, rates[1:])), rates
    assert rates[0] > 0.7 and rates[-1] < 0.05


def test_miss_probability_is_one_half_at_the_readers_threshold():
    assert miss_probability(0.3, 0.3, 0.08) == pytest.approx(0.5)
    assert miss_probability(0.9, 0.3, 0.08) < 0.001


def test_a_fully_visible_undamaged_joint_is_read_as_undamaged_by_a_careful_reader():
    given = IMAGE_ARCHETYPES["careful"].grade(np.zeros((5000, 4), int), np.ones((5000, 4)), 5, 0)
    assert np.mean(given == 0) > 0.85


def test_a_severe_reader_over_calls_and_a_compressed_reader_avoids_the_ends_of_the_scale():
    rng = np.random.default_rng(1)
    true = rng.integers(0, 6, size=(4000, 5))
    vis = np.ones(true.shape)
    severe = IMAGE_ARCHETYPES["severe"].grade(true, vis, 5, 2)
    careful = IMAGE_ARCHETYPES["careful"].grade(true, vis, 5, 2)
    compressed = IMAGE_ARCHETYPES["compressed"].grade(true, vis, 5, 2)
    assert severe.mean() > careful.mean() + 0.2
    assert np.mean(compressed[true == 5] == 5) < 0.5 < np.mean(careful[true == 5] == 5)


def test_a_tired_reader_grades_lower_late_in_the_day_than_early():
    true = np.full((4000, 6), 3)
    given = IMAGE_ARCHETYPES["tired"].grade(true, np.ones(true.shape), 5, 4)
    assert given[:1000].mean() - given[-1000:].mean() > 0.3


def test_mix_ups_enter_a_neighbours_grade_at_the_readers_rate():
    reader = ImageReader("mixer", v50=0.0, slope=0.01, spread=0.01, mixup=0.05)
    true = np.tile([0, 4], (20000, 1))
    given = reader.grade(true, np.ones(true.shape), 5, 5)
    assert np.mean(given != true) == pytest.approx(0.05, abs=0.01)


def test_visibility_array_reads_phantom_dicts_and_treats_unlisted_areas_as_visible():
    films = [{"erosion": {"mcp2": 0.4}}, {}]
    arr = visibility_array(films, "erosion", ["mcp2", "mcp3"])
    assert arr.tolist() == [[0.4, 1.0], [1.0, 1.0]]
    with pytest.raises(ValueError, match="visibility"):
        visibility_array([{"erosion": {"mcp2": 1.5}}], "erosion", ["mcp2"])


def test_a_panel_cycles_the_archetypes():
    panel = make_image_reader_panel(0, 6)
    assert [r.archetype for r in panel] == ["careful", "severe", "compressed", "tired", "careless", "careful"]
