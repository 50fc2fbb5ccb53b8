"""Patient-level bootstrap intervals against cases whose answer is known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from scoring.bootstrap import patient_bootstrap


def test_interval_of_a_share_over_forty_patients_matches_the_binomial_quantiles():
    # 40 patients, half scoring 1 on every one of their 5 rows, half 0: a patient resample's mean
    # is Binomial(40, 0.5) / 40, whose 2.5 and 97.5 per cent quantiles are known exactly.
    values = np.repeat(np.r_[np.ones(20), np.zeros(20)], 5)
    groups = np.repeat(np.arange(40), 5)
    ci = patient_bootstrap(lambda idx: float(values[idx].mean()), groups, replicates=4000, seed=1)
    assert ci.value == pytest.approx(0.5)
    assert ci.low == pytest.approx(binom.ppf(0.025, 40, 0.5) / 40, abs=0.026)
    assert ci.high == pytest.approx(binom.ppf(0.975, 40, 0.5) / 40, abs=0.026)


def test_clustered_rows_give_a_wider_interval_than_rows_taken_as_independent():
    rng = np.random.default_rng(0)
    patient_effect = np.repeat(rng.random(20) < 0.5, 25).astype(float)
    groups = np.repeat(np.arange(20), 25)
    by_patient = patient_bootstrap(lambda idx: float(patient_effect[idx].mean()), groups, seed=2)
    by_row = patient_bootstrap(lambda idx: float(patient_effect[idx].mean()), np.arange(500), seed=2)
    assert (by_patient.high - by_patient.low) > 3 * (by_row.high - by_row.low)


def test_a_metric_equal_for_every_patient_has_a_zero_width_interval():
    ci = patient_bootstrap(lambda idx: 0.75, np.repeat(np.arange(8), 3), replicates=200)
    assert (ci.value, ci.low, ci.high) == (0.75, 0.75, 0.75)


def test_groups_must_name_one_patient_per_row():
    with pytest.raises(ValueError, match="groups"):
        patient_bootstrap(lambda idx: 0.0, np.zeros((2, 2)))
