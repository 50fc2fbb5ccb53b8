"""Scheme handling, image preparation, joint crops, augmentation and the in-memory hand dataset.

A training sample is a plain dict, so any source (database rows, phantoms, files) can feed it:

    {"image": HxW uint16 or float array, "laterality": "L" | "R",
     "landmarks": {name: (x, y)}, "patient_id": str,
     "targets": {(landmark, dimension): int grade | probability vector}}

Coordinates are in original image pixels with pixel centres at integers. Left hands are mirrored
to right-hand orientation before either network sees them; every point that leaves this package
is in the original (unmirrored) frame.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# Schemes
# ---------------------------------------------------------------------------------------------

Scheme = dict[str, Any]
AreaKey = tuple[str, str]  # (landmark, dimension)


def scheme_from_entry(entry: dict, body_part: str = "hand") -> Scheme:
    """Reduce one entry of schemes.json (or the same shape from the database) to what the model needs.

    The result is JSON-safe and is stored in every checkpoint, so a checkpoint is self-describing.
    """
    landmarks = [lm["name"] for lm in entry["landmarks"] if lm.get("body_part", body_part) == body_part]
    areas = [
        {
            "landmark": a["landmark"],
            "dimension": a["dimension"],
            "max_grade": int(a["max_grade"]),
            "code": a.get("code", f"{a['landmark']}_{a['dimension']}"),
        }
        for a in entry["areas"]
        if a.get("body_part", body_part) == body_part
    ]
    names = set(landmarks)
    for a in areas:
        if a["landmark"] not in names:
            raise ValueError(f"area {a['code']} refers to unknown landmark {a['landmark']!r}")
    return {"key": entry.get("key", "custom"), "body_part": body_part, "landmarks": landmarks, "areas": areas}


def load_scheme(path: str | Path, key: str, body_part: str = "hand") -> Scheme:
    """Read one scheme from a schemes.json file (a plain file read; no database needed)."""
    data = json.loads(Path(path).read_text())
    for entry in data["schemes"]:
        if entry["key"] == key:
            return scheme_from_entry(entry, body_part)
    raise KeyError(f"scheme {key!r} not in {path}")


def scheme_dimensions(scheme: Scheme) -> list[tuple[str, int]]:
    """(dimension, number of classes) in order of first appearance, e.g. [("erosion", 6), ("jsn", 5)]."""
    dims: dict[str, int] = {}
    for a in scheme["areas"]:
        dims[a["dimension"]] = max(dims.get(a["dimension"], 0), a["max_grade"] + 1)
    return list(dims.items())


# Scales a body part scores per side of the joint and adds up: Sharp/van der Heijde foot erosion
# is 0-5 at the metatarsal head (phalanx head at the IP) plus 0-5 at the phalanx base. Measured on
# phantoms (README, "Hands and feet"), a head that predicts the two sides and returns their sum
# grades foot erosion better than a plain 0-10 head trained on the same 0-10 labels.
SIDE_SUM_DIMENSIONS = {"foot": ("erosion",)}


def scheme_side_sums(scheme: Scheme) -> tuple[str, ...]:
    """Dimensions of the scheme's body part graded as a sum of two sides (an odd number of grades)."""
    dims = dict(scheme_dimensions(scheme))
    wanted = SIDE_SUM_DIMENSIONS.get(str(scheme.get("body_part", "hand")), ())
    return tuple(d for d in wanted if d in dims and dims[d] % 2 == 1)


def scheme_class_mask(scheme: Scheme) -> list[list[list[bool]]]:
    """mask[d][l][k]: landmark l may take grade k in dimension d (all False where l has no area)."""
    dims = scheme_dimensions(scheme)
    k_max = max(k for _, k in dims)
    index = {name: i for i, name in enumerate(scheme["landmarks"])}
    mask = np.zeros((len(dims), len(index), k_max), dtype=bool)
    d_index = {name: d for d, (name, _) in enumerate(dims)}
    for a in scheme["areas"]:
        mask[d_index[a["dimension"]], index[a["landmark"]], : a["max_grade"] + 1] = True
    return mask.tolist()


