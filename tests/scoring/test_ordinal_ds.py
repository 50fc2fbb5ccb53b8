"""The regularised, ordinal-aware Dawid-Skene: its priors by hand, and what they change on rare grades."""
from __future__ import annotations

import math

import numpy as np
import pytest

from scoring.dawid_skene import dawid_skene
from scoring.ordinal_ds import (
    default_strength,
    map_class_priors,
    map_confusion_rows,
    ordinal_dawid_skene,
    ordinal_kernel,
)
from scoring.agreement import accuracy_from_confusion, confusion_matrix
from scoring.readers import scenario_simulate


def test_the_kernel_falls_off_with_distance_from_the_true_grade() -> None:
    m = ordinal_kernel(3, decay=0.6)
    e = math.exp(-1 / 0.6)
    # Row 0: weights 1, e, e^2; row 1: e, 1, e.
    assert m[0] == pytest.approx(np.array([1, e, e * e]) / (1 + e + e * e))
    assert m[1] == pytest.approx(np.array([e, 1, e]) / (1 + 2 * e))


def test_a_rare_grade_row_seen_once_is_pulled_to_the_ordinal_prior_by_hand() -> None:
    # Reader saw one area of true grade 2 and called it 0: plain DS says P(0 | 2) = 1.
    counts = np.array([[50.0, 3.0, 0.0], [2.0, 10.0, 1.0], [1.0, 0.0, 0.0]])
    prior = ordinal_kernel(3, decay=0.6)
    rows = map_confusion_rows(counts, prior, strength=6.0)
    e = math.exp(-1 / 0.6)
    z = 1 + e + e * e
    # (1 + 6 * e^2 / z) / 7 for "0 given true 2"; (0 + 6 / z) / 7 for the diagonal.
    assert rows[2, 0] == pytest.approx((1 + 6 * e * e / z) / 7)
    assert rows[2, 2] == pytest.approx((6 / z) / 7)
    assert rows[2, 2] > rows[2, 0]  # the diagonal wins again on a single contrary area
    # A well-supported row hardly moves: 50 of 53 stays within 0.05 of its raw share.
    assert abs(rows[0, 0] - 50 / 53) < 0.05


def test_the_class_prior_keeps_a_grade_nobody_has_yet_alive_by_hand() -> None:
    totals = np.array([97.0, 0.0, 3.0])
    priors = map_class_priors(totals, np.array([True, True, True]), class_strength=10.0)
    assert priors == pytest.approx(np.array([107.0, 10.0, 13.0]) / 130.0)
    # A grade outside the model gets nothing.
    assert map_class_priors(totals, np.array([True, False, True]), 10.0)[1] == 0.0


def test_priors_stop_one_area_from_inventing_its_own_rare_grade_row() -> None:
    # 40 gold areas of grade 0 and 2 of grade 2, every reader right; one free area graded (2, 2, 1).
    # Plain DS, by hand: rows for true grade 1 rest on that area alone, so they fit it perfectly
    # (P(2|1) = 1 for readers 1-2, P(1|1) = 1 for reader 3), against P(1|2) = (2/3) / (8/3) = 1/4
    # for reader 3; priors (1/3)/43 and (8/3)/43; posterior (0, 1/3, 2/3), a fixed point from the
    # majority-vote start. The ordinal prior says "a true 1 read as 2 by two readers" is rare.
    rows = [(t, w, 0) for t in range(40) for w in range(3)]
    rows += [(40 + t, w, 2) for t in range(2) for w in range(3)]
    rows += [(42, 0, 2), (42, 1, 2), (42, 2, 1)]
    task, worker, label = (np.array(c) for c in zip(*rows))
    gold = np.array([0] * 40 + [2, 2, -1])
    plain = dawid_skene(task, worker, label, n_classes=3, gold=gold)
    assert plain.posteriors[42] == pytest.approx([0.0, 1 / 3, 2 / 3], abs=1e-6)
    ordinal = ordinal_dawid_skene(task, worker, label, n_classes=3, gold=gold)
    assert ordinal.posteriors[42][2] > 0.85
    assert ordinal.labels[42] == 2


def test_strength_grows_with_the_width_of_the_grid() -> None:
    assert default_strength(6) == 12 and default_strength(11) == 22


def test_on_the_small_feet_study_the_ordinal_fit_beats_plain_dawid_skene_on_rare_grades() -> None:
    balanced = {"plain": [], "ordinal": []}
    for seed in (8, 20, 26):  # seeds where plain DS drifts to a shifted solution
        study = scenario_simulate("feet_small", seed=seed)
        args = (study.task, study.worker, study.label)
        for name, fit in (
            ("plain", dawid_skene(*args, n_classes=11, n_tasks=study.truth.size)),
            ("ordinal", ordinal_dawid_skene(*args, n_classes=11, n_tasks=study.truth.size)),
        ):
            balanced[name].append(accuracy_from_confusion(confusion_matrix(study.truth, fit.labels, 11)))
    assert min(np.subtract(balanced["ordinal"], balanced["plain"])) > 0.05


# --------------------------------------------------------------------------- small data


def test_a_single_reader_gets_their_own_grades_back() -> None:
    study = scenario_simulate("feet_small", seed=3)
    one = study.worker == 0
    fit = ordinal_dawid_skene(study.task[one], study.worker[one], study.label[one], n_classes=11)
    assert np.array_equal(fit.labels, study.label[one])


def test_two_readers_on_the_feet_grid_stay_near_the_truth_where_plain_dawid_skene_drifts() -> None:
    study = scenario_simulate("feet_small", seed=3)
    two = study.worker < 2
    args = (study.task[two], study.worker[two], study.label[two])
    ordinal = ordinal_dawid_skene(*args, n_classes=11, n_tasks=study.truth.size)
    plain = dawid_skene(*args, n_classes=11, n_tasks=study.truth.size)
    assert np.mean(ordinal.labels == study.truth) > 0.75
    assert np.mean(ordinal.labels == study.truth) > np.mean(plain.labels == study.truth) + 0.1


def test_a_reader_with_fifteen_reads_is_shrunk_towards_the_panel() -> None:
    study = scenario_simulate("default", seed=0)
    keep = (study.worker != 4) | (np.cumsum(study.worker == 4) <= 15)
    args = (study.task[keep], study.worker[keep], study.label[keep])
    ordinal = ordinal_dawid_skene(*args, n_classes=6, n_tasks=study.truth.size)
    plain = dawid_skene(*args, n_classes=6, n_tasks=study.truth.size)
    true = study.confusion[4]
    assert np.abs(ordinal.confusion[4] - true).mean() < 0.04 < 0.1 < np.abs(plain.confusion[4] - true).mean()
    # Every row keeps its peak on the diagonal, where plain DS has rows that jump to another grade.
    assert (ordinal.confusion[4].argmax(axis=1) == np.arange(6)).all()
