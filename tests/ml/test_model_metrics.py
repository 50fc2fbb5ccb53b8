"""Localisation and grading metrics on cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np

from modeling.ml import metrics as M


def test_confusion_matrix_rows_are_truth():
    cm = M.confusion_matrix([0, 0, 1, 2], [0, 1, 1, 0], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


def test_weighted_accuracy_is_the_mean_recall_over_present_classes():
    true = [0, 0, 0, 1, 1, 2]
    pred = [0, 0, 1, 1, 0, 2]
    # recalls: 2/3, 1/2, 1/1; class 3 is absent from the truth and does not count
    assert math.isclose(M.weighted_accuracy(true, pred, n_classes=4), (2 / 3 + 1 / 2 + 1) / 3)
    # always answering the majority class scores 1 / (classes present), not the majority share
    assert math.isclose(M.weighted_accuracy([0] * 9 + [1], [0] * 10), 0.5)


def test_within_one_accuracy_counts_neighbouring_grades():
    assert M.within_one_accuracy([0, 2, 4, 5], [1, 4, 4, 3]) == 0.5


def test_quadratic_weighted_kappa_matches_hand_computation():
    assert M.quadratic_weighted_kappa([0, 1, 2], [0, 1, 2]) == 1.0
    # 2 x 2 with chance-level agreement: observed [[1,1],[1,1]] equals expected -> kappa 0
    assert math.isclose(M.quadratic_weighted_kappa([0, 0, 1, 1], [0, 1, 0, 1]), 0.0)
    # true [0,1,2], pred [0,2,2]: observed weighted disagreement 1/4 (one cell at distance 1,
    # weight 1/4) over 3; expected: rows 1,1,1 x cols 1,0,2 / 3
    t, p = [0, 1, 2], [0, 2, 2]
    w = np.array([[0, 0.25, 1], [0.25, 0, 0.25], [1, 0.25, 0]])
    obs = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 1]])
    exp = np.outer([1, 1, 1], [1, 0, 2]) / 3
    assert math.isclose(M.quadratic_weighted_kappa(t, p), 1 - (w * obs).sum() / (w * exp).sum())
    assert math.isclose(M.quadratic_weighted_kappa(t, p), 0.8)


def test_localisation_hits_by_tolerance_and_by_box():
    true = np.array([[[100.0, 100.0], [200.0, 100.0]]])
    pred = np.array([[[105.0, 100.0], [200.0, 130.0]]])
    hits = M.localisation_hits(pred, true, hand_sizes=np.array([100.0]), tolerance=0.1)
    assert hits.tolist() == [[True, False]]
    boxes = np.array([[[90, 90, 110, 110], [np.nan] * 4]])
    boxes2 = np.array([[[90, 90, 104, 110], [180, 80, 220, 140]]])
    assert M.localisation_hits(pred, true, np.array([100.0]), 0.1, boxes).tolist() == [[True, False]]
    assert M.localisation_hits(pred, true, None, boxes=boxes2).tolist() == [[False, True]]
    assert M.localisation_accuracy(pred, true, np.array([100.0]), 0.1) == 0.5
    assert np.allclose(M.point_errors(pred, true), [[5.0, 30.0]])


def test_total_score_mae_and_report():
    assert M.total_score_mae([10, 0, 4], [7, 1, 4]) == 4 / 3
    rep = M.grade_report([0, 1, 2], [0, 1, 1], 3)
    assert rep["n"] == 3 and math.isclose(rep["accuracy"], 2 / 3)
    assert rep["confusion"] == [[1, 0, 0], [0, 1, 0], [0, 1, 0]]
    assert math.isclose(rep["weighted_accuracy"], 2 / 3) and rep["within_one"] == 1.0
