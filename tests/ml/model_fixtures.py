"""Tiny synthetic hands for the model tests: bright blobs at landmarks on a dark film.

Each blob's size follows its erosion grade and its brightness its JSN grade, so a grader can
learn something in a few steps; everything is small enough to train on a CPU in seconds.
"""

from __future__ import annotations

import numpy as np

SCHEME = {
    "key": "toy",
    "body_part": "hand",
    "landmarks": ["a", "b", "c", "d"],
    "areas": [
        {"landmark": "a", "dimension": "erosion", "max_grade": 2, "code": "a_E"},
        {"landmark": "b", "dimension": "erosion", "max_grade": 2, "code": "b_E"},
        {"landmark": "b", "dimension": "jsn", "max_grade": 1, "code": "b_J"},
        {"landmark": "c", "dimension": "jsn", "max_grade": 1, "code": "c_J"},
        {"landmark": "d", "dimension": "erosion", "max_grade": 2, "code": "d_E"},
    ],
}

# Right-hand template positions as fractions of (width, height).
TEMPLATE = np.array([[0.25, 0.3], [0.7, 0.25], [0.35, 0.7], [0.7, 0.75]])


def toy_hand(rng: np.random.Generator, laterality: str = "R", size: tuple[int, int] = (160, 128),
             patient_id: str = "p0") -> dict:
    h, w = size
    pts = TEMPLATE * [w, h] + rng.uniform(-0.04, 0.04, TEMPLATE.shape) * [w, h]
    if laterality == "L":
        pts[:, 0] = (w - 1) - pts[:, 0]
    ero = rng.integers(0, 3, 4)
    jsn = rng.integers(0, 2, 4)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.full((h, w), 200.0)
    for (x, y), e, j in zip(pts, ero, jsn):
        r = 3.0 + 2.0 * e
        img += (1500.0 + 1500.0 * j) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * r * r))
    img += rng.normal(0, 30, img.shape)
    names = SCHEME["landmarks"]
    targets = {}
    for a in SCHEME["areas"]:
        i = names.index(a["landmark"])
        targets[(a["landmark"], a["dimension"])] = int(ero[i] if a["dimension"] == "erosion" else jsn[i])
    return {
        "image": np.clip(img, 0, 65535).astype(np.uint16),
        "laterality": laterality,
        "landmarks": {n: (float(x), float(y)) for n, (x, y) in zip(names, pts)},
        "patient_id": patient_id,
        "targets": targets,
    }


def toy_samples(n_patients: int, seed: int = 0, size: tuple[int, int] = (160, 128)) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [toy_hand(rng, lat, size, f"p{i}") for i in range(n_patients) for lat in ("L", "R")]
