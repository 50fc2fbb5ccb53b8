"""Explanation maps of one grade behind one interface: which pixels of a joint crop drove it.

    cam = explain(model, image, "L", "mcp2", "erosion", method="occlusion")   # (H, W) in [0, 1]

Every method works on the grading network's crop (what the grade was computed from) and is
mapped back onto the full radiograph, 0 outside the crop, maximum 1. Methods:

- `gradcam`: Grad-CAM on the trunk's last block (4 x 4 for a 64 px crop; the original map).
- `gradcam_hires`: Grad-CAM two blocks earlier (16 x 16), via captum's LayerGradCam.
- `gradcam_pp`: Grad-CAM++ (Chattopadhay et al. 2018) on the same 16 x 16 layer; captum has no
  Grad-CAM++ and pytorch-grad-cam needs torchvision, so its weighting is written out below.
- `occlusion`: captum's Occlusion, a window of 1/8 of the crop slid in steps of 1/16, filled
  with the crop's mean; model-agnostic.
- `integrated_gradients`: captum's IntegratedGradients from the crop's mean grey.

`sanity_check` randomises the network layer by layer from the heads down (Adebayo et al. 2018)
and measures how much each method's map still resembles the original: a method whose map does
not change explains the image, not the model. No Django: this runs where only torch is.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion

from .data import affine_sample, crop_matrices, prepare_image
from .inference import HandModel, joint_crops, locate
from .networks import GradingNet

# A crop method: (grading net, crop (1, 1, S, S), landmark index, dimension, class) -> (S, S) map
# of non-negative relevance. The net is in eval mode; gradients are enabled by the caller.
CropMethod = Callable[[GradingNet, torch.Tensor, int, str, int], torch.Tensor]

# The method the workspace shows first: the one `python -m modeling.ml.explain_bench` measured
# best (pointing game 0.66 [0.56, 0.72] on 182 lesion areas; occlusion 0.64 is within its interval).
DEFAULT_METHOD = "integrated_gradients"


class _Target(torch.nn.Module):
    """The grading net as a function of the crop alone, for captum: crops -> logits of one dimension."""

    def __init__(self, net: GradingNet, index: int, dimension: str) -> None:
        super().__init__()
        self.net, self.index, self.dimension = net, index, dimension

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        idx = torch.full((crops.shape[0],), self.index, dtype=torch.long, device=crops.device)
        return self.net(crops, idx)[self.dimension]


def _upsample(cam: torch.Tensor, size: int) -> torch.Tensor:
    cam = LayerAttribution.interpolate(cam.float(), (size, size), interpolate_mode="bilinear")
    return F.relu(cam)[0, 0]


def hires_layer(net: GradingNet) -> torch.nn.Module:
    """The trunk block two before the last: 16 x 16 for a 64 px crop with the default widths."""
    return net.trunk[max(1, len(net.trunk) - 3)]


def _gradcam_at(layer_of: Callable[[GradingNet], torch.nn.Module]) -> CropMethod:
    def method(net: GradingNet, crop: torch.Tensor, index: int, dimension: str, grade: int) -> torch.Tensor:
        cam = LayerGradCam(_Target(net, index, dimension), layer_of(net)).attribute(crop, target=grade, relu_attributions=True)
        return _upsample(cam, crop.shape[-1])

    return method


def gradcam_pp(net: GradingNet, crop: torch.Tensor, index: int, dimension: str, grade: int) -> torch.Tensor:
    """Grad-CAM++: per-position weights alpha = g^2 / (2 g^2 + sum(A) g^3) on positive gradients."""
    layer = hires_layer(net)
    kept: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: kept.__setitem__("a", out))
    try:
        score = _Target(net, index, dimension)(crop)[0, grade]
    finally:
        handle.remove()
    acts = kept["a"]
    (grads,) = torch.autograd.grad(score, acts)
    g2, g3 = grads.pow(2), grads.pow(3)
    denom = 2 * g2 + acts.sum(dim=(2, 3), keepdim=True) * g3
    alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
    weights = (alpha * F.relu(grads)).sum(dim=(2, 3), keepdim=True)
    cam = (weights * acts).sum(1, keepdim=True).detach()
    return _upsample(cam, crop.shape[-1])


def occlusion(net: GradingNet, crop: torch.Tensor, index: int, dimension: str, grade: int) -> torch.Tensor:
    size = crop.shape[-1]
    window, stride = max(2, size // 8), max(1, size // 16)
    attr = Occlusion(_Target(net, index, dimension)).attribute(
        crop, target=grade, sliding_window_shapes=(1, window, window), strides=(1, stride, stride),
        baselines=float(crop.mean()), perturbations_per_eval=64,
    )
    return F.relu(attr.detach())[0, 0]


def integrated_gradients(net: GradingNet, crop: torch.Tensor, index: int, dimension: str, grade: int) -> torch.Tensor:
    attr = IntegratedGradients(_Target(net, index, dimension)).attribute(
        crop, baselines=torch.full_like(crop, float(crop.mean())), target=grade, n_steps=32, internal_batch_size=32
    )
    return F.relu(attr.detach())[0, 0]


METHODS: dict[str, CropMethod] = {
    "gradcam": _gradcam_at(lambda net: net.trunk[-1]),
    "gradcam_hires": _gradcam_at(hires_layer),
    "gradcam_pp": gradcam_pp,
    "occlusion": occlusion,
    "integrated_gradients": integrated_gradients,
}

# Human names for pickers and tables.
METHOD_LABELS = {
    "gradcam": "Grad-CAM (last layer, 4 x 4)",
    "gradcam_hires": "Grad-CAM (16 x 16 layer)",
    "gradcam_pp": "Grad-CAM++ (16 x 16 layer)",
    "occlusion": "Occlusion sensitivity",
    "integrated_gradients": "Integrated gradients",
}


def method_of(method: str | CropMethod) -> CropMethod:
    if callable(method):
        return method
    if method not in METHODS:
        raise KeyError(f"unknown explanation method {method!r}; expected one of {sorted(METHODS)}")
    return METHODS[method]


@dataclass
class CropContext:
    """One landmark's crop and what maps it back: from `crop_for`, reused by every method."""

    crop: torch.Tensor  # (1, 1, S, S)
    index: int
    to_image: torch.Tensor  # (1, 3, 3) crop pixels -> full-resolution pixels of the prepared hand
    height: int
    width: int
    mirrored: bool


