"""Training, checkpoints, inference and Grad-CAM of the hand scorer on tiny synthetic hands."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from modeling.ml.data import AugmentConfig, build_dataset, target_distribution
from modeling.ml.heatmaps import gradcam, overlay
from modeling.ml.inference import build_model, load_model, model_from_checkpoint, predict_hand
from modeling.ml.networks import GradingNetConfig, LandmarkNetConfig
from modeling.ml.train import (
    TrainConfig,
    class_balance_weights,
    config_from_dict,
    evaluate,
    evaluate_hands,
    main,
    save_checkpoint,
    to_tensors,
    train_one_epoch,
)

from .model_fixtures import SCHEME, toy_samples


def tiny_config(**overrides) -> TrainConfig:
    cfg = TrainConfig(
        scheme=SCHEME,
        landmark=LandmarkNetConfig(input_size=(80, 64), widths=(8, 16, 32)),
        grading=GradingNetConfig(crop_size=32, widths=(8, 16, 32), hidden=32, embed_dim=4),
        crop_scale=0.6,
        epochs=3,
        landmark_batch=4,
        grading_batch=32,
        landmark_lr=3e-3,
        grading_lr=3e-3,
        val_fraction=0.25,
        test_fraction=0.25,
        num_threads=1,
    )
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny end-to-end run shared by the checkpoint, inference and Grad-CAM tests."""
    torch.set_num_threads(1)
    samples = toy_samples(12, seed=1)
    logs = []
    cfg = tiny_config(out=str(tmp_path_factory.mktemp("ckpt") / "model.pt"))
    ckpt = main(cfg, samples, on_epoch=lambda e, m: logs.append((e, m)))
    return cfg, ckpt, samples, logs


def test_a_few_epochs_lower_both_losses():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = tiny_config()
    data = build_dataset(toy_samples(10, seed=0), SCHEME, cfg.landmark.input_size, cfg.grading.crop_size,
                         cfg.crop_scale, cfg.context_factor)
    model = build_model(SCHEME, cfg.landmark, cfg.grading, cfg.crop_scale)
    weights = class_balance_weights(data, cfg.class_balance)
    tensors = to_tensors(data, torch.device("cpu"))
    opts = {"landmark": torch.optim.AdamW(model.landmark_net.parameters(), lr=3e-3),
            "grading": torch.optim.AdamW(model.grading_net.parameters(), lr=3e-3)}
    before = evaluate(model, tensors, cfg, weights)
    g = torch.Generator().manual_seed(0)
    for _ in range(6):
        train_one_epoch(model, tensors, opts, cfg, g, lambda f: 1.0, weights, {"landmark": True, "grading": True})
    after = evaluate(model, tensors, cfg, weights)
    assert after["landmark_val_loss"] < 0.7 * before["landmark_val_loss"]
    assert after["grading_val_loss"] < before["grading_val_loss"]


def test_main_reports_every_epoch_and_returns_one_checkpoint_dict(trained):
    cfg, ckpt, samples, logs = trained
    assert [e for e, _ in logs] == [1, 2, 3]
    assert {"landmark_train_loss", "grading_train_loss", "landmark_val_loss", "grading_val_loss"} <= set(logs[0][1])
    assert set(ckpt) >= {"format", "model", "config", "scheme", "metrics", "split", "history"}
    assert ckpt["scheme"] == SCHEME
    split = ckpt["split"]
    # split by patient: both hands of a patient land in the same part, and parts do not overlap
    assert set(split["train"]).isdisjoint(split["val"]) and set(split["train"]).isdisjoint(split["test"])
    assert set(split["val"]).isdisjoint(split["test"])
    assert len(split["train"]) + len(split["val"]) + len(split["test"]) == 12
    assert ckpt["metrics"]["hands"]["train"] == 2 * len(split["train"])
    assert config_from_dict(ckpt["config"]).landmark.input_size == (80, 64)


def test_checkpoint_reloads_to_identical_predictions(trained, tmp_path):
    cfg, ckpt, samples, _ = trained
    from_dict = model_from_checkpoint(ckpt)
    path = tmp_path / "again.pt"
    save_checkpoint(ckpt, path)
    from_file = load_model(path)
    from_main = load_model(cfg.out)
    s = samples[0]
    a = predict_hand(from_dict, s["image"], s["laterality"])
    b = predict_hand(from_file, s["image"], s["laterality"])
    c = predict_hand(from_main, s["image"], s["laterality"])
    assert a.landmarks == b.landmarks == c.landmarks
    assert a.areas == b.areas == c.areas
    # the test metrics stored at the end of training come back from the reloaded weights
    test_ids = set(ckpt["split"]["test"])
    again = evaluate_hands(from_file, [s for s in samples if s["patient_id"] in test_ids], cfg.tolerance)
    stored = ckpt["metrics"]["test"]
    assert again["mean_point_error_px"] == pytest.approx(stored["mean_point_error_px"], rel=1e-6)
    assert again["erosion"]["confusion"] == stored["erosion"]["confusion"]


