"""The default aggregator on feet: an 11-class erosion scale where readers miss subtle lesions.

Arrays only (the validation matrix's scenario), so it runs in seconds; the stored path on feet is
covered by test_ra2_feet_fused.
"""
from __future__ import annotations

import numpy as np

from consensus.aggregation import DEFAULT_AGGREGATOR
from consensus.validation_matrix import MATRIX_AGGREGATORS, fit_figures, matrix_run, matrix_summary
from scoring.guard import degeneracy_check
from scoring.readers import scenario_simulate


def test_feet_with_missed_subtle_lesions_are_a_wide_scale_where_every_reader_under_calls():
    def subtle_bias(study) -> tuple[float, float]:
        true = study.truth[study.task]
        subtle = (true >= 1) & (true <= 3)
        return float(np.mean(study.label[subtle] == 0)), float(np.mean(study.label[subtle] - true[subtle]))

    study = scenario_simulate("feet_visibility", seed=0)
    assert study.n_grades == 11 and study.truth.max() == 10
    missed, bias = subtle_bias(study)
    seen_missed, seen_bias = subtle_bias(scenario_simulate("feet_small", seed=0))
    # Missed lesions read as healthy by all readers alike: a bias no reader profile explains.
    assert missed > seen_missed + 0.1 and bias < seen_bias - 0.15


def test_the_default_ordinal_aggregator_holds_on_feet_with_missed_subtle_lesions():
    assert DEFAULT_AGGREGATOR == "OrdinalDawidSkene"
    cells = matrix_run(seeds=[0, 1, 2], scenarios=["feet_visibility"], aggregators=["MajorityVote", DEFAULT_AGGREGATOR])
    summary = matrix_summary(cells)
    vote, ordinal = summary[("feet_visibility", "MajorityVote")], summary[("feet_visibility", DEFAULT_AGGREGATOR)]
    # At least as good as the vote, without the guard tripping on the sparse upper grid.
    assert ordinal["accuracy"][0] >= vote["accuracy"][0] - 0.01
    assert ordinal["mae"][0] <= vote["mae"][0] + 0.02
    assert ordinal["within_one"][0] > 0.9 and ordinal["guard"][0] == 0.0
    assert ordinal["confusion_error"][0] < 0.06


def test_the_default_aggregator_keeps_the_upper_foot_grades():
    study = scenario_simulate("feet_visibility", seed=1)
    fit = MATRIX_AGGREGATORS[DEFAULT_AGGREGATOR](study)
    verdict = degeneracy_check(study.task, study.worker, study.label, fit.labels, n_classes=11,
                               confusion=fit.confusion, support=fit.support)
    assert not verdict.tripped
    severe = study.truth >= 7
    assert severe.sum() >= 10
    # Rare grades 7-10 are not pulled down into the crowded low grades.
    assert np.mean(np.abs(fit.labels[severe] - study.truth[severe]) <= 1) > 0.85
    assert fit_figures(study, fit)["within_one"] > 0.9
