"""Localisation and total-score metrics on cases worked out by hand (grades: tests/scoring)."""

from __future__ import annotations

import numpy as np

from modeling.ml import metrics as M


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


def test_total_score_mae():
    assert M.total_score_mae([10, 0, 4], [7, 1, 4]) == 4 / 3