def test_prediction_covers_every_area_with_a_distribution_over_its_grades(trained):
    _, ckpt, samples, _ = trained
    model = model_from_checkpoint(ckpt)
    s = samples[3]
    pred = predict_hand(model, s["image"], s["laterality"])
    assert set(pred.landmarks) == set(SCHEME["landmarks"])
    assert all(0.0 <= c <= 1.0 for _, _, c in pred.landmarks.values())
    assert [(a["landmark"], a["dimension"]) for a in pred.areas] == [
        (a["landmark"], a["dimension"]) for a in SCHEME["areas"]
    ]
    for area, spec in zip(pred.areas, SCHEME["areas"]):
        assert len(area["distribution"]) == spec["max_grade"] + 1
        assert math.isclose(sum(area["distribution"]), 1.0, rel_tol=1e-6)
        assert area["label"] == int(np.argmax(area["distribution"]))
    # given landmarks replace the located ones
    moved = predict_hand(model, s["image"], s["laterality"], landmarks={"a": (10.0, 20.0)})
    assert moved.landmarks["a"] == (10.0, 20.0, 1.0)


def test_gradcam_is_image_sized_and_peaks_at_the_explained_joint(trained):
    _, ckpt, samples, _ = trained
    model = model_from_checkpoint(ckpt)
    s = samples[0]  # a left hand: the map must be mirrored back onto the original image
    assert s["laterality"] == "L"
    h, w = s["image"].shape
    for name in ("a", "d"):
        cam = gradcam(model, s["image"], s["laterality"], name, "erosion", landmarks=s["landmarks"])
        assert cam.shape == (h, w) and cam.dtype == np.float32
        assert cam.min() >= 0.0 and math.isclose(float(cam.max()), 1.0, rel_tol=1e-3)
        iy, ix = np.unravel_index(np.argmax(cam), cam.shape)
        x, y = s["landmarks"][name]
        pred = predict_hand(model, s["image"], s["laterality"], landmarks=s["landmarks"])
        assert math.hypot(ix - x, iy - y) <= pred.crop_side / math.sqrt(2)
        # nothing outside the joint's crop
        far = np.hypot(*np.meshgrid(np.arange(w) - x, np.arange(h) - y)) > pred.crop_side
        assert cam[far].max() == 0.0
    rgb = overlay(s["image"], cam)
    assert rgb.shape == (h, w, 3) and rgb.dtype == np.uint8


def test_soft_targets_are_used_as_given_and_hard_grades_are_locally_smoothed():
    assert np.allclose(target_distribution(2, 6, 6, 0.1), [0, 0.05, 0.9, 0.05, 0, 0])
    assert np.allclose(target_distribution(0, 6, 6, 0.1), [0.9, 0.1, 0, 0, 0, 0])
    assert np.allclose(target_distribution([0.2, 0.6, 0.2], 3, 6, 0.1), [0.2, 0.6, 0.2, 0, 0, 0])
    samples = toy_samples(2, seed=3)
    samples[0]["targets"][("a", "erosion")] = [0.0, 0.25, 0.75]
    data = build_dataset(samples, SCHEME, (80, 64), 32, 0.6)
    assert np.allclose(data.targets["erosion"][0, 0], [0.0, 0.25, 0.75])
    # landmark c carries no erosion area: masked out
    assert not data.target_mask["erosion"][:, 2].any() and data.target_mask["jsn"][:, 2].all()


def test_grades_a_joint_cannot_take_get_no_probability():
    model = build_model(SCHEME, LandmarkNetConfig(input_size=(80, 64), widths=(8, 16, 32)),
                        GradingNetConfig(crop_size=32, widths=(8, 16), hidden=16))
    s = toy_samples(1)[0]
    pred = predict_hand(model, s["image"], s["laterality"])
    # heads are sized for the largest grade in the scheme; JSN of b allows 0..1 only
    assert len(next(a for a in pred.areas if a["code"] == "b_J")["distribution"]) == 2
    logits = model.grading_net(torch.zeros(1, 1, 32, 32), torch.tensor([1]))
    assert logits["jsn"].shape == (1, 2) and logits["erosion"].shape == (1, 3)


def test_augmentation_moves_points_with_the_image():
    from modeling.ml.data import augment_landmark_batch
    from modeling.ml.networks import decode_heatmaps, gaussian_heatmaps

    pts = torch.tensor([[[20.3, 30.7], [45.0, 12.2]]])
    img = gaussian_heatmaps(pts, torch.ones(1, 2, dtype=torch.bool), (64, 64), 2.0).sum(1, keepdim=True)
    no_intensity = AugmentConfig(rotation_deg=20, scale=0.15, shift=0.1, contrast=0, brightness=0, gamma=0, noise=0)
    out, moved = augment_landmark_batch(img, pts, no_intensity, torch.Generator().manual_seed(5))
    for k in range(2):
        single = gaussian_heatmaps(moved[:, k : k + 1], torch.ones(1, 1, dtype=torch.bool), (64, 64), 0.5)
        # the brightest transformed pixel near each moved point is within a pixel of it
        window = out * (single > 1e-3)
        found, _ = decode_heatmaps(window)
        assert torch.all((found[0, 0] - moved[0, k]).abs() < 1.0)
    assert not torch.allclose(moved, pts)