def crop_for(
    model: HandModel, image: np.ndarray, laterality: str, landmark: str,
    landmarks: dict[str, tuple[float, float]] | None = None,
) -> CropContext:
    """The grading crop of `landmark` as inference cuts it (stage-1 points unless `landmarks` given)."""
    names = model.scheme["landmarks"]
    if landmark not in names:
        raise KeyError(f"landmark {landmark!r} not in scheme {model.scheme.get('key')!r}")
    i = names.index(landmark)
    model.eval()
    prep = prepare_image(image, laterality, model.landmark_net.cfg.input_size)
    with torch.no_grad():
        points, _ = locate(model, prep)
    if landmarks:
        for j, name in enumerate(names):
            if name in landmarks:
                points[j] = landmarks[name]
    crops, _, side = joint_crops(model, prep, points)
    size = model.grading_net.cfg.crop_size
    centre = torch.as_tensor(prep.to_full(points[i : i + 1]))
    to_image = torch.linalg.inv(crop_matrices(centre, side, size))
    return CropContext(crops[i : i + 1].to(model.device), i, to_image, prep.height, prep.width, prep.mirrored)


def crop_map(net: GradingNet, ctx: CropContext, dimension: str, method: str | CropMethod, grade: int | None) -> torch.Tensor:
    """The (S, S) map of one method on the crop, for `grade` or the predicted grade."""
    dims = [d for d, _ in net.cfg.dimensions]
    if dimension not in dims:
        raise KeyError(f"dimension {dimension!r} not in {dims}")
    net.eval()
    if grade is None:
        with torch.no_grad():
            grade = int(_Target(net, ctx.index, dimension)(ctx.crop).argmax(1))
    with torch.enable_grad():
        return method_of(method)(net, ctx.crop.clone(), ctx.index, dimension, int(grade)).detach().float().cpu()


