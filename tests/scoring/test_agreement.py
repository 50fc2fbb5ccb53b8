"""Two-rater agreement figures against hand-computed values: one definition for readers and the model."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.agreement import (
    balanced_within_one,
    by_group,
    confusion_matrix,
    grade_report,
    quadratic_weighted_kappa,
    ratings_matrix,
    reader_vs_consensus,
    row_normalise,
    weighted_accuracy,
    within_one_accuracy,
)

NAN = np.nan

# Shared small case: 6 joints, true grades and one reader's grades.
TRUTH = [0, 0, 1, 2, 2, 2]
GIVEN = [0, 1, 1, 2, 2, 0]


def test_confusion_matrix_counts_rows_as_truth() -> None:
    # pairs (t, g): (0,0) (0,1) (1,1) (2,2) (2,2) (2,0)
    cm = confusion_matrix(TRUTH, GIVEN, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_confusion_matrix_rejects_grades_off_the_scale() -> None:
    with pytest.raises(ValueError, match="0..2"):
        confusion_matrix([0, 3], [0, 0], 3)


def test_row_normalise_leaves_rows_without_samples_at_zero() -> None:
    # grade 3 never occurs in the truth: its row stays 0, not NaN and not uniform
    cm = confusion_matrix(TRUTH, GIVEN, 4)
    np.testing.assert_allclose(
        row_normalise(cm),
        [[0.5, 0.5, 0, 0], [0, 1, 0, 0], [1 / 3, 0, 2 / 3, 0], [0, 0, 0, 0]],
    )


def test_weighted_accuracy_is_mean_recall_over_grades_present_in_truth() -> None:
    # recall: grade 0 -> 1/2, grade 1 -> 1/1, grade 2 -> 2/3; mean = 13/18 = 0.7222
    # (plain accuracy would be 4/6 = 0.667; counting the absent grade 3 as 0 would give 0.5417)
    assert weighted_accuracy(TRUTH, GIVEN, 4) == pytest.approx(13 / 18)


def test_within_one_accuracy_counts_off_by_one_as_agreement() -> None:
    # |t - g| = 0 1 0 0 0 2 -> 5 of 6 within one grade
    assert within_one_accuracy(TRUTH, GIVEN) == pytest.approx(5 / 6)


def test_quadratic_weighted_kappa_matches_hand_computation() -> None:
    # a = 0 1 2 2, b = 0 2 2 1, K = 3, weights (i-j)^2/4: w01 = w12 = 1/4, w02 = 1.
    # observed disagreement: cells (1,2) and (2,1), 1/4 each -> 0.5
    # marginals a = b = (1, 1, 2); expected cell = a_i * b_j / 4
    # expected disagreement: 2*(1/4 * 1/4) + 2*(1 * 2/4) + 2*(1/4 * 2/4) = 0.125 + 1 + 0.25 = 1.375
    # kappa = 1 - 0.5 / 1.375 = 7/11 (unweighted kappa here would be 0.2)
    assert quadratic_weighted_kappa([0, 1, 2, 2], [0, 2, 2, 1], 3) == pytest.approx(7 / 11)


def test_quadratic_weighted_kappa_is_one_for_identical_grades() -> None:
    assert quadratic_weighted_kappa([0, 1, 4, 2], [0, 1, 4, 2], 5) == pytest.approx(1.0)


def test_ratings_matrix_pivots_long_rows_and_refuses_double_grades() -> None:
    matrix, readers, units = ratings_matrix(["u2", "u1", "u1"], ["r1", "r1", "r2"], [3, 1, 2])
    assert readers == ["r1", "r2"] and units == ["u1", "u2"]
    np.testing.assert_array_equal(matrix, [[1, 3], [2, NAN]])
    with pytest.raises(ValueError, match="more than once"):
        ratings_matrix(["u1", "u1"], ["r1", "r1"], [1, 2])


def test_reader_vs_consensus_reports_each_reader_on_selected_units() -> None:
    ratings = np.array([GIVEN + [NAN], TRUTH + [1]], dtype=float)
    consensus = np.array(TRUTH + [1])
    out = reader_vs_consensus(ratings, consensus, 4, readers=["r1", "r2"])
    r1, r2 = out["r1"], out["r2"]
    assert r1.n_units == 6 and r2.n_units == 7
    np.testing.assert_array_equal(r1.confusion[:3, :3], [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert r1.confusion_normalised[2, 2] == pytest.approx(2 / 3)
    assert r1.weighted_accuracy == pytest.approx(13 / 18)
    assert r1.within_one == pytest.approx(5 / 6)
    # grade 0 -> 2/2, grade 1 -> 1/1, grade 2 -> 2/3 within one: both figures travel together
    assert r1.within_one_balanced == pytest.approx((1 + 1 + 2 / 3) / 3)
    assert r2.weighted_accuracy == pytest.approx(1.0)

    # restricted to the first three units: r1 has (0,0) (0,1) (1,1) -> recall 1/2 and 1 -> 0.75
    first3 = reader_vs_consensus(ratings, consensus, 4, readers=["r1", "r2"], units=np.arange(3))
    assert first3["r1"].n_units == 3
    assert first3["r1"].weighted_accuracy == pytest.approx(0.75)


def test_by_group_splits_units_by_joint_group() -> None:
    groups = np.array(["pip", "pip", "mcp", "mcp", "wrist", "wrist"])
    out = by_group(groups, within_one_accuracy, TRUTH, GIVEN)
    # pip: (0,0) (0,1) -> 1; mcp: (1,1) (2,2) -> 1; wrist: (2,2) (2,0) -> 1/2
    assert out == {"mcp": 1.0, "pip": 1.0, "wrist": 0.5}

    ratings = np.array([GIVEN], dtype=float)
    per_group = by_group(groups, reader_vs_consensus, ratings, TRUTH, n_grades=3)
    assert per_group["wrist"][0].confusion[2].tolist() == [1, 0, 1]


# --------------------------------------------------------------------------- the model's figures
# The model's evaluation uses the same functions; these cases were worked out for it.


def test_weighted_accuracy_ignores_grades_absent_from_the_truth_and_infers_the_scale() -> None:
    true = [0, 0, 0, 1, 1, 2]
    pred = [0, 0, 1, 1, 0, 2]
    # recalls: 2/3, 1/2, 1/1; grade 3 is absent from the truth and does not count
    assert weighted_accuracy(true, pred, 4) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    # always answering the majority grade scores 1 / (grades present), not the majority share
    assert weighted_accuracy([0] * 9 + [1], [0] * 10) == pytest.approx(0.5)


def test_within_one_is_a_plain_share_and_its_balanced_variant_weights_grades_equally() -> None:
    assert within_one_accuracy([0, 2, 4, 5], [1, 4, 4, 3]) == 0.5
    # nine undamaged joints read right, one grade-4 joint read as 0: the plain share hides the miss
    truth, given = [0] * 9 + [4], [0] * 10
    assert within_one_accuracy(truth, given) == pytest.approx(0.9)
    assert balanced_within_one(truth, given) == pytest.approx(0.5)
    # TRUTH/GIVEN: grade 0 -> 2/2, grade 1 -> 1/1, grade 2 -> 2/3 within one
    assert balanced_within_one(TRUTH, GIVEN, 3) == pytest.approx((1 + 1 + 2 / 3) / 3)


def test_model_kappa_cases_worked_by_hand() -> None:
    assert quadratic_weighted_kappa([0, 1, 2], [0, 1, 2]) == 1.0
    # 2 x 2 with chance-level agreement: observed [[1,1],[1,1]] equals expected -> kappa 0
    assert quadratic_weighted_kappa([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0)
    # true [0,1,2], pred [0,2,2]: observed weighted disagreement 1/4 (one cell at distance 1,
    # weight 1/4) over 3; expected: rows 1,1,1 x cols 1,0,2 / 3
    t, p = [0, 1, 2], [0, 2, 2]
    w = np.array([[0, 0.25, 1], [0.25, 0, 0.25], [1, 0.25, 0]])
    obs = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 1]])
    exp = np.outer([1, 1, 1], [1, 0, 2]) / 3
    assert quadratic_weighted_kappa(t, p) == pytest.approx(1 - (w * obs).sum() / (w * exp).sum())
    assert quadratic_weighted_kappa(t, p) == pytest.approx(0.8)


def test_edge_cases_are_decided_once_nan_for_nothing_compared_one_for_no_disagreement() -> None:
    for figure in (weighted_accuracy, within_one_accuracy, balanced_within_one, quadratic_weighted_kappa):
        assert np.isnan(figure([], [], 3)), figure.__name__
    # both raters used one grade only: kappa is 0/0 by the formula, but nobody disagreed
    assert quadratic_weighted_kappa([2, 2, 2], [2, 2, 2], 5) == 1.0
    # one rater constant, the other not: chance disagreement is positive, kappa is defined
    assert quadratic_weighted_kappa([0, 0, 0, 0], [0, 1, 0, 1], 2) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="whole numbers"):
        weighted_accuracy([0, 1.5], [0, 1], 3)
    with pytest.raises(ValueError, match="missing"):
        within_one_accuracy([0, NAN], [0, 1])


def test_grade_report_shows_plain_and_balanced_within_one_side_by_side() -> None:
    rep = grade_report([0, 1, 2], [0, 1, 1], 3)
    assert rep["n"] == 3 and rep["accuracy"] == pytest.approx(2 / 3)
    assert rep["confusion"] == [[1, 0, 0], [0, 1, 0], [0, 1, 0]]
    assert rep["weighted_accuracy"] == pytest.approx(2 / 3) and rep["within_one"] == 1.0
    skewed = grade_report([0] * 9 + [4], [0] * 10, 5)
    assert skewed["within_one"] == pytest.approx(0.9) and skewed["within_one_balanced"] == pytest.approx(0.5)
