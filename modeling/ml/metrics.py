"""Evaluation metrics for landmark localisation and total scores (numpy only).

Localisation accuracy is the share of landmarks whose predicted point lies inside the joint's box
when boxes are given, otherwise within `tolerance` x hand size of the true point, where hand size
is the median pairwise distance between the hand's true landmarks (`data.hand_size`). The grade
metrics (weighted accuracy, within-one, quadratic kappa, the per-scale report) are the readers'
too and live in `scoring.agreement`, with one definition each.
"""

from __future__ import annotations

import numpy as np


def point_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Euclidean distances between (..., 2) point arrays."""
    return np.sqrt(((np.asarray(pred, float) - np.asarray(true, float)) ** 2).sum(-1))


def localisation_hits(
    pred: np.ndarray,
    true: np.ndarray,
    hand_sizes: np.ndarray | float | None = None,
    tolerance: float = 0.1,
    boxes: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean hit per landmark. pred, true: (N, L, 2); boxes: (N, L, 4) as x0, y0, x1, y1.

    A box row of NaN falls back to the distance criterion for that landmark.
    """
    pred = np.asarray(pred, float)
    err = point_errors(pred, true)
    if hand_sizes is None:
        hits = np.zeros(err.shape, dtype=bool)
    else:
        hs = np.asarray(hand_sizes, float)
        hs = hs.reshape(hs.shape + (1,) * (err.ndim - hs.ndim))
        hits = err <= tolerance * hs
    if boxes is not None:
        b = np.asarray(boxes, float)
        has_box = ~np.isnan(b).any(-1)
        inside = (
            (pred[..., 0] >= b[..., 0])
            & (pred[..., 0] <= b[..., 2])
            & (pred[..., 1] >= b[..., 1])
            & (pred[..., 1] <= b[..., 3])
        )
        hits = np.where(has_box, inside, hits)
    return hits


def localisation_accuracy(*args, **kwargs) -> float:
    """Mean of `localisation_hits` (same arguments)."""
    return float(np.mean(localisation_hits(*args, **kwargs)))


def total_score_mae(true_totals: np.ndarray, pred_totals: np.ndarray) -> float:
    """Mean absolute error of per-hand total scores (sum of grades over the hand's areas)."""
    return float(np.mean(np.abs(np.asarray(true_totals, float) - np.asarray(pred_totals, float))))
