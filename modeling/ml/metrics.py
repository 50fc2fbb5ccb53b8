"""Evaluation metrics for landmark localisation and ordinal joint grades (numpy only).

Definitions used in every report:
- localisation accuracy: share of landmarks whose predicted point lies inside the joint's box
  when boxes are given, otherwise within `tolerance` x hand size of the true point, where hand
  size is the median pairwise distance between the hand's true landmarks (`data.hand_size`);
- weighted accuracy: balanced accuracy, the mean per-class recall over the classes present in
  the truth, so a model that always says "0" scores 1 / (number of grades present), not 0.9;
- within-one accuracy: share of predictions at most one grade from the truth;
- quadratic weighted kappa: Cohen's kappa with (i - j)^2 disagreement weights.
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


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts; rows are the truth, columns the prediction."""
    t = np.asarray(true, int).ravel()
    p = np.asarray(pred, int).ravel()
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def weighted_accuracy(true: np.ndarray, pred: np.ndarray, n_classes: int | None = None) -> float:
    """Balanced accuracy: mean recall over the classes that occur in `true`."""
    t, p = np.asarray(true, int).ravel(), np.asarray(pred, int).ravel()
    if t.size == 0:
        return float("nan")
    k = n_classes or int(max(t.max(), p.max())) + 1
    cm = confusion_matrix(t, p, k)
    support = cm.sum(1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present]))


def within_one_accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    t, p = np.asarray(true, int).ravel(), np.asarray(pred, int).ravel()
    return float(np.mean(np.abs(t - p) <= 1)) if t.size else float("nan")


def quadratic_weighted_kappa(true: np.ndarray, pred: np.ndarray, n_classes: int | None = None) -> float:
    """Cohen's kappa with quadratic weights; 1 when both raters agree on a single class only."""
    t, p = np.asarray(true, int).ravel(), np.asarray(pred, int).ravel()
    if t.size == 0:
        return float("nan")
    k = n_classes or int(max(t.max(), p.max())) + 1
    observed = confusion_matrix(t, p, k).astype(float)
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    i, j = np.indices((k, k))
    weights = (i - j) ** 2 / max((k - 1) ** 2, 1)
    denom = (weights * expected).sum()
    if denom == 0:
        return 1.0 if (weights * observed).sum() == 0 else 0.0
    return float(1.0 - (weights * observed).sum() / denom)


def total_score_mae(true_totals: np.ndarray, pred_totals: np.ndarray) -> float:
    """Mean absolute error of per-hand total scores (sum of grades over the hand's areas)."""
    return float(np.mean(np.abs(np.asarray(true_totals, float) - np.asarray(pred_totals, float))))


def grade_report(true: np.ndarray, pred: np.ndarray, n_classes: int) -> dict:
    """All ordinal metrics for one dimension as a JSON-safe dict."""
    t, p = np.asarray(true, int).ravel(), np.asarray(pred, int).ravel()
    return {
        "n": int(t.size),
        "accuracy": float(np.mean(t == p)) if t.size else float("nan"),
        "weighted_accuracy": weighted_accuracy(t, p, n_classes),
        "within_one": within_one_accuracy(t, p),
        "qwk": quadratic_weighted_kappa(t, p, n_classes),
        "confusion": confusion_matrix(t, p, n_classes).tolist(),
    }
