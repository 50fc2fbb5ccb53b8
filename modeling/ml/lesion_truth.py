"""Where a phantom's lesion really is: full-size masks per graded area, to score explanation maps.

Erosion: the pixels where the generator removed bone for that area (`Phantom.lesion_mask`).
Joint space narrowing has no removed pixels; its lesion is the joint space itself, so the mask is
the band across the joint: along the joint axis the drawn gap (at least 2 px) plus a margin of
`margin_px` each side, across it the width of the joint's box. Both are dilated by `tolerance_px`
for the pointing game, as a pointing game gives a hit some pixels of slack.
"""

from __future__ import annotations

import numpy as np

from .phantoms import Phantom


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a disc of `radius` pixels (numpy only; masks are small and sparse)."""
    if radius <= 0 or not mask.any():
        return mask.copy()
    out = mask.copy()
    h, w = mask.shape
    rows, cols = np.nonzero(mask)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx > radius * radius:
                continue
            r, c = rows + dy, cols + dx
            keep = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            out[r[keep], c[keep]] = True
    return out


def erosion_mask(phantom: Phantom, landmark: str) -> np.ndarray:
    return phantom.lesion_mask(landmark)


def jsn_mask(phantom: Phantom, landmark: str, margin_px: float = 1.5) -> np.ndarray:
    """The joint space of `landmark` as a band across the joint (see the module docstring)."""
    joint = phantom.joints[landmark]
    x0, y0, x1, y1 = phantom.boxes[landmark]
    half_across = 0.5 * max(x1 - x0, y1 - y0) * 0.5
    half_along = 0.5 * max(phantom.gap_width_px.get(landmark, joint.gap_px), 2.0) + margin_px
    ax, ay = joint.axis
    norm = float(np.hypot(ax, ay)) or 1.0
    ax, ay = ax / norm, ay / norm
    yy, xx = np.mgrid[0 : phantom.height, 0 : phantom.width]
    dx, dy = xx - joint.point[0], yy - joint.point[1]
    along = dx * ax + dy * ay
    across = -dx * ay + dy * ax
    return (np.abs(along) <= half_along) & (np.abs(across) <= half_across)


def lesion_masks(phantom: Phantom, min_grade: int = 1) -> dict[tuple[str, str], np.ndarray]:
    """{(landmark, dimension): mask} for every area graded at least `min_grade` whose mask is not empty."""
    found: dict[tuple[str, str], np.ndarray] = {}
    for landmark, grade in phantom.grades.get("erosion", {}).items():
        if grade >= min_grade:
            mask = erosion_mask(phantom, landmark)
            if mask.any():
                found[(landmark, "erosion")] = mask
    for landmark, grade in phantom.grades.get("jsn", {}).items():
        if grade >= min_grade and landmark in phantom.joints and landmark in phantom.boxes:
            found[(landmark, "jsn")] = jsn_mask(phantom, landmark)
    return found
