"""Running the two-stage hand scorer on one radiograph: landmarks with confidences, then
a grade distribution for every scored area of the scheme.

    model = load_model("model.pt")
    pred = predict_hand(model, image, "L")
    pred.landmarks["mcp2"]   # (x, y, confidence) in original pixels
    pred.areas[0]            # {"code", "landmark", "dimension", "distribution", "label", "expected"}

On a CPU shared with other processes, run inference with torch.set_num_threads(1): on a busy
2-core machine one thread took about 0.04 s per 1280 x 1024 hand, two threads 0.3 to 1.4 s,
because intra-op threads wait on each other whenever a core is taken away.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .data import (
    PreparedHand,
    Scheme,
    extract_crops,
    hand_size,
    prepare_image,
    scheme_class_mask,
    scheme_dimensions,
    scheme_side_sums,
)
from .networks import GradingNet, GradingNetConfig, LandmarkNet, LandmarkNetConfig, decode_logits

CHECKPOINT_FORMAT = "ra-hand-two-stage/1"


class HandModel(nn.Module):
    """Both networks plus the scheme that gives their outputs meaning."""

    def __init__(self, scheme: Scheme, landmark_cfg: LandmarkNetConfig, grading_cfg: GradingNetConfig,
                 crop_scale: float) -> None:
        super().__init__()
        self.scheme = scheme
        self.crop_scale = crop_scale
        self.landmark_net = LandmarkNet(landmark_cfg)
        self.grading_net = GradingNet(grading_cfg)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def build_model(
    scheme: Scheme,
    landmark_cfg: LandmarkNetConfig | None = None,
    grading_cfg: GradingNetConfig | None = None,
    crop_scale: float = 0.3,
) -> HandModel:
    """A fresh model whose outputs (landmarks, heads, allowed grades) follow the scheme."""
    n = len(scheme["landmarks"])
    lcfg = LandmarkNetConfig(**{**asdict(landmark_cfg or LandmarkNetConfig()), "n_landmarks": n})
    gcfg = GradingNetConfig(
        **{
            **asdict(grading_cfg or GradingNetConfig()),
            "n_landmarks": n,
            "dimensions": tuple(scheme_dimensions(scheme)),
            "class_mask": scheme_class_mask(scheme),
            "side_sum": scheme_side_sums(scheme),
        }
    )
    return HandModel(scheme, lcfg, gcfg, crop_scale)


def model_from_checkpoint(ckpt: dict, device: str | torch.device = "cpu") -> HandModel:
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"not a hand-scorer checkpoint (format {ckpt.get('format')!r})")
    cfg = ckpt["config"]
    model = HandModel(
        ckpt["scheme"],
        LandmarkNetConfig(**cfg["landmark"]),
        GradingNetConfig(**cfg["grading"]),
        float(cfg["crop_scale"]),
    )
    model.landmark_net.load_state_dict(ckpt["model"]["landmark"])
    model.grading_net.load_state_dict(ckpt["model"]["grading"])
    return model.to(device).eval()


def use_threads(n: int) -> None:
    """Limit torch's intra-op threads; one thread per inference process was several times faster
    than two on a small CPU."""
    torch.set_num_threads(n)


def load_model(source: str | Path | dict, device: str | torch.device = "cpu") -> HandModel:
    """A model ready for inference from a checkpoint path or an already loaded checkpoint dict."""
    ckpt = source if isinstance(source, dict) else torch.load(source, map_location="cpu", weights_only=True)
    return model_from_checkpoint(ckpt, device)


@dataclass
class HandPrediction:
    laterality: str
    landmarks: dict[str, tuple[float, float, float]]  # name -> (x, y, confidence), original pixels
    areas: list[dict[str, Any]]
    hand_size: float  # pixels, from the landmarks the crops were cut around
    crop_side: float  # pixels of the original image covered by each crop
    extra: dict[str, Any] = field(default_factory=dict)

    def distributions(self) -> dict[tuple[str, str], np.ndarray]:
        return {(a["landmark"], a["dimension"]): np.asarray(a["distribution"]) for a in self.areas}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for storing suggestions."""
        return {
            "laterality": self.laterality,
            "landmarks": {k: {"x": v[0], "y": v[1], "confidence": v[2]} for k, v in self.landmarks.items()},
            "areas": self.areas,
            "hand_size": self.hand_size,
            "crop_side": self.crop_side,
        }


def locate(model: HandModel, prep: PreparedHand) -> tuple[np.ndarray, np.ndarray]:
    """Stage 1 on a prepared hand -> (L, 2) points in the original frame and (L,) confidences."""
    net = model.landmark_net
    x = prep.net.to(model.device)
    pts, conf = decode_logits(net(x))
    stride = net.cfg.output_stride
    pts_net = (pts[0].double().cpu().numpy() + 0.5) * stride - 0.5
    return prep.from_net(pts_net), conf[0].float().cpu().numpy()


def joint_crops(model: HandModel, prep: PreparedHand, points: np.ndarray) -> tuple[torch.Tensor, float, float]:
    """Stage-2 inputs: one crop per landmark around original-frame `points`, sized by the hand."""
    size = hand_size(points)
    side = model.crop_scale * size
    crops = extract_crops(prep.full, prep.to_full(points), side, model.grading_net.cfg.crop_size)
    return crops, size, side


@torch.inference_mode()
def predict_hand(
    model: HandModel,
    image: np.ndarray,
    laterality: str,
    landmarks: dict[str, tuple[float, float]] | None = None,
) -> HandPrediction:
    """Localise and grade one hand.

    `landmarks`, when given (e.g. after a reader moved a point), replace the stage-1 points for
    the named joints before cropping; their confidence is reported as 1.
    """
    model.eval()
    names = model.scheme["landmarks"]
    prep = prepare_image(image, laterality, model.landmark_net.cfg.input_size)
    points, conf = locate(model, prep)
    if landmarks:
        for i, name in enumerate(names):
            if name in landmarks:
                points[i] = landmarks[name]
                conf[i] = 1.0
    crops, size, side = joint_crops(model, prep, points)
    idx = torch.arange(len(names), device=model.device)
    logits = model.grading_net(crops.to(model.device), idx)
    probs = {d: torch.softmax(v.float(), dim=1).cpu().numpy() for d, v in logits.items()}
    index = {n: i for i, n in enumerate(names)}
    areas = []
    for a in model.scheme["areas"]:
        p = probs[a["dimension"]][index[a["landmark"]], : a["max_grade"] + 1].astype(np.float64)
        p = p / p.sum()
        areas.append(
            {
                "code": a["code"],
                "landmark": a["landmark"],
                "dimension": a["dimension"],
                "distribution": [float(v) for v in p],
                "label": int(np.argmax(p)),
                "expected": float(np.dot(np.arange(len(p)), p)),
            }
        )
    return HandPrediction(
        laterality=laterality,
        landmarks={n: (float(points[i, 0]), float(points[i, 1]), float(conf[i])) for i, n in enumerate(names)},
        areas=areas,
        hand_size=size,
        crop_side=side,
    )