# ---------------------------------------------------------------------------------------------
# Geometry: pixel-space affine maps sampled with grid_sample
# ---------------------------------------------------------------------------------------------


def mirror_points(points: np.ndarray, width: int) -> np.ndarray:
    """Mirror (..., 2) pixel points left-right in an image `width` pixels wide (an involution)."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[..., 0] = (width - 1) - out[..., 0]
    return out


def _pixel_to_normalised(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # grid_sample with align_corners=False puts pixel centres at (2x + 1) / W - 1.
    return torch.tensor(
        [[2.0 / w, 0.0, 1.0 / w - 1.0], [0.0, 2.0 / h, 1.0 / h - 1.0], [0.0, 0.0, 1.0]],
        dtype=dtype,
        device=device,
    )


def affine_sample(
    images: torch.Tensor, matrices: torch.Tensor, out_hw: tuple[int, int], mode: str = "bilinear"
) -> torch.Tensor:
    """Resample (B, C, H, W) images; matrices (B, 3, 3) map output pixels (x, y, 1) to input pixels."""
    b, _, h, w = images.shape
    oh, ow = out_hw
    n_in = _pixel_to_normalised(h, w, matrices.dtype, matrices.device)
    n_out_inv = torch.linalg.inv(_pixel_to_normalised(oh, ow, matrices.dtype, matrices.device))
    theta = (n_in @ matrices @ n_out_inv)[:, :2, :]
    theta = theta.to(device=images.device, dtype=images.dtype)
    grid = F.affine_grid(theta, [b, images.shape[1], oh, ow], align_corners=False)
    return F.grid_sample(images, grid, mode=mode, padding_mode="zeros", align_corners=False)


def crop_matrices(
    centres: torch.Tensor,
    side: torch.Tensor | float,
    out_size: int,
    angle: torch.Tensor | float = 0.0,
    scale: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    """(N, 3, 3) maps from crop pixels to source pixels for square crops of `side` source pixels.

    The crop centre (out_size - 1) / 2 lands on `centres`; `angle` (radians) rotates and `scale`
    (> 1 zooms out) resizes the sampled square, both about the centre.
    """
    n = centres.shape[0]
    dev, dt = centres.device, torch.float64
    side_t = torch.as_tensor(side, dtype=dt, device=dev).expand(n)
    angle_t = torch.as_tensor(angle, dtype=dt, device=dev).expand(n)
    scale_t = torch.as_tensor(scale, dtype=dt, device=dev).expand(n)
    step = side_t * scale_t / out_size
    cos, sin = torch.cos(angle_t), torch.sin(angle_t)
    m = torch.zeros(n, 3, 3, dtype=dt, device=dev)
    m[:, 0, 0], m[:, 0, 1] = step * cos, -step * sin
    m[:, 1, 0], m[:, 1, 1] = step * sin, step * cos
    c0 = (out_size - 1) / 2.0
    m[:, 0, 2] = centres[:, 0].to(dt) - c0 * (m[:, 0, 0] + m[:, 0, 1])
    m[:, 1, 2] = centres[:, 1].to(dt) - c0 * (m[:, 1, 0] + m[:, 1, 1])
    m[:, 2, 2] = 1.0
    return m


def hand_size(points: np.ndarray, present: np.ndarray | None = None) -> float:
    """Median pairwise distance between the hand's landmarks: a scale that ignores image size,
    zoom and how much forearm is on the film, and is robust to one misplaced landmark."""
    pts = np.asarray(points, dtype=np.float64)
    if present is not None:
        pts = pts[np.asarray(present, dtype=bool)]
    if len(pts) < 2:
        raise ValueError("hand size needs at least two landmarks")
    d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
    return float(np.median(d[np.triu_indices(len(pts), 1)]))


# ---------------------------------------------------------------------------------------------
# Preparing one image for both networks (shared by training and inference)
# ---------------------------------------------------------------------------------------------


@dataclass
class PreparedHand:
    """A right-oriented, intensity-normalised hand at full and at network resolution."""

    full: torch.Tensor  # (1, 1, H, W) float32
    net: torch.Tensor  # (1, 1, h, w) float32
    height: int
    width: int
    mirrored: bool

    def to_net(self, points: np.ndarray) -> np.ndarray:
        """Original-frame pixels -> net-input pixels (mirroring included)."""
        pts = mirror_points(points, self.width) if self.mirrored else np.asarray(points, dtype=np.float64)
        h, w = self.net.shape[-2:]
        out = np.empty_like(pts)
        out[..., 0] = (pts[..., 0] + 0.5) * (w / self.width) - 0.5
        out[..., 1] = (pts[..., 1] + 0.5) * (h / self.height) - 0.5
        return out

    def from_net(self, points: np.ndarray) -> np.ndarray:
        """Net-input pixels -> original-frame pixels (mirroring undone)."""
        h, w = self.net.shape[-2:]
        pts = np.asarray(points, dtype=np.float64)
        out = np.empty_like(pts)
        out[..., 0] = (pts[..., 0] + 0.5) * (self.width / w) - 0.5
        out[..., 1] = (pts[..., 1] + 0.5) * (self.height / h) - 0.5
        return mirror_points(out, self.width) if self.mirrored else out

    def to_full(self, points: np.ndarray) -> np.ndarray:
        """Original-frame pixels -> pixels of the (possibly mirrored) full-resolution tensor."""
        return mirror_points(points, self.width) if self.mirrored else np.asarray(points, dtype=np.float64)


def prepare_image(image: np.ndarray, laterality: str, input_size: tuple[int, int]) -> PreparedHand:
    """Mirror a left hand, downscale with area averaging, and map intensities to about [0, 1].

    Intensities use robust percentiles of the downscaled image, so 8-, 12- and 16-bit films and
    different exposures land on the same scale, and the full-resolution copy shares that scale.
    """
    if laterality not in ("L", "R"):
        raise ValueError(f"laterality must be 'L' or 'R', got {laterality!r}")
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {arr.shape}")
    full = torch.from_numpy(arr.astype(np.float32, copy=False))[None, None]
    mirrored = laterality == "L"
    if mirrored:
        full = torch.flip(full, dims=[-1])
    net = F.interpolate(full, size=tuple(input_size), mode="area")
    lo, hi = torch.quantile(net.flatten()[:: max(1, net.numel() // 20000)], torch.tensor([0.005, 0.995]))
    scale = 1.0 / float(max(hi - lo, 1e-6))
    net = (net - lo) * scale
    full = (full - lo) * scale
    return PreparedHand(full=full, net=net, height=arr.shape[0], width=arr.shape[1], mirrored=mirrored)


def extract_crops(
    full: torch.Tensor, centres: np.ndarray | torch.Tensor, side: float, out_size: int
) -> torch.Tensor:
    """Square crops of `side` source pixels around (L, 2) full-tensor pixel centres -> (L, 1, S, S).

    The image is first box-filtered by the integer part of the reduction factor, so shrinking a
    large joint to 64 pixels averages over its pixels instead of skipping most of them.
    """
    centres_t = torch.as_tensor(np.asarray(centres, dtype=np.float64))
    factor = int(max(1, math.floor(side / out_size)))
    src = F.avg_pool2d(full, factor) if factor > 1 else full
    m = crop_matrices(centres_t, side, out_size)
    if factor > 1:
        to_pooled = torch.tensor(
            [[1.0 / factor, 0, 0.5 / factor - 0.5], [0, 1.0 / factor, 0.5 / factor - 0.5], [0, 0, 1.0]],
            dtype=torch.float64,
        )
        m = to_pooled @ m
    src = src.expand(len(centres_t), -1, -1, -1)
    return affine_sample(src, m.float(), (out_size, out_size))


# ---------------------------------------------------------------------------------------------
# Augmentation
# ---------------------------------------------------------------------------------------------


@dataclass
class AugmentConfig:
    rotation_deg: float = 10.0
    scale: float = 0.1  # uniform in [1 - scale, 1 + scale]
    shift: float = 0.05  # fraction of the image (stage 1) or of the crop (stage 2)
    contrast: float = 0.2
    brightness: float = 0.1
    gamma: float = 0.3  # log-uniform in [1 / (1 + gamma), 1 + gamma]
    noise: float = 0.03  # Gaussian noise sd drawn uniformly in [0, noise]


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)


def augment_intensity(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Contrast, brightness, gamma and noise per image; x is (B, 1, H, W) in about [0, 1]."""
    b = x.shape[0]

    def draw(lo: float, hi: float) -> torch.Tensor:
        return _uniform(b, lo, hi, g).float().view(b, 1, 1, 1).to(x.device)

    # The generator lives on the CPU so a run draws the same numbers on any device.
    gamma = torch.exp(draw(-math.log1p(cfg.gamma), math.log1p(cfg.gamma)))
    x = x.clamp(0.0, 1.5).pow(gamma)
    x = x * draw(1 - cfg.contrast, 1 + cfg.contrast) + draw(-cfg.brightness, cfg.brightness)
    noise = torch.randn(x.shape, generator=g).to(x.device)
    return x + draw(0.0, cfg.noise) * noise


