"""The fast grader recipe: crops cut once, targets swapped per row, balanced sampling, early stopping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modeling.ml import crops
from modeling.ml.data import AugmentConfig, HandDataset

SCHEME = {
    "landmarks": ["mcp2", "mcp3"],
    "areas": [
        {"code": "e2", "landmark": "mcp2", "dimension": "erosion", "max_grade": 5},
        {"code": "e3", "landmark": "mcp3", "dimension": "erosion", "max_grade": 5},
        {"code": "j2", "landmark": "mcp2", "dimension": "jsn", "max_grade": 4},
    ],
}
# Geometric jitter only: the test's feature is brightness, which intensity augmentation would blur.
RECIPE = crops.CropRecipe(crop_size=12, widths=(4, 8), hidden=8, max_epochs=15, patience=5, batch=8, lr=5e-3,
                          augment=AugmentConfig(rotation_deg=10.0, contrast=0.0, brightness=0.0, gamma=0.0, noise=0.0))


def _dataset(grades: np.ndarray, rng: np.random.Generator) -> HandDataset:
    """Hands whose crops are as bright as their erosion grade (plus noise): a learnable feature."""
    n = len(grades)
    ctx = int(round(RECIPE.crop_size * RECIPE.context_factor))
    contexts = (grades[:, :, None, None] / 5.0 + 0.05 * rng.standard_normal((n, 2, ctx, ctx))).astype(np.float16)
    data = HandDataset(
        scheme=SCHEME, input_size=(8, 8), crop_size=RECIPE.crop_size, crop_scale=0.3, context_factor=1.5,
        images=np.zeros((n, 8, 8), np.float16), points=np.zeros((n, 2, 2), np.float32),
        present=np.ones((n, 2), bool), contexts=contexts, targets={}, target_mask={},
        patient_ids=[f"p{h // 2}" for h in range(n)], lateralities=["R"] * n,
    )
    targets = [{("mcp2", "erosion"): int(g[0]), ("mcp3", "erosion"): int(g[1]), ("mcp2", "jsn"): 0} for g in grades]
    return crops.with_targets(data, targets, SCHEME, 0.0)


def test_with_targets_swaps_the_labels_and_keeps_the_crops():
    rng = np.random.default_rng(0)
    data = _dataset(rng.integers(0, 6, size=(6, 2)), rng)
    other = crops.with_targets(data, [{("mcp3", "erosion"): 4}] * 6, SCHEME, 0.0)
    assert other.contexts is data.contexts
    assert other.targets["erosion"][:, 1].argmax(-1).tolist() == [4] * 6
    # Areas a hand has no label for are masked out of the loss, not trained as grade 0.
    assert not other.target_mask["erosion"][:, 0].any() and not other.target_mask["jsn"].any()
    assert data.target_mask["jsn"][:, 0].all()


def test_balanced_sampling_draws_a_rare_grade_more_often_than_its_share():
    grades = np.zeros((40, 2), int)
    grades[:2, 0] = 5  # 2 of 80 joints at grade 5
    data = _dataset(grades, np.random.default_rng(1))
    pairs = crops._pairs(data)
    w = crops._sampling_weights(data, pairs, balance=1.0)
    rare = (pairs[:, 1] == 0) & np.isin(pairs[:, 0], [0, 1])
    assert w[rare].sum() > 0.3 > rare.mean()


def test_the_grader_learns_a_visible_feature_and_keeps_its_best_held_out_epoch():
    torch.set_num_threads(1)
    rng = np.random.default_rng(2)
    grades = rng.integers(0, 6, size=(80, 2))
    data = _dataset(grades, rng)
    net, report = crops.train_grader(data, SCHEME, RECIPE)
    curve = [p["held_out_balanced_accuracy"] for p in report["curve"]]
    assert report["epochs_run"] == len(curve) <= RECIPE.max_epochs
    assert report["held_out_best"] == pytest.approx(max(curve))
    assert curve[report["best_epoch"] - 1] == pytest.approx(max(curve))
    # Chance is 1/6 on erosion; brightness tells the grade, so the grader must do at least twice as well.
    test = _dataset(grades[:20], rng)
    pred = crops.grades_by_dimension(crops.predict_crops(net, test, RECIPE), SCHEME)
    assert np.mean(pred["erosion"] == grades[:20]) > 0.35
    assert report["held_out_hands"] > 0 and report["train_hands"] + report["held_out_hands"] == 80


def test_a_dataset_without_held_out_patients_is_refused():
    data = _dataset(np.zeros((2, 2), int), np.random.default_rng(3))
    with pytest.raises(ValueError, match="held-out"):
        crops.train_grader(data, SCHEME, crops.CropRecipe(val_fraction=0.0))
