"""Acquisition scores on hand-made distributions: each strategy ranks a confident and an unsure case."""
from __future__ import annotations

import math

import numpy as np
import pytest

from modeling.ml import acquisition as A

# Erosion areas (grades 0-5).
CONFIDENT = [0.96, 0.02, 0.01, 0.01, 0.0, 0.0]
UNSURE = [0.35, 0.33, 0.3, 0.02, 0.0, 0.0]
# Unsure between neighbours (0 or 1) versus unsure between far-apart grades (0 or 4).
NEAR_DOUBT = [0.5, 0.5, 0.0, 0.0, 0.0, 0.0]
FAR_DOUBT = [0.5, 0.0, 0.0, 0.0, 0.5, 0.0]
LIKELY_FOUR = [0.0, 0.0, 0.0, 0.05, 0.9, 0.05]
UNSURE_LOW = [0.4, 0.35, 0.25, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("strategy", ["entropy", "margin", "expected_error", "rare_boost", "diverse"])
def test_every_strategy_scores_the_unsure_area_above_the_confident_one(strategy):
    scores = A.area_scores(strategy, np.array([CONFIDENT, UNSURE]))
    assert scores[1] > scores[0]


@pytest.mark.parametrize("strategy", ["entropy", "margin", "expected_error", "rare_boost", "diverse"])
def test_every_strategy_scores_the_unsure_hand_above_the_confident_one(strategy):
    # Both hands equally damaged (the same expected grades), so only the doubt differs.
    sure, unsure = [0.0, 1.0, 0.0, 0.0, 0.0, 0.0], [0.3, 0.4, 0.3, 0.0, 0.0, 0.0]
    scores = A.item_scores(strategy, np.array([[sure] * 31, [unsure] * 31]))
    assert scores[1] > scores[0]


def test_entropy_is_normalised_per_scale_so_erosion_and_jsn_compare():
    probs, n_grades = A.pad_distributions([[1 / 6] * 6, [0.2] * 5, [1.0, 0, 0, 0, 0]])
    assert probs.shape == (3, 6) and n_grades.tolist() == [6, 5, 5]
    assert A.entropy(probs, n_grades) == pytest.approx([1.0, 1.0, 0.0])


def test_margin_is_one_for_a_tie_and_small_for_a_clear_winner():
    assert A.margin(np.array([NEAR_DOUBT, CONFIDENT])) == pytest.approx([1.0, 1 - (0.96 - 0.02)])


def test_expected_grade_error_knows_that_far_doubt_is_worse_than_near_doubt():
    # Entropy cannot tell them apart; the ordinal spread can.
    assert A.entropy(np.array([NEAR_DOUBT]))[0] == pytest.approx(A.entropy(np.array([FAR_DOUBT]))[0])
    near, far = A.expected_grade_error(np.array([NEAR_DOUBT, FAR_DOUBT]))
    assert near == pytest.approx(0.5) and far == pytest.approx(2.0)
    assert A.median_grade(np.array([FAR_DOUBT, LIKELY_FOUR])).tolist() == [0, 4]


def test_mutual_information_is_high_where_samples_disagree_not_where_each_is_flat():
    flat = np.full((4, 6), 1 / 6)  # every pass equally unsure: noise, nothing to learn
    split = np.array([[0.9, 0.1, 0, 0, 0, 0], [0, 0, 0, 0.1, 0.9, 0]] * 2)  # passes disagree
    agree = np.array([CONFIDENT] * 4)
    samples = np.stack([flat, split, agree], axis=1)  # (S=4, areas=3, K=6)
    mi = A.mutual_information(samples)
    assert mi[0] == pytest.approx(0.0, abs=1e-12)
    assert mi[2] == pytest.approx(0.0, abs=1e-12)
    assert mi[1] > 0.3
    assert A.area_scores("bald", samples.mean(0), samples=samples).argmax() == 1
    with pytest.raises(ValueError, match="sampled distributions"):
        A.area_scores("bald", samples.mean(0))


def test_the_rare_grade_boost_ranks_a_likely_damaged_hand_above_an_unsure_healthy_one():
    # Hand A: the model is fairly sure of grade 4 in eight joints and of 0 elsewhere.
    # Hand B: sure of 0 except three joints that may be 1.
    damaged = np.array([LIKELY_FOUR] * 8 + [CONFIDENT] * 23)
    unsure = np.array([[0.8, 0.2, 0, 0, 0, 0]] * 3 + [CONFIDENT] * 28)
    hands = np.stack([damaged, unsure])
    assert A.item_scores("entropy", hands)[1] > A.item_scores("entropy", hands)[0]  # doubt alone picks B
    boosted = A.item_scores("rare_boost", hands)
    assert boosted[0] > boosted[1]
    # The boost is the weight times the damage burden, on top of the entropy's top-3 mean.
    burden = A.damage_burden(hands)
    sure_zero = (0.02 + 2 * 0.01 + 3 * 0.01) / 5
    assert burden == pytest.approx([(8 * (4 * 0.9 + 3 * 0.05 + 5 * 0.05) / 5 + 23 * sure_zero) / 31, (3 * 0.2 / 5 + 28 * sure_zero) / 31])
    assert boosted - A.item_scores("entropy", hands) == pytest.approx(A.DEFAULT_RARE_WEIGHT * burden)
    assert A.item_scores("rare_boost", hands, rare_weight=0.0) == pytest.approx(A.item_scores("entropy", hands))


def test_the_damage_burden_reads_each_area_on_its_own_scale():
    # Grade 4 is the top of JSN (0-4) but not of erosion (0-5).
    probs, n_grades = A.pad_distributions([[0, 0, 0, 0, 1.0, 0], [0, 0, 0, 0, 1.0]])
    assert A.expected_relative_grade(probs, n_grades) == pytest.approx([0.8, 1.0])
    assert A.damage_burden(probs[None], n_grades) == pytest.approx([0.9])


def test_a_young_model_that_never_predicts_grade_three_still_orders_hands_by_damage():
    # What a model trained on a few mild hands outputs: P(G >= 3) is 0 everywhere, so a boost
    # built on it could not tell these hands apart; the expected grade can.
    mild = np.array([[0.7, 0.3, 0.0, 0.0, 0.0, 0.0]] * 31)
    worse = np.array([[0.2, 0.5, 0.3, 0.0, 0.0, 0.0]] * 31)
    hands = np.stack([mild, worse])
    assert hands[..., A.RARE_GRADE:].sum(-1).max() == 0.0
    assert A.damage_burden(hands)[1] > A.damage_burden(hands)[0]
    assert A.item_scores("rare_boost", hands).argmax() == 1


def test_random_scores_are_reproducible_from_the_seed_and_differ_between_seeds():
    probs = np.tile(CONFIDENT, (50, 1))
    assert np.array_equal(A.area_scores("random", probs, rng=3), A.area_scores("random", probs, rng=3))
    assert not np.array_equal(A.area_scores("random", probs, rng=3), A.area_scores("random", probs, rng=4))


def test_unknown_strategy_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown strategy 'psychic'"):
        A.area_scores("psychic", np.array([CONFIDENT]))


def test_one_very_unsure_joint_outweighs_mild_doubt_spread_over_many():
    # Hand A: 30 confident areas and one flat one. Hand B: every area a little unsure.
    flat = [1 / 6] * 6
    mild = [0.85, 0.15, 0, 0, 0, 0]
    hand_a = np.array([CONFIDENT] * 30 + [flat])
    hand_b = np.array([mild] * 31)
    scores = A.item_scores("entropy", np.stack([hand_a, hand_b]))
    assert scores[0] > scores[1]
    # ... which a plain mean over all areas would get the other way round.
    per_area = A.entropy(np.stack([hand_a, hand_b]))
    assert per_area[0].mean() < per_area[1].mean()


def test_top_k_mean_uses_every_score_when_there_are_fewer_than_k():
    assert A.top_k_mean(np.array([[0.2, 0.9, 0.5, 0.1]]), 3)[0] == pytest.approx((0.9 + 0.5 + 0.2) / 3)
    assert A.top_k_mean(np.array([0.4, 0.8]), 3) == pytest.approx(0.6)


def test_k_centre_picks_one_point_from_each_cluster():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = np.concatenate([c + rng.normal(0, 0.3, (20, 2)) for c in centres])
    picks = A.k_centre_greedy(points, 3)
    assert sorted(p // 20 for p in picks) == [0, 1, 2]
    # With one cluster already labelled the next two picks cover the other two.
    picks = A.k_centre_greedy(points, 2, centres=centres[:1])
    assert sorted(p // 20 for p in picks) == [1, 2]


def test_diverse_batch_trades_uncertainty_for_coverage():
    # Five near-identical very unsure hands and one moderately unsure hand far away.
    embeddings = np.array([[0.0, 0.0], [0.01, 0.0], [0.0, 0.01], [0.01, 0.01], [0.02, 0.0], [5.0, 5.0]])
    scores = np.array([0.9, 0.89, 0.88, 0.87, 0.86, 0.5])
    assert A.select_batch(scores, 2) == [0, 1]
    assert A.select_batch(scores, 2, embeddings=embeddings, diversity=0.5) == [0, 5]
    assert A.select_batch(scores, 2, embeddings=embeddings, diversity=0.0) == [0, 1]
    with pytest.raises(ValueError, match="embeddings"):
        A.select_batch(scores, 2, diversity=0.5)


def test_select_batch_breaks_ties_by_position_and_never_repeats():
    assert A.select_batch(np.array([0.5, 0.7, 0.5, 0.7]), 3) == [1, 3, 0]
    assert A.select_batch(np.array([0.1, 0.2]), 5) == [1, 0]
    assert A.rank(np.array([0.2, 0.9, 0.5])).tolist() == [1, 2, 0]


def test_scores_lie_in_their_documented_ranges_for_random_distributions():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(6), size=200)
    for name in ("entropy", "margin"):
        s = A.area_scores(name, probs)
        assert s.min() >= 0 and s.max() <= 1
    spread = A.expected_grade_error(probs)
    assert spread.min() >= 0 and spread.max() <= 5 / 2 + 1e-9
    assert A.entropy(np.array([[1 / 6] * 6]))[0] == pytest.approx(1.0)
    assert math.isclose(A.margin(np.array([[0.5, 0.5]]))[0], 1.0)
