"""The reader simulator: stated confusion matrices are the ones the grades actually follow."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.agreement import confusion_matrix, row_normalise
from scoring.readers import (
    DEFAULT_DIMENSIONS,
    FOOT_DIMENSIONS,
    ReaderHabits,
    draw_grades,
    expected_accuracy,
    label_study_simulate,
    laplace_confusions,
    make_reader,
    make_reader_panel,
    ordinal_confusion,
    reader_sets,
    simulate_reads,
)

# Grade mix of the phantom cohort (most joints undamaged), used to weight agreement figures.
EROSION_PREVALENCE = np.array([0.765, 0.125, 0.048, 0.026, 0.017, 0.019])


def test_every_matrix_is_square_on_its_scale_and_its_rows_sum_to_one() -> None:
    panel = make_reader_panel(seed=1, n=4, dimensions={**DEFAULT_DIMENSIONS, **FOOT_DIMENSIONS})
    sizes = {"erosion": 6, "jsn": 5, "foot_erosion": 11, "foot_jsn": 5}
    for reader in panel:
        for dim, size in sizes.items():
            m = reader.confusion[dim]
            assert m.shape == (size, size)
            assert np.all(m >= 0) and np.allclose(m.sum(axis=1), 1.0)
            assert reader.max_grade(dim) == size - 1


@pytest.mark.parametrize("dimension", ["erosion", "jsn"])
def test_empirical_confusion_from_many_reads_matches_the_stated_matrix(dimension: str) -> None:
    rng = np.random.default_rng(0)
    n_grades = DEFAULT_DIMENSIONS[dimension] + 1
    truth = np.repeat(np.arange(n_grades), 20_000)
    for reader in make_reader_panel(seed=3, n=3):
        given = reader.grade(truth, dimension, rng)
        observed = row_normalise(confusion_matrix(truth, given, n_grades))
        # 20,000 reads per row: binomial sd is at most 0.0036 per cell.
        assert np.abs(observed - reader.confusion[dimension]).max() < 0.015, reader.name


def test_the_panel_has_an_accurate_a_severe_and_a_noisy_reader() -> None:
    accurate, severe, noisy = make_reader_panel(seed=5, n=3)
    assert [r.archetype for r in (accurate, severe, noisy)] == ["accurate", "severe", "noisy"]
    assert len({r.name for r in (accurate, severe, noisy)}) == 3
    for dim in ("erosion", "jsn"):
        assert expected_accuracy(accurate.confusion[dim]) > expected_accuracy(noisy.confusion[dim])
        assert expected_accuracy(accurate.confusion[dim], tolerance=1) > expected_accuracy(
            noisy.confusion[dim], tolerance=1
        )
    # Measured, not only stated: the accurate reader agrees more with the truth.
    rng = np.random.default_rng(11)
    truth = rng.choice(6, size=30_000, p=EROSION_PREVALENCE)
    hits = {r.name: np.mean(r.grade(truth, "erosion", rng) == truth) for r in (accurate, noisy)}
    assert hits[accurate.name] > hits[noisy.name] + 0.05


def test_a_severe_reader_overgrades_and_a_lenient_reader_undergrades() -> None:
    panel = make_reader_panel(seed=2, n=4)
    by_kind = {r.archetype: r for r in panel}
    rng = np.random.default_rng(4)
    truth = np.repeat(np.arange(1, 5), 5_000)  # interior grades, where both directions are open
    bias = {k: np.mean(r.grade(truth, "erosion", rng) - truth) for k, r in by_kind.items()}
    assert bias["severe"] > 0.15 and bias["lenient"] < -0.15
    assert abs(bias["accurate"]) < 0.05


def test_panel_agreement_is_in_the_range_reported_for_radiologists() -> None:
    panel = make_reader_panel(seed=0, n=3)
    acc = np.mean([expected_accuracy(r.confusion["erosion"], EROSION_PREVALENCE) for r in panel])
    near = np.mean([expected_accuracy(r.confusion["erosion"], EROSION_PREVALENCE, tolerance=1) for r in panel])
    assert 0.68 < acc < 0.82
    assert near > 0.97


def test_a_panel_is_reproducible_from_its_seed_and_differs_between_seeds() -> None:
    a, b, c = make_reader_panel(7), make_reader_panel(7), make_reader_panel(8)
    for x, y in zip(a, b):
        assert np.array_equal(x.confusion["jsn"], y.confusion["jsn"])
    assert not np.array_equal(a[0].confusion["jsn"], c[0].confusion["jsn"])
    truth = np.arange(5).repeat(10)
    assert np.array_equal(a[1].grade(truth, "jsn", 3), b[1].grade(truth, "jsn", 3))


def test_simulated_reads_stack_one_row_per_reader_and_keep_the_item_shape() -> None:
    panel = make_reader_panel(seed=1, n=5)
    truth = np.random.default_rng(0).integers(0, 5, size=(7, 15))
    reads = simulate_reads(panel, truth, "jsn", rng=9)
    assert reads.shape == (5, 7, 15)
    assert reads.min() >= 0 and reads.max() <= 4
    assert [r.archetype for r in panel] == ["accurate", "severe", "noisy", "lenient", "accurate"]


def test_grades_off_the_scale_and_unknown_dimensions_are_rejected() -> None:
    reader = make_reader("r", ReaderHabits(spread=0.4))
    with pytest.raises(ValueError, match="0..4"):
        reader.grade(np.array([0, 5]), "jsn")
    with pytest.raises(KeyError, match="foot_erosion"):
        reader.grade(np.array([0]), "foot_erosion")
    with pytest.raises(ValueError):
        ordinal_confusion(5, spread=0.0)


def test_a_tiny_spread_without_lapses_reads_every_grade_exactly() -> None:
    m = ordinal_confusion(5, spread=0.05)
    assert np.allclose(m, np.eye(6), atol=1e-6)
    lapsed = ordinal_confusion(5, spread=0.05, lapse=0.12)
    assert np.allclose(np.diag(lapsed), 0.88 + 0.12 / 6, atol=1e-6)


def test_expected_accuracy_matches_what_a_reader_scores_on_many_reads() -> None:
    reader = make_reader_panel(seed=4, n=3)[2]  # the noisy one: far from perfect
    rng = np.random.default_rng(12)
    truth = rng.choice(6, size=200_000, p=EROSION_PREVALENCE)
    given = reader.grade(truth, "erosion", rng)
    m = reader.confusion["erosion"]
    assert np.mean(given == truth) == pytest.approx(expected_accuracy(m, EROSION_PREVALENCE), abs=0.005)
    assert np.mean(np.abs(given - truth) <= 1) == pytest.approx(expected_accuracy(m, EROSION_PREVALENCE, tolerance=1), abs=0.003)
    per_grade = [np.mean(given[truth == k] == k) for k in range(6)]
    assert np.mean(per_grade) == pytest.approx(expected_accuracy(m), abs=0.02)


def test_a_stack_of_reader_matrices_draws_each_item_through_its_own_readers_matrix() -> None:
    confusion = laplace_confusions(3, 4, np.random.default_rng(0))
    truth = np.repeat(np.arange(4), 30_000)
    reader = np.tile(np.arange(3), truth.size // 3)
    given = draw_grades(truth, confusion, 5, reader=reader)
    for r in range(3):
        mine = reader == r
        observed = row_normalise(confusion_matrix(truth[mine], given[mine], 4))
        assert np.abs(observed - confusion[r]).max() < 0.02, r


def test_hidden_joints_read_as_undamaged_and_full_visibility_changes_nothing() -> None:
    reader = make_reader("r", ReaderHabits(spread=0.05))  # reads every visible grade exactly
    truth = np.full(20_000, 4)
    plain = reader.grade(truth, "erosion", 3)
    assert np.array_equal(plain, reader.grade(truth, "erosion", 3, visibility=np.ones(truth.size)))
    half = reader.grade(truth, "erosion", 3, visibility=0.5)
    assert np.mean(half == 4) == pytest.approx(0.5, abs=0.02)
    assert set(np.unique(half)) == {0, 4}
    with pytest.raises(ValueError, match="visibility"):
        draw_grades(truth, reader.confusion["erosion"], 0, visibility=1.5)


def test_label_study_gives_each_task_distinct_readers_and_is_fixed_by_its_seed() -> None:
    a, b = label_study_simulate(600, n_readers=5, seed=3), label_study_simulate(600, n_readers=5, seed=3)
    assert np.array_equal(a.label, b.label) and a.n_labels == 600
    per_task = a.worker.reshape(-1, 3)
    assert all(len(set(row)) == 3 for row in per_task.tolist())
    assert not np.array_equal(a.label, label_study_simulate(600, n_readers=5, seed=4).label)


def test_reading_design_balances_loads_and_uses_distinct_readers() -> None:
    design = reader_sets(n_items=100, n_readers=6, per_item=3, rng=np.random.default_rng(1))
    loads = np.bincount(design.ravel(), minlength=6)
    assert loads.max() - loads.min() <= 1
    assert all(len(set(row)) == 3 for row in design.tolist())
