"""Grad-CAM maps that show which part of a joint crop drove one grade, placed on the full image.

    cam = gradcam(model, image, "L", "mcp2", "erosion")     # (H, W) float32 in [0, 1]
    rgb = overlay(image, cam)                               # (H, W, 3) uint8 for display
"""

from __future__ import annotations

import numpy as np

from .inference import HandModel


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
    One of the methods of `explain`, which cuts the crop and maps it back for every method.
    """
    from .explain import explain  # captum is loaded only by callers that draw maps

    return explain(model, image, laterality, landmark, dimension, method="gradcam", grade=grade, landmarks=landmarks)


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
