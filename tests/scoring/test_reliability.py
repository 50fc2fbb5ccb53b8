"""Reliability statistics against published values."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.reliability import icc_2_1, krippendorff_alpha

NAN = np.nan


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
