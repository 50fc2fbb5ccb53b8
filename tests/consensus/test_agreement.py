"""Agreement statistics against hand-computed and published values."""

from __future__ import annotations

import numpy as np
import pytest

from consensus.agreement import (
    by_group,
    confusion_matrix,
    icc_2_1,
    krippendorff_alpha,
    pairwise_kappa,
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


def test_pairwise_kappa_uses_only_units_both_readers_graded() -> None:
    ratings = np.array(
        [
            [0, 1, 2, 2, 4],
            [0, 2, 2, 1, NAN],  # with reader 0 on units 0..3 -> the 7/11 case above
            [NAN, NAN, NAN, NAN, 4],  # shares a single unit with each reader
        ]
    )
    kappas = pairwise_kappa(ratings, 5, readers=["a", "b", "c"])
    # K = 5 changes the weight scale but not the ratio: weights all divide by the same (K-1)^2
    assert kappas[("a", "b")] == pytest.approx(7 / 11)
    assert np.isnan(kappas[("a", "c")]) and np.isnan(kappas[("b", "c")])


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


# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", 4 observers x 12 units,
# published values: nominal 0.743, ordinal 0.815, interval 0.849.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
)


@pytest.mark.parametrize(("level", "expected"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorff_alpha_matches_published_example(level: str, expected: float) -> None:
    assert krippendorff_alpha(KRIPPENDORFF_2011, level) == pytest.approx(expected, abs=5e-4)


def test_krippendorff_ordinal_alpha_depends_on_rank_only() -> None:
    # squaring 1..5 keeps the order: ordinal alpha is unchanged, interval alpha is not
    squared = KRIPPENDORFF_2011**2
    original = krippendorff_alpha(KRIPPENDORFF_2011, "ordinal")
    assert krippendorff_alpha(squared, "ordinal") == pytest.approx(original)
    assert krippendorff_alpha(squared, "interval") != pytest.approx(0.849, abs=5e-3)


def test_krippendorff_alpha_small_hand_case() -> None:
    # 2 readers x 3 units, nominal: unit values (0,0) (0,1) (1,1).
    # coincidences: o00 = 2, o01 = o10 = 1, o11 = 2; n0 = n1 = 3, n = 6.
    # alpha = 1 - (n-1) * sum(o_ck, c != k) / sum(n_c n_k, c != k) = 1 - 5 * 2 / 18 = 4/9
    ratings = np.array([[0, 0, 1], [0, 1, 1]], dtype=float)
    assert krippendorff_alpha(ratings, "nominal") == pytest.approx(4 / 9)


def test_krippendorff_alpha_is_undefined_without_variation() -> None:
    assert np.isnan(krippendorff_alpha(np.array([[2, 2, NAN], [2, 2, 2]]), "ordinal"))
    assert krippendorff_alpha(np.array([[0, 3, 1], [0, 3, 1]]), "interval") == pytest.approx(1.0)


# Shrout & Fleiss (1979), Table 2: 6 targets x 4 judges; ICC(2,1) = 0.29.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
)


def test_icc_2_1_matches_shrout_fleiss() -> None:
    res = icc_2_1(SHROUT_FLEISS)
    # their mean squares: BMS 11.24, JMS 32.49, EMS 1.02
    assert res.ms_subjects == pytest.approx(11.24, abs=5e-3)
    assert res.ms_raters == pytest.approx(32.49, abs=5e-3)
    assert res.ms_error == pytest.approx(1.02, abs=5e-3)
    # (11.24 - 1.02) / (11.24 + 3 * 1.02 + 4 * (32.49 - 1.02) / 6) = 0.290
    assert res.icc == pytest.approx(0.2898, abs=5e-4)
    # McGraw & Wong interval, as also printed by R psych::ICC for these data: 0.019 .. 0.76
    assert res.ci_low == pytest.approx(0.019, abs=1e-3)
    assert res.ci_high == pytest.approx(0.761, abs=1e-3)


def test_icc_sem_and_sdc_use_pooled_sd_of_all_scores() -> None:
    res = icc_2_1(SHROUT_FLEISS)
    sd = SHROUT_FLEISS.astype(float).std(ddof=1)  # 2.7104 over the 24 scores
    assert res.sd_pooled == pytest.approx(2.7104, abs=1e-4)
    assert res.sem == pytest.approx(sd * np.sqrt(1 - res.icc))  # 2.284
    assert res.sdc == pytest.approx(1.96 * np.sqrt(2) * 2.2842, abs=1e-3)  # 6.331


def test_icc_refuses_missing_scores() -> None:
    with pytest.raises(ValueError, match="complete"):
        icc_2_1(np.array([[1, 2], [NAN, 3], [2, 2]]))
