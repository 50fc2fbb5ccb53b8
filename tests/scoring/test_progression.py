"""Change scores, their reliability (ICC, Bruynesteyn SDC), progressors and the monotone decoding."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from scoring import progression as pg
from scoring.readers import draw_grades, ordinal_confusion


def test_change_scores_per_interval_sum_erosion_and_jsn_apart_and_skip_unread_areas() -> None:
    grades = np.array([[0, 1, 2], [1, 1, 3], [3, np.nan, 3]], dtype=float)
    changes = pg.change_scores(grades, is_erosion=[True, True, False])
    assert [(c.start, c.end) for c in changes] == [(0, 1), (1, 2), (0, 2)]
    first, second, overall = changes
    assert (first.total, first.erosion, first.jsn) == (2.0, 1.0, 1.0)
    # Area 1 is unread at the last visit: it leaves both intervals that end there.
    assert (second.total, second.erosion, second.jsn) == (2.0, 2.0, 0.0)
    assert (overall.total, overall.erosion, overall.jsn) == (4.0, 3.0, 1.0)
    assert np.isnan(overall.per_area[1]) and overall.per_area[0] == 3.0


def test_two_visits_give_one_interval_and_four_give_four() -> None:
    assert pg.intervals(2) == [(0, 1)]
    assert pg.intervals(4) == [(0, 1), (1, 2), (2, 3), (0, 3)]


def test_bruynesteyn_sdc_of_two_readers_matches_the_hand_computed_value() -> None:
    # Reader differences of change: -1, 0, 2, -2; their SD (n - 1) is sqrt(8.75 / 3) = 1.70783.
    changes = np.array([[0, 1], [2, 2], [4, 2], [1, 3]], dtype=float)
    sdc_one, sd_diff = pg.sdc_bruynesteyn(changes, k_averaged=1)
    assert sd_diff == pytest.approx(math.sqrt(8.75 / 3))
    assert sdc_one == pytest.approx(1.959964 * 1.707825 / math.sqrt(2), abs=1e-5)  # 2.36681
    sdc_two, _ = pg.sdc_bruynesteyn(changes)
    assert sdc_two == pytest.approx(sdc_one / math.sqrt(2))  # averaging two readers


def test_icc_and_sdc_of_change_match_the_anova_worked_by_hand() -> None:
    # MS_subjects 10.5, MS_readers 1.5, MS_error 0.5: ICC(2,1) = 10 / (11 + 2/3) = 6/7.
    changes = np.array([[1, 2], [3, 3], [5, 7]], dtype=float)
    rel = pg.change_reliability(changes)
    assert rel.icc.icc == pytest.approx(6 / 7)
    assert rel.sd_difference == pytest.approx(1.0)  # differences 1, 0, 2
    assert rel.sdc == pytest.approx(1.959964 / 2, abs=1e-6)
    assert (rel.n_subjects, rel.n_readers, rel.k_averaged) == (3, 2, 2)
    assert rel.icc.ci_low < rel.icc.icc < rel.icc.ci_high


def test_sd_of_differences_with_three_readers_pools_the_reader_pairs() -> None:
    rng = np.random.default_rng(3)
    changes = rng.normal(size=(30, 1)) * 4 + rng.normal(size=(30, 3))
    _, sd_diff = pg.sdc_bruynesteyn(changes)
    pairs = [np.var(changes[:, a] - changes[:, b], ddof=1) for a, b in itertools.combinations(range(3), 2)]
    assert sd_diff == pytest.approx(math.sqrt(np.mean(pairs)))


def test_sdc_refuses_missing_change_scores() -> None:
    with pytest.raises(ValueError, match="complete"):
        pg.sdc_bruynesteyn([[1, np.nan], [2, 3]])


def test_progressor_shares_count_above_sdc_above_half_and_from_five() -> None:
    rows = pg.progressor_shares([-1, 0, 0.5, 1, 3, 5, 8, np.nan], sdc=2.0)
    assert [(r.label, r.count, r.n) for r in rows] == [("> SDC", 3, 7), ("> 0.5", 4, 7), (">= 5", 2, 7)]
    assert rows[1].share == pytest.approx(4 / 7)


def test_cumulative_probability_sorts_changes_against_midpoint_ranks() -> None:
    p, c = pg.cumulative_probability([3, -1, 0, 10])
    assert c.tolist() == [-1, 0, 3, 10]
    assert p.tolist() == [0.125, 0.375, 0.625, 0.875]


def test_reader_with_many_falling_totals_is_flagged_and_one_with_rounding_noise_is_not() -> None:
    assert pg.regression_flag([-2, 1, 0, -3, 4]).flagged
    calm = pg.regression_flag([-0.5, 1, 0, 2, 4, 0, 1, 0, 3, 2])
    assert not calm.flagged and calm.n_negative == 0


def test_progressor_accuracy_counts_true_and_false_calls() -> None:
    acc = pg.progressor_accuracy(estimated=[3, 0, 4, 2, 0], true=[3, 3, 0, 0, 0], threshold=1.0)
    assert (acc.n_true_progressors, acc.n_true_stable) == (2, 3)
    assert acc.sensitivity == 0.5 and acc.specificity == pytest.approx(1 / 3)


# --------------------------------------------------------------------------- monotone decoding


def _paths(T: int, K: int):
    return [p for p in itertools.product(range(K), repeat=T) if all(a <= b for a, b in zip(p, p[1:]))]


def test_monotone_viterbi_lifts_a_film_that_reads_lower_than_the_one_before() -> None:
    # Per film the best grades are 2 then 1, which would mean healing. Non-decreasing paths:
    # (1,1) = .3 * .5 = .15, (1,2) = .3 * .4 = .12, (2,2) = .6 * .4 = .24: the decoding is (2, 2).
    log_post = np.log([[0.1, 0.3, 0.6], [0.1, 0.5, 0.4]])
    path, score = pg.monotone_viterbi(log_post)
    assert path.tolist() == [2, 2]
    assert score == pytest.approx(math.log(0.24))


def test_monotone_viterbi_equals_enumeration_of_every_non_decreasing_path() -> None:
    rng = np.random.default_rng(7)
    for _ in range(25):
        T, K = rng.integers(2, 5), rng.integers(2, 5)
        scores = rng.normal(size=(T, K)) * 2
        trans = rng.normal(size=(K, K))
        init = rng.normal(size=K)
        best = max(_paths(T, K), key=lambda p: init[p[0]] + sum(scores[t, p[t]] for t in range(T)) + sum(trans[a, b] for a, b in zip(p, p[1:])))
        path, score = pg.monotone_viterbi(scores, trans, init)
        assert tuple(path.tolist()) == best
        assert score == pytest.approx(init[best[0]] + sum(scores[t, best[t]] for t in range(T)) + sum(trans[a, b] for a, b in zip(best, best[1:])))


def test_monotone_marginals_and_transition_counts_equal_enumeration_with_chains_of_two_lengths() -> None:
    rng = np.random.default_rng(11)
    K, T = 3, 4
    scores = rng.normal(size=(2, T, K))
    trans = rng.normal(size=(K, K))
    lengths = np.array([4, 2])
    marg, xi, log_z = pg.monotone_marginals(scores, lengths, trans)
    xi_enum = np.zeros((K, K))
    for c, n in enumerate(lengths):
        weights = {}
        for p in _paths(int(n), K):
            weights[p] = math.exp(sum(scores[c, t, p[t]] for t in range(n)) + sum(trans[a, b] for a, b in zip(p, p[1:])))
        z = sum(weights.values())
        assert log_z[c] == pytest.approx(math.log(z))
        expected = np.zeros((T, K))
        for p, w in weights.items():
            for t, k in enumerate(p):
                expected[t, k] += w / z
            for a, b in zip(p, p[1:]):
                xi_enum[a, b] += w / z
        np.testing.assert_allclose(marg[c], expected, atol=1e-12)
    np.testing.assert_allclose(xi, xi_enum, atol=1e-12)


def test_batched_viterbi_ignores_positions_past_a_chain_length() -> None:
    scores = np.log(np.array([[[0.2, 0.8], [0.9, 0.1], [0.5, 0.5]], [[0.2, 0.8], [0.9, 0.1], [0.01, 0.99]]]))
    paths, _ = pg.monotone_viterbi_batch(scores, lengths=[2, 3])
    # Chain 0 (two visits): (0,0) = .18 beats (1,1) = .08 and (0,1) = .02.
    assert paths[0, :2].tolist() == [0, 0]
    # Chain 1's third visit is almost surely grade 1: (1,1,1) = .8*.1*.99 beats (0,0,1) = .2*.9*.99.
    assert paths[1].tolist() == [0, 0, 1]


def _progressing_study(seed: int, n_chains: int = 300, T: int = 3, K: int = 6, readers: int = 3):
    rng = np.random.default_rng(seed)
    start = rng.choice(K, size=n_chains, p=[0.55, 0.2, 0.1, 0.07, 0.05, 0.03])
    steps = rng.choice(3, size=(n_chains, T - 1), p=[0.8, 0.15, 0.05])
    truth = np.minimum(start[:, None] + np.concatenate([np.zeros((n_chains, 1), int), steps.cumsum(axis=1)], axis=1), K - 1)
    confusion = np.stack([ordinal_confusion(K - 1, spread=0.9, shift=s) for s in (0.0, 0.4, -0.3)[:readers]])
    task = np.repeat(np.arange(n_chains * T), readers)
    worker = np.tile(np.arange(readers), n_chains * T)
    label = draw_grades(truth.reshape(-1)[task], confusion, rng, reader=worker)
    chain = np.repeat(np.arange(n_chains), T)
    position = np.tile(np.arange(T), n_chains)
    return truth.reshape(-1), task, worker, label, chain, position


def test_longitudinal_fusion_gives_non_decreasing_labels_and_beats_majority_vote_on_change() -> None:
    truth, task, worker, label, chain, position = _progressing_study(seed=4)
    result = pg.longitudinal_dawid_skene(task, worker, label, chain=chain, position=position, n_classes=6)
    labels = result.labels.reshape(-1, 3)
    assert (np.diff(labels, axis=1) >= 0).all()
    np.testing.assert_allclose(result.posteriors.sum(axis=1), 1.0)
    assert np.allclose(np.tril(result.transition, -1), 0.0)
    votes = np.zeros((truth.size, 6))
    np.add.at(votes, (task, label), 1)
    majority = votes.argmax(axis=1).reshape(-1, 3)
    true_change = truth.reshape(-1, 3)[:, -1] - truth.reshape(-1, 3)[:, 0]
    mae_long = np.abs(labels[:, -1] - labels[:, 0] - true_change).mean()
    mae_major = np.abs(majority[:, -1] - majority[:, 0] - true_change).mean()
    assert mae_long < mae_major
    assert (result.labels == truth).mean() > (votes.argmax(axis=1) == truth).mean()


def test_series_positions_order_each_series_by_its_own_key() -> None:
    chain, position = pg.series_positions([("a", 3), ("b", 1), ("a", 1), ("a", 2)])
    assert chain.tolist() == [0, 1, 0, 0]
    assert position.tolist() == [2, 0, 0, 1]


def test_longitudinal_fit_refuses_two_tasks_on_one_position() -> None:
    with pytest.raises(ValueError, match="share one chain position"):
        pg.longitudinal_dawid_skene([0, 1], [0, 0], [1, 1], chain=[0, 0], position=[0, 0], n_classes=3)
