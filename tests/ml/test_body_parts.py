"""One checkpoint with a model per body part, the foot model's mirroring, and the side-sum head."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from modeling.ml.body_parts import (
    checkpoint_body_parts,
    combine_checkpoints,
    load_part_models,
    part_checkpoint,
    phantom_schemes,
    samples_from_whole_patients,
    train_parts,
)
from modeling.ml.inference import predict_hand
from modeling.ml.phantoms import PhantomConfig
from modeling.ml.networks import GradingNet, GradingNetConfig, log_sum_distribution
from modeling.ml.train import DEFAULT_SCHEMES, TrainConfig, config_from_dict

SMALL = PhantomConfig(width=160, height=200)
TINY = {
    "landmark": {"input_size": (80, 64), "widths": (8, 16)},
    "grading": {"crop_size": 16, "widths": (8,), "hidden": 8, "embed_dim": 2},
    "epochs": 1, "num_threads": 1, "val_fraction": 0.0, "test_fraction": 0.0,
}


@pytest.fixture(scope="module")
def samples():
    return list(samples_from_whole_patients(2, seed=3, config=SMALL))


@pytest.fixture(scope="module")
def checkpoint(samples):
    return train_parts(config_from_dict(TINY), samples, phantom_schemes(str(DEFAULT_SCHEMES)))


def test_whole_patient_samples_are_two_hands_and_two_feet_each(samples):
    assert [(s["body_part"], s["laterality"]) for s in samples[:4]] == [("hand", "L"), ("hand", "R"), ("foot", "L"), ("foot", "R")]
    foot = samples[2]
    assert sorted(foot["landmarks"]) == ["mtp1", "mtp2", "mtp3", "mtp4", "mtp5", "mtp_ip"]
    assert max(g for (lm, d), g in foot["targets"].items() if d == "erosion") <= 10


def test_one_checkpoint_serves_hands_and_feet_each_with_its_own_scheme(checkpoint, samples):
    assert checkpoint_body_parts(checkpoint) == ["hand", "foot"]
    assert checkpoint["scheme"]["body_part"] == "hand" and len(checkpoint["scheme"]["landmarks"]) == 22
    assert part_checkpoint(checkpoint, "foot")["scheme"]["body_part"] == "foot"
    assert set(checkpoint["metrics"]["body_parts"]) == {"hand", "foot"}
    models = load_part_models(checkpoint)
    foot = next(s for s in samples if s["body_part"] == "foot")
    pred = predict_hand(models["foot"], foot["image"], foot["laterality"])
    erosion = [a for a in pred.areas if a["dimension"] == "erosion"]
    assert [a["code"] for a in erosion] == ["mtp_E__ip", "mtp_E__1", "mtp_E__2", "mtp_E__3", "mtp_E__4", "mtp_E__5"]
    assert all(len(a["distribution"]) == 11 and 0 <= a["label"] <= 10 for a in erosion)
    assert all(len(a["distribution"]) == 5 for a in pred.areas if a["dimension"] == "jsn")


def test_a_left_foot_is_read_as_the_mirror_image_of_a_right_foot(checkpoint, samples):
    model = load_part_models(checkpoint)["foot"]
    left = next(s for s in samples if s["body_part"] == "foot" and s["laterality"] == "L")
    as_left = predict_hand(model, left["image"], "L")
    as_right = predict_hand(model, np.ascontiguousarray(left["image"][:, ::-1]), "R")
    width = left["image"].shape[1]
    for name, (x, y, _) in as_left.landmarks.items():
        xr, yr, _ = as_right.landmarks[name]
        assert (x, y) == pytest.approx((width - 1 - xr, yr), abs=1e-3)
    assert [a["label"] for a in as_left.areas] == [a["label"] for a in as_right.areas]


def test_a_foot_only_version_puts_the_foot_model_on_top(checkpoint):
    foot_only = combine_checkpoints({"foot": part_checkpoint(checkpoint, "foot")})
    assert checkpoint_body_parts(foot_only) == ["foot"] and part_checkpoint(foot_only, "hand") is None


def test_samples_of_a_body_part_without_a_scheme_are_refused(samples):
    with pytest.raises(ValueError, match="foot"):
        train_parts(config_from_dict(TINY), samples, {"hand": phantom_schemes(str(DEFAULT_SCHEMES))["hand"]})


def test_side_sum_is_the_distribution_of_the_sum_of_two_side_grades():
    torch.manual_seed(0)
    a, b = torch.log_softmax(torch.randn(4, 6), 1), torch.log_softmax(torch.randn(4, 6), 1)
    got = log_sum_distribution(a, b).exp().numpy()
    want = np.stack([np.convolve(a[i].exp().numpy(), b[i].exp().numpy()) for i in range(4)])
    assert got.shape == (4, 11) and np.allclose(got, want, atol=1e-6)
    # Two sides certain of 5 each put all the mass on 10; of 0 and 3, on 3.
    certain = torch.full((2, 6), -1e4)
    certain[0, 5] = certain[1, 0] = 0.0
    other = torch.full((2, 6), -1e4)
    other[0, 5] = other[1, 3] = 0.0
    assert log_sum_distribution(certain, other).exp().argmax(1).tolist() == [10, 3]
    net = GradingNet(GradingNetConfig(n_landmarks=6, crop_size=16, widths=(8,), hidden=8,
                                      dimensions=(("erosion", 11), ("jsn", 5)), side_sum=("erosion",)))
    assert net.heads["erosion"].out_features == 12 and net.heads["jsn"].out_features == 5
    out = net(torch.rand(3, 1, 16, 16), torch.tensor([0, 3, 5]))
    assert out["erosion"].shape == (3, 11) and torch.allclose(out["erosion"].exp().sum(1), torch.ones(3), atol=1e-5)
    with pytest.raises(ValueError, match="odd"):
        GradingNet(GradingNetConfig(dimensions=(("erosion", 6), ("jsn", 5)), side_sum=("erosion",)))


def test_the_foot_model_grades_erosion_as_two_sides_and_the_hand_model_does_not(checkpoint):
    assert part_checkpoint(checkpoint, "foot")["config"]["grading"]["side_sum"] == ("erosion",)
    assert checkpoint["config"]["grading"]["side_sum"] == ()
    foot = load_part_models(checkpoint)["foot"]
    assert foot.grading_net.heads["erosion"].out_features == 12