def augment_landmark_batch(
    images: torch.Tensor, points: torch.Tensor, cfg: AugmentConfig, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random similarity transform + intensity changes for (B, 1, h, w) images and (B, L, 2) points."""
    b, _, h, w = images.shape
    angle = _uniform(b, -1, 1, g) * math.radians(cfg.rotation_deg)
    scale = _uniform(b, 1 - cfg.scale, 1 + cfg.scale, g)
    shift = torch.stack([_uniform(b, -1, 1, g) * cfg.shift * w, _uniform(b, -1, 1, g) * cfg.shift * h], 1)
    centre = torch.tensor([(w - 1) / 2.0, (h - 1) / 2.0], dtype=torch.float64)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Output pixel p maps to input c + s R (p - c) + t; points move by the inverse.
    m = torch.zeros(b, 3, 3, dtype=torch.float64)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = scale * cos, -scale * sin, scale * sin, scale * cos
    m[:, :2, 2] = centre - (m[:, :2, :2] @ centre) + shift
    m[:, 2, 2] = 1.0
    out = affine_sample(images.float(), m, (h, w))
    inv = torch.linalg.inv(m).to(points.device)
    p = torch.cat([points.double(), torch.ones_like(points[..., :1], dtype=torch.float64)], -1)
    new_points = (p @ inv.transpose(1, 2))[..., :2].float()
    return augment_intensity(out, cfg, g), new_points


def augment_crops(
    context: torch.Tensor, out_size: int, cfg: AugmentConfig, g: torch.Generator, context_factor: float
) -> torch.Tensor:
    """Random crops of `out_size` from (B, 1, C, C) context crops (C = out_size * context_factor).

    The centre jitter stands in for stage-1 localisation error, so the grader learns not to
    depend on the joint sitting exactly in the middle.
    """
    b, _, c, _ = context.shape
    angle = _uniform(b, -1, 1, g) * math.radians(cfg.rotation_deg)
    scale = _uniform(b, 1 - cfg.scale, 1 + cfg.scale, g)
    centre = torch.full((b, 2), (c - 1) / 2.0, dtype=torch.float64)
    centre += torch.stack([_uniform(b, -1, 1, g), _uniform(b, -1, 1, g)], 1) * cfg.shift * out_size
    side = c / context_factor
    m = crop_matrices(centre, side, out_size, angle, scale)
    return augment_intensity(affine_sample(context.float(), m, (out_size, out_size)), cfg, g)


def centre_crops(context: torch.Tensor, out_size: int, context_factor: float) -> torch.Tensor:
    """The un-augmented crop in the middle of each context crop."""
    c = context.shape[-1]
    centre = torch.full((context.shape[0], 2), (c - 1) / 2.0, dtype=torch.float64)
    m = crop_matrices(centre, c / context_factor, out_size)
    return affine_sample(context.float(), m, (out_size, out_size))


# ---------------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------------


def target_distribution(value: Any, n_allowed: int, n_classes: int, smoothing: float) -> np.ndarray:
    """A grade or a probability vector -> a length-`n_classes` distribution over the allowed grades.

    A hard grade spreads `smoothing` onto its immediate neighbours only (local, ordinal-aware
    label smoothing); a probability vector, e.g. a Dawid-Skene posterior, is used as given.
    """
    out = np.zeros(n_classes, dtype=np.float32)
    if np.ndim(value) == 0:
        g = int(value)
        if not 0 <= g < n_allowed:
            raise ValueError(f"grade {g} outside 0..{n_allowed - 1}")
        neighbours = [k for k in (g - 1, g + 1) if 0 <= k < n_allowed]
        out[g] = 1.0 - (smoothing if neighbours else 0.0)
        for k in neighbours:
            out[k] = smoothing / len(neighbours)
        return out
    p = np.asarray(value, dtype=np.float64).ravel()
    if len(p) > n_allowed and p[n_allowed:].sum() > 1e-6:
        raise ValueError(f"probability vector puts mass above grade {n_allowed - 1}")
    p = p[:n_allowed]
    if (p < -1e-9).any() or p.sum() <= 0:
        raise ValueError("probability vector must be non-negative with positive sum")
    out[: len(p)] = p / p.sum()
    return out


# ---------------------------------------------------------------------------------------------
# The in-memory dataset
# ---------------------------------------------------------------------------------------------


def patient_split(patient_id: str, seed: int, val_fraction: float, test_fraction: float) -> str:
    """'train' | 'val' | 'test' from a seeded hash of the patient id.

    Hashing instead of shuffling a list keeps a patient in the same split when data is added
    later, so a retrained model is never evaluated on patients an earlier one trained on.
    """
    h = hashlib.sha256(f"{seed}:{patient_id}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


@dataclass
class HandDataset:
    """Everything training needs, decoded once: net-size images, context crops and targets.

    Full-resolution images are kept only where `raw` holds them (hands used for end-to-end
    evaluation); training hands keep only their compact arrays.
    """

    scheme: Scheme
    input_size: tuple[int, int]
    crop_size: int
    crop_scale: float
    context_factor: float
    images: np.ndarray  # (N, h, w) float16, right-oriented, normalised
    points: np.ndarray  # (N, L, 2) float32 net-input pixels (NaN where absent)
    present: np.ndarray  # (N, L) bool
    contexts: np.ndarray  # (N, L, C, C) float16 crops around ground-truth landmarks
    targets: dict[str, np.ndarray]  # dimension -> (N, L, K) float32 distributions
    target_mask: dict[str, np.ndarray]  # dimension -> (N, L) bool
    patient_ids: list[str]
    lateralities: list[str]
    raw: list[dict | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.patient_ids)

    def subset(self, indices: Iterable[int]) -> HandDataset:
        idx = np.asarray(list(indices), dtype=np.int64)
        return HandDataset(
            scheme=self.scheme,
            input_size=self.input_size,
            crop_size=self.crop_size,
            crop_scale=self.crop_scale,
            context_factor=self.context_factor,
            images=self.images[idx],
            points=self.points[idx],
            present=self.present[idx],
            contexts=self.contexts[idx],
            targets={k: v[idx] for k, v in self.targets.items()},
            target_mask={k: v[idx] for k, v in self.target_mask.items()},
            patient_ids=[self.patient_ids[i] for i in idx],
            lateralities=[self.lateralities[i] for i in idx],
            raw=[self.raw[i] for i in idx] if self.raw else [],
        )


def _target_lookup(scheme: Scheme) -> dict[Any, AreaKey]:
    lookup: dict[Any, AreaKey] = {}
    for a in scheme["areas"]:
        key = (a["landmark"], a["dimension"])
        lookup[key] = key
        lookup[a["code"]] = key
    return lookup


def build_dataset(
    samples: Iterable[dict],
    scheme: Scheme,
    input_size: tuple[int, int],
    crop_size: int,
    crop_scale: float,
    context_factor: float = 1.5,
    label_smoothing: float = 0.1,
    keep_raw: Any = None,
) -> HandDataset:
    """Decode samples one by one into compact arrays.

    keep_raw(sample) -> bool says which samples keep their full image for end-to-end evaluation;
    by default none do. Targets whose area is not in the scheme are ignored; landmarks missing
    from a sample are marked absent and left out of both losses.
    """
    names = scheme["landmarks"]
    index = {n: i for i, n in enumerate(names)}
    dims = scheme_dimensions(scheme)
    max_grade = {(a["landmark"], a["dimension"]): a["max_grade"] for a in scheme["areas"]}
    lookup = _target_lookup(scheme)
    ctx = int(round(crop_size * context_factor))
    h, w = input_size
    images, points, present, contexts, raw, pids, lats = [], [], [], [], [], [], []
    targets = {d: [] for d, _ in dims}
    masks = {d: [] for d, _ in dims}
    for s in samples:
        prep = prepare_image(s["image"], s["laterality"], input_size)
        pts = np.full((len(names), 2), np.nan)
        pres = np.zeros(len(names), dtype=bool)
        for name, xy in s["landmarks"].items():
            if name in index and xy is not None:
                pts[index[name]] = xy
                pres[index[name]] = True
        if pres.sum() < 2:
            raise ValueError(f"sample of patient {s.get('patient_id')} has fewer than two scheme landmarks")
        full_pts = prep.to_full(pts)
        side = crop_scale * hand_size(full_pts, pres) * context_factor
        crops = np.zeros((len(names), ctx, ctx), dtype=np.float16)
        crops[pres] = extract_crops(prep.full, full_pts[pres], side, ctx)[:, 0].numpy().astype(np.float16)
        for d, k in dims:
            targets[d].append(np.zeros((len(names), k), dtype=np.float32))
            masks[d].append(np.zeros(len(names), dtype=bool))
        for key, value in (s.get("targets") or {}).items():
            area = lookup.get(tuple(key) if isinstance(key, list) else key)
            if area is None or value is None:
                continue
            lm, d = area
            k = dict(dims)[d]
            targets[d][-1][index[lm]] = target_distribution(value, max_grade[area] + 1, k, label_smoothing)
            masks[d][-1][index[lm]] = pres[index[lm]]
        images.append(prep.net[0, 0].numpy().astype(np.float16))
        points.append(prep.to_net(pts).astype(np.float32))
        present.append(pres)
        contexts.append(crops)
        pids.append(str(s["patient_id"]))
        lats.append(s["laterality"])
        raw.append(s if keep_raw is not None and keep_raw(s) else None)
    if not images:
        raise ValueError("no samples")
    return HandDataset(
        scheme=scheme,
        input_size=(h, w),
        crop_size=crop_size,
        crop_scale=crop_scale,
        context_factor=context_factor,
        images=np.stack(images),
        points=np.stack(points),
        present=np.stack(present),
        contexts=np.stack(contexts),
        targets={d: np.stack(v) for d, v in targets.items()},
        target_mask={d: np.stack(v) for d, v in masks.items()},
        patient_ids=pids,
        lateralities=lats,
        raw=raw,
    )


# ---------------------------------------------------------------------------------------------
# Phantoms
# ---------------------------------------------------------------------------------------------


def phantom_sample(phantom: Any, patient_id: str) -> dict:
    """One `phantoms.Phantom` as a training/evaluation sample (boxes kept for the box criterion)."""
    return {
        "image": phantom.image,
        "laterality": phantom.laterality,
        "landmarks": {k: (float(x), float(y)) for k, (x, y) in phantom.landmarks.items()},
        "boxes": {k: tuple(float(c) for c in b) for k, b in phantom.boxes.items()},
        "patient_id": str(patient_id),
        "targets": {(lm, dim): int(g) for dim, grades in phantom.grades.items() for lm, g in grades.items()},
    }


def samples_from_phantoms(n_patients: int, seed: int = 0, config: Any = None) -> Iterator[dict]:
    """Both hands of `n_patients` phantom patients, generated lazily (about 2.6 MB per hand, so
    a caller that keeps only compact arrays never holds the whole set in memory)."""
    from . import phantoms  # imported here: the rest of the package does not need the generator

    for pid, ph in phantoms.generate_phantoms(2 * n_patients, seed, config):
        yield phantom_sample(ph, pid)
