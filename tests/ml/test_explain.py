"""Explanation methods: one interface, maps on the full film, lesion masks, and the randomisation check.

The randomisation check is the one that matters: a planted method that looks at the image alone
(its edges) must be caught, and the real methods must not be.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modeling.ml import explain, explain_bench
from modeling.ml.data import scheme_from_entry
from modeling.ml.inference import build_model
from modeling.ml.networks import GradingNetConfig
from modeling.ml.lesion_truth import dilate, jsn_mask, lesion_masks
from modeling.ml.phantoms import PhantomConfig, generate_patient

SCHEMES = Path(__file__).resolve().parents[2] / "annotation" / "data" / "schemes.json"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    entry = next(s for s in json.loads(SCHEMES.read_text())["schemes"] if s["key"] == "svdh")
    # Small at the CPU's scale: the checks are about the interface and the randomisation, not the grades.
    small = GradingNetConfig(crop_size=32, widths=(8, 16, 32), hidden=16, embed_dim=4)
    return build_model(scheme_from_entry(entry), grading_cfg=small)


@pytest.fixture(scope="module")
def hand():
    _, right = generate_patient(5, PhantomConfig(width=320, height=400))
    return right


def image_edges(net, crop, index, dimension, grade):
    """A planted 'explanation' that never asks the model: the crop's own gradient magnitude."""
    dx = F.pad(crop[..., :, 1:] - crop[..., :, :-1], (0, 1, 0, 0))
    dy = F.pad(crop[..., 1:, :] - crop[..., :-1, :], (0, 0, 0, 1))
    return (dx.abs() + dy.abs())[0, 0].detach()


@pytest.mark.parametrize("method", sorted(explain.METHODS))
def test_every_method_maps_onto_the_whole_film_inside_the_joint_crop(model, hand, method) -> None:
    points = {name: (float(x), float(y)) for name, (x, y) in hand.landmarks.items()}
    cam = explain.explain(model, hand.image, hand.laterality, "mcp2", "erosion", method=method, landmarks=points)
    assert cam.shape == hand.image.shape and cam.dtype == np.float32
    if method == "gradcam" and cam.max() == 0:
        # Grad-CAM on the last 4 x 4 map may find no positive evidence at all (ReLU of a
        # negative sum); the finer methods on this seeded network do find some.
        return
    assert cam.min() >= 0 and abs(cam.max() - 1) < 1e-5
    ys, xs = np.nonzero(cam > 0)
    x, y = points["mcp2"]
    # Non-zero only near MCP 2: the crop is 0.3 hand sizes wide around the joint.
    assert abs(xs.mean() - x) < 40 and abs(ys.mean() - y) < 40
    assert (cam > 0).mean() < 0.2


def test_an_unknown_method_is_refused_by_name(model, hand) -> None:
    with pytest.raises(KeyError, match="unknown explanation method 'saliency'"):
        explain.explain(model, hand.image, hand.laterality, "mcp2", "erosion", method="saliency")


def test_randomisation_catches_a_method_that_ignores_the_model(model, hand) -> None:
    points = {name: (float(x), float(y)) for name, (x, y) in hand.landmarks.items()}
    crops = [(explain.crop_for(model, hand.image, hand.laterality, name, points), dim)
             for name, dim in (("mcp2", "erosion"), ("pip3", "jsn"))]
    planted = explain.sanity_check(model.grading_net, crops, image_edges, name="edges")
    assert planted.correlations == pytest.approx([1.0] * len(planted.steps))
    assert not planted.passes
    for method in ("gradcam_hires", "occlusion"):
        result = explain.sanity_check(model.grading_net, crops, method)
        assert result.passes, (method, result.correlations)
        assert result.steps[0] == "heads" and result.steps[-1] == "trunk[0]"


def test_lesion_masks_cover_the_drawn_erosions_and_the_joint_space(hand) -> None:
    masks = lesion_masks(hand)
    eroded = [name for name, grade in hand.grades["erosion"].items() if grade >= 1]
    narrowed = [name for name, grade in hand.grades["jsn"].items() if grade >= 1]
    assert eroded and narrowed
    assert {name for name, dim in masks if dim == "erosion"} <= set(eroded)
    for name in narrowed:
        mask = jsn_mask(hand, name)
        x, y = hand.landmarks[name]
        assert mask[int(round(y)), int(round(x))]  # the landmark sits mid-gap
        assert 0 < mask.sum() < 0.02 * mask.size
    small = np.zeros((9, 9), dtype=bool)
    small[4, 4] = True
    assert dilate(small, 2).sum() == 13


def test_the_bench_scores_pointing_and_share_against_chance(model, hand) -> None:
    measured, _ = explain_bench.measure(model, [("p0", hand)], ["occlusion", "gradcam"], max_areas=3)
    rows = measured["rows"]
    assert len(rows) == 2 * 3 and {r["method"] for r in rows} == {"occlusion", "gradcam"}
    assert all(r["hit"] in (0.0, 1.0) and 0 <= r["share"] <= 1 and 0 < r["chance"] < 1 for r in rows)
    table = explain_bench.summarise(rows, ["occlusion", "gradcam"], replicates=50)
    assert [row["areas"] for row in table] == [len(rows) // 2] * 2
    sanity = [explain.SanityResult("occlusion", ["heads"], [0.1]), explain.SanityResult("gradcam", ["heads"], [0.9])]
    # A method that fails the randomisation check is never the default, however well it points.
    table[1]["pointing"]["value"] = 1.0
    table[0]["pointing"]["value"] = 0.0
    assert explain_bench.best_method(table, sanity) == "occlusion"
