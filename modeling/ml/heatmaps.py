"""Grad-CAM maps that show which part of a joint crop drove one grade, placed on the full image.

    cam = gradcam(model, image, "L", "mcp2", "erosion")     # (H, W) float32 in [0, 1]
    rgb = overlay(image, cam)                               # (H, W, 3) uint8 for display
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .data import affine_sample, crop_matrices, prepare_image
from .inference import HandModel, joint_crops, locate


def gradcam(
    model: HandModel,
    image: np.ndarray,
    laterality: str,
    landmark: str,
    dimension: str,
    grade: int | None = None,
    landmarks: dict[str, tuple[float, float]] | None = None,
) -> np.ndarray:
    """Grad-CAM of the grading network's last feature map for one landmark and dimension.

    The class explained is `grade`, or the predicted grade when None. Landmarks come from
    stage 1 unless given (the crop must match what the grades were computed from). Returns an
    (H, W) map of the original image, 0 outside the joint's crop, scaled so its maximum is 1.
    """
    names = model.scheme["landmarks"]
    if landmark not in names:
        raise KeyError(f"landmark {landmark!r} not in scheme {model.scheme.get('key')!r}")
    dims = [d for d, _ in model.grading_net.cfg.dimensions]
    if dimension not in dims:
        raise KeyError(f"dimension {dimension!r} not in {dims}")
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
    net = model.grading_net
    crop = crops[i : i + 1].to(model.device)
    idx = torch.tensor([i], device=model.device)
    with torch.enable_grad():
        fmap = net.features(crop).detach().requires_grad_(True)
        logits = net.classify(fmap, idx)[dimension]
        k = int(logits.argmax(1)) if grade is None else int(grade)
        (grad,) = torch.autograd.grad(logits[0, k], fmap)
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * fmap.detach()).sum(1, keepdim=True)).float().cpu()
    size = net.cfg.crop_size
    cam = F.interpolate(cam, size=(size, size), mode="bilinear", align_corners=False)
    cam = cam / cam.max().clamp_min(1e-12)
    # Crop pixels -> full-tensor pixels is crop_matrices; invert it to pull the map back.
    centre = torch.as_tensor(prep.to_full(points[i : i + 1]))
    to_image = torch.linalg.inv(crop_matrices(centre, side, size))
    full = affine_sample(cam, to_image, (prep.height, prep.width))[0, 0]
    if prep.mirrored:
        full = torch.flip(full, dims=[-1])
    return full.clamp(0.0, 1.0).numpy().astype(np.float32)


def _colormap(v: np.ndarray) -> np.ndarray:
    """A small jet-like map (blue -> cyan -> yellow -> red) without matplotlib."""
    r = np.clip(1.5 - np.abs(4 * v - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * v - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * v - 1), 0, 1)
    return np.stack([r, g, b], -1)


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a [0, 1] map onto a grey radiograph -> (H, W, 3) uint8; zero-map pixels stay grey."""
    img = np.asarray(image, dtype=np.float64)
    lo, hi = np.percentile(img, [0.5, 99.5])
    grey = np.clip((img - lo) / max(hi - lo, 1e-9), 0, 1)[..., None].repeat(3, -1)
    a = alpha * np.asarray(cam, dtype=np.float64)[..., None]
    return (255 * ((1 - a) * grey + a * _colormap(np.asarray(cam, dtype=np.float64)))).round().astype(np.uint8)