def to_full_image(cam: torch.Tensor, ctx: CropContext) -> np.ndarray:
    """Pull a crop map back onto the original radiograph; scaled so its maximum is 1."""
    cam = cam / cam.max().clamp_min(1e-12)
    full = affine_sample(cam[None, None].double(), ctx.to_image.double(), (ctx.height, ctx.width))[0, 0]
    if ctx.mirrored:
        full = torch.flip(full, dims=[-1])
    # Resampling smooths the peak a little; scale again so the film's hottest pixel is 1.
    full = full / full.max().clamp_min(1e-12)
    return full.clamp(0.0, 1.0).numpy().astype(np.float32)


def explain(
    model: HandModel,
    image: np.ndarray,
    laterality: str,
    landmark: str,
    dimension: str,
    method: str | CropMethod = DEFAULT_METHOD,
    grade: int | None = None,
    landmarks: dict[str, tuple[float, float]] | None = None,
) -> np.ndarray:
    """(H, W) float32 map in [0, 1] of what drove `grade` (default: the predicted one)."""
    ctx = crop_for(model, image, laterality, landmark, landmarks)
    return to_full_image(crop_map(model.grading_net, ctx, dimension, method, grade), ctx)


# Sanity check: cascading weight randomisation ------------------------------------------------


def randomisation_steps(net: GradingNet) -> list[tuple[str, list[torch.nn.Module]]]:
    """Layers in the order they are randomised: heads first, then down the trunk to the stem."""
    steps: list[tuple[str, list[torch.nn.Module]]] = [("heads", [net.heads]), ("mlp+embed", [net.mlp, net.embed])]
    for k in range(len(net.trunk) - 1, -1, -1):
        steps.append((f"trunk[{k}]", [net.trunk[k]]))
    return steps


def _reinitialise(modules: list[torch.nn.Module], generator_seed: int) -> None:
    torch.manual_seed(generator_seed)
    for module in modules:
        for sub in module.modules():
            if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm):
                # Fresh affine weights only: randomising the running statistics would rescale
                # the activations and blow the logits up rather than scramble them.
                torch.nn.init.normal_(sub.weight, 1.0, 0.5)
                torch.nn.init.normal_(sub.bias, 0.0, 0.5)
            elif hasattr(sub, "reset_parameters"):
                sub.reset_parameters()


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman correlation of two maps (ties by average rank); 1.0 when both are constant and equal."""
    x, y = a.flatten().double().numpy(), b.flatten().double().numpy()
    rx, ry = _ranks(x), _ranks(y)
    sx, sy = rx.std(), ry.std()
    if sx == 0 or sy == 0:
        return 1.0 if np.allclose(x, y) else 0.0
    return float(((rx - rx.mean()) * (ry - ry.mean())).mean() / (sx * sy))


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(len(v))
    # Average ranks over ties, so a flat region does not look ordered.
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


# Mean rank correlation with the original map once every layer is randomised, above which a
# method is said to ignore the model.
SANITY_MAX_CORRELATION = 0.5


@dataclass
class SanityResult:
    method: str
    steps: list[str]
    correlations: list[float]  # mean over the crops, after randomising up to each step

    @property
    def passes(self) -> bool:
        return abs(self.correlations[-1]) < SANITY_MAX_CORRELATION


def sanity_check(
    net: GradingNet, crops: list[tuple[CropContext, str]], method: str | CropMethod, name: str | None = None, seed: int = 0
) -> SanityResult:
    """Randomise `net` layer by layer (cumulatively) and compare each crop's map with the original."""
    originals = [crop_map(net, ctx, dim, method, None) for ctx, dim in crops]
    grades = [_predicted(net, ctx, dim) for ctx, dim in crops]
    broken = copy.deepcopy(net)
    steps, correlations = [], []
    for k, (label, modules) in enumerate(randomisation_steps(broken)):
        _reinitialise(modules, seed * 1000 + k)
        maps = [crop_map(broken, ctx, dim, method, grade) for (ctx, dim), grade in zip(crops, grades)]
        steps.append(label)
        correlations.append(float(np.mean([rank_correlation(a, b) for a, b in zip(originals, maps)])))
    return SanityResult(name or (method if isinstance(method, str) else getattr(method, "__name__", "method")), steps, correlations)


def _predicted(net: GradingNet, ctx: CropContext, dimension: str) -> int:
    with torch.no_grad():
        return int(_Target(net, ctx.index, dimension)(ctx.crop).argmax(1))
