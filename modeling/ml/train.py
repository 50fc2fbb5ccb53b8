"""Training the two-stage hand scorer (landmark heatmaps, then per-joint grades).

`main(cfg, samples, on_epoch)` decodes the samples once, splits them by patient, trains both
networks in the same epoch loop with early stopping per stage, evaluates the best weights end
to end on held-out patients and returns one checkpoint dict. Without samples it trains on
phantoms. From a shell:

    python -m modeling.ml.train --patients 200 --epochs 60 --device cuda --out model.pt
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from scoring import agreement

from . import metrics as M
from .data import (
    AugmentConfig,
    HandDataset,
    augment_crops,
    augment_landmark_batch,
    build_dataset,
    centre_crops,
    hand_size,
    load_scheme,
    patient_split,
    samples_from_phantoms,
    scheme_dimensions,
)
from .inference import CHECKPOINT_FORMAT, HandModel, build_model, predict_hand
from .networks import GradingNetConfig, LandmarkNetConfig, decode_logits, gaussian_heatmaps

DEFAULT_SCHEMES = Path(__file__).resolve().parents[2] / "annotation" / "data" / "schemes.json"


@dataclass
class TrainConfig:
    seed: int = 0
    device: str = "cpu"  # "cpu" | "cuda"
    # The scheme: given inline (as stored in a project), else read from a schemes.json file.
    scheme: dict | None = None
    scheme_key: str = "svdh"
    schemes_path: str = str(DEFAULT_SCHEMES)
    # Phantom data, used only when main() receives no samples.
    n_patients: int = 200
    phantom_seed: int = 0
    # Patient-level split (hash of seed and patient id, see data.patient_split).
    val_fraction: float = 0.1
    test_fraction: float = 0.15
    # Networks and crops. Crop side = crop_scale x hand size (median inter-landmark distance).
    landmark: LandmarkNetConfig = field(default_factory=LandmarkNetConfig)
    grading: GradingNetConfig = field(default_factory=GradingNetConfig)
    crop_scale: float = 0.3
    context_factor: float = 1.5  # stored crops are this much wider, so augmentation has margin
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    crop_augment: AugmentConfig = field(
        default_factory=lambda: AugmentConfig(rotation_deg=15.0, scale=0.1, shift=0.06)
    )
    # Optimisation.
    epochs: int = 60
    landmark_batch: int = 8
    grading_batch: int = 128
    landmark_lr: float = 2e-3
    grading_lr: float = 2e-3
    weight_decay: float = 1e-4
    heatmap_bce_weight: float = 5.0
    label_smoothing: float = 0.1
    class_balance: float = 0.75  # loss weight of grade k is frequency(k) ** -class_balance
    patience: int = 10  # epochs without a better validation loss before a stage stops
    tolerance: float = 0.1  # localisation hit: within tolerance x hand size (or inside the box)
    time_budget_s: float | None = None  # stop training (not evaluation) after this long
    num_threads: int | None = None
    out: str | None = None  # checkpoint path; main() returns the dict either way
    # CUDA only (a CPU run ignores both): batches this many times larger, learning rates scaled
    # by its square root (the usual rule for Adam), so a large GPU is not left mostly idle; and
    # torch.compile of both networks (minutes of compiling first, worth it on long runs).
    cuda_batch_scale: int = 8
    compile: bool = False
    # "joint": stage 2 trains in the same epoch loop as stage 1. "crops": stage 1 alone in the loop
    # (with `crops_landmark_share` of the time budget), then stage 2 by modeling.ml.crops' recipe on
    # the same cached crops (class-balanced sampling, early stopping on balanced accuracy on the
    # validation patients), which converges in minutes on a CPU where the joint loop's grader
    # stopped early on a noisy validation loss and suggested one grade everywhere.
    grader_recipe: str = "joint"
    crops_landmark_share: float = 0.7


def config_from_dict(d: dict) -> TrainConfig:
    """Inverse of dataclasses.asdict for TrainConfig, so a stored run can be repeated."""
    nested = {"landmark": LandmarkNetConfig, "grading": GradingNetConfig,
              "augment": AugmentConfig, "crop_augment": AugmentConfig}
    known = {f.name for f in fields(TrainConfig)}
    kwargs = {k: (nested[k](**v) if k in nested and isinstance(v, dict) else v) for k, v in d.items() if k in known}
    return TrainConfig(**kwargs)


# ---------------------------------------------------------------------------------------------
# Tensors on the training device
# ---------------------------------------------------------------------------------------------


@dataclass
class TensorData:
    images: torch.Tensor  # (N, h, w) float16
    points: torch.Tensor  # (N, L, 2) net pixels, NaN -> 0 where absent
    present: torch.Tensor  # (N, L) bool
    contexts: torch.Tensor  # (N, L, C, C) float16
    targets: dict[str, torch.Tensor]
    target_mask: dict[str, torch.Tensor]
    pairs: torch.Tensor  # (P, 2) (hand, landmark) with at least one graded area
    hand_sizes: torch.Tensor  # (N,) in net pixels


def to_tensors(data: HandDataset, device: torch.device) -> TensorData:
    any_mask = np.zeros(data.present.shape, dtype=bool)
    for m in data.target_mask.values():
        any_mask |= m
    sizes = [hand_size(p, pr) if pr.sum() >= 2 else 1.0 for p, pr in zip(data.points, data.present)]
    return TensorData(
        images=torch.from_numpy(data.images).to(device),
        points=torch.from_numpy(np.nan_to_num(data.points)).to(device),
        present=torch.from_numpy(data.present).to(device),
        contexts=torch.from_numpy(data.contexts).to(device),
        targets={k: torch.from_numpy(v).to(device) for k, v in data.targets.items()},
        target_mask={k: torch.from_numpy(v).to(device) for k, v in data.target_mask.items()},
        pairs=torch.from_numpy(np.argwhere(any_mask)).to(device),
        hand_sizes=torch.tensor(sizes, dtype=torch.float32, device=device),
    )


def class_balance_weights(data: HandDataset, power: float) -> dict[str, torch.Tensor]:
    """Per-grade loss weights from the training marginals, normalised to average 1 per label.

    The headline metric is balanced accuracy, and phantom and real grades are dominated by 0,
    so rare high grades get more weight; power 0 turns this off, 1 fully equalises classes.
    """
    out = {}
    for d, t in data.targets.items():
        m = data.target_mask[d]
        freq = t[m].sum(0).astype(np.float64) if m.any() else np.ones(t.shape[-1])
        freq = freq / max(freq.sum(), 1e-12)
        w = np.where(freq > 0, np.maximum(freq, 1e-3) ** -power, 0.0)
        w = w / max((freq * w).sum(), 1e-12)
        out[d] = torch.tensor(w, dtype=torch.float32)
    return out


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------


def heatmap_loss(logits: torch.Tensor, target: torch.Tensor, present: torch.Tensor, bce_weight: float) -> torch.Tensor:
    """Spatial cross-entropy (softmax over each map against the normalised Gaussian) plus a
    per-pixel sigmoid BCE against the unit-peak Gaussian.

    The cross-entropy gives a strong pull towards the right place from the first step, where
    plain MSE on a map that is 99 % background first learns to predict zeros; the BCE keeps
    sigmoid(logits) a calibrated heatmap whose peak height serves as the confidence.
    """
    z = logits.float().flatten(2)
    t = target.flatten(2)
    m = present.float()
    mass = t.sum(-1, keepdim=True)
    # A landmark pushed out of the frame by augmentation has no mass left: skip its CE term.
    has_mass = (mass[..., 0] > 1e-3).float() * m
    ce = -(t / mass.clamp_min(1e-6) * F.log_softmax(z, dim=-1)).sum(-1)
    bce = F.binary_cross_entropy_with_logits(z, t, reduction="none").mean(-1)
    return (ce * has_mass).sum() / has_mass.sum().clamp_min(1.0) + bce_weight * (bce * m).sum() / m.sum().clamp_min(1.0)


def grading_loss(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, class_weights: torch.Tensor
) -> torch.Tensor:
    """Soft-target cross-entropy (targets are locally smoothed grades or posteriors), class-weighted."""
    logp = F.log_softmax(logits.float(), dim=1)
    ce = -(target * logp).sum(1)
    w = (target @ class_weights.to(target.device)) * mask.float()
    return (w * ce).sum() / mask.float().sum().clamp_min(1.0)


# ---------------------------------------------------------------------------------------------
# One epoch
# ---------------------------------------------------------------------------------------------


def _autocast(device: torch.device):
    # bf16 needs no loss scaling; CPU stays float32 (CPU bf16 is slower on most machines).
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _memory_format(device: torch.device) -> torch.memory_format:
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


def train_one_epoch(
    model: HandModel,
    data: TensorData,
    optimizers: dict[str, torch.optim.Optimizer],
    cfg: TrainConfig,
    g: torch.Generator,
    lr_factor: Callable[[float], float],
    class_weights: dict[str, torch.Tensor],
    active: dict[str, bool],
) -> dict[str, float]:
    """One pass over the training hands for stage 1 and over their graded joints for stage 2.

    lr_factor(fraction of this epoch done) gives the learning-rate multiplier for each step.
    """
    device = data.images.device
    fmt = _memory_format(device)
    out: dict[str, float] = {}
    n = data.images.shape[0]

    if active["landmark"]:
        net, opt = model.landmark_net, optimizers["landmark"]
        net.train()
        stride, sigma = net.cfg.output_stride, net.cfg.sigma
        perm = torch.randperm(n, generator=g)
        bs = min(cfg.landmark_batch, n)
        total, steps, seen, t0 = torch.zeros((), dtype=torch.float64, device=device), 0, 0, time.perf_counter()
        for i in range(0, n - bs + 1, bs):
            for group in opt.param_groups:
                group["lr"] = cfg.landmark_lr * lr_factor(i / n)
            idx = perm[i : i + bs].to(device)
            img, pts = augment_landmark_batch(
                data.images[idx].float().unsqueeze(1), data.points[idx], cfg.augment, g
            )
            with _autocast(device):
                pred = net(img.contiguous(memory_format=fmt))
            target = gaussian_heatmaps((pts + 0.5) / stride - 0.5, data.present[idx], pred.shape[-2:], sigma)
            loss = heatmap_loss(pred, target, data.present[idx], cfg.heatmap_bce_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            # Summed on the device: .item() per step would wait for the GPU at every step.
            total, steps, seen = total + loss.detach().double(), steps + 1, seen + bs
        out["landmark_train_loss"] = total.item() / max(steps, 1)
        out["landmark_images_per_s"] = seen / max(time.perf_counter() - t0, 1e-9)

    if active["grading"] and len(data.pairs):
        net, opt = model.grading_net, optimizers["grading"]
        net.train()
        p = data.pairs.shape[0]
        perm = torch.randperm(p, generator=g)
        bs = min(cfg.grading_batch, p)
        total, steps, seen, t0 = torch.zeros((), dtype=torch.float64, device=device), 0, 0, time.perf_counter()
        for i in range(0, p - bs + 1, bs):
            for group in opt.param_groups:
                group["lr"] = cfg.grading_lr * lr_factor(i / p)
            hand, lm = data.pairs[perm[i : i + bs].to(device)].unbind(1)
            crops = augment_crops(
                data.contexts[hand, lm].float().unsqueeze(1), net.cfg.crop_size, cfg.crop_augment, g,
                cfg.context_factor,
            )
            with _autocast(device):
                logits = net(crops.contiguous(memory_format=fmt), lm)
            loss = sum(
                grading_loss(logits[d], data.targets[d][hand, lm], data.target_mask[d][hand, lm], class_weights[d])
                for d in logits
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, steps, seen = total + loss.detach().double(), steps + 1, seen + bs
        out["grading_train_loss"] = total.item() / max(steps, 1)
        out["grading_crops_per_s"] = seen / max(time.perf_counter() - t0, 1e-9)
    return out


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(
    model: HandModel, data: TensorData, cfg: TrainConfig, class_weights: dict[str, torch.Tensor]
) -> dict[str, float]:
    """Fast validation on the decoded arrays: stage 1 on net-size images, stage 2 on crops around
    the true landmarks (so each stage is judged on its own); see evaluate_hands for end to end."""
    model.eval()
    device = data.images.device
    fmt = _memory_format(device)
    out: dict[str, float] = {}
    net = model.landmark_net
    stride = net.cfg.output_stride
    losses, errors, hits, n = [], [], [], data.images.shape[0]
    for i in range(0, n, 16):
        sl = slice(i, i + 16)
        with _autocast(device):
            pred = net(data.images[sl].float().unsqueeze(1).contiguous(memory_format=fmt))
        pts, present = data.points[sl], data.present[sl]
        target = gaussian_heatmaps((pts + 0.5) / stride - 0.5, present, pred.shape[-2:], net.cfg.sigma)
        losses.append(float(heatmap_loss(pred, target, present, cfg.heatmap_bce_weight)) * len(pts))
        found, _ = decode_logits(pred)
        err = torch.linalg.norm((found + 0.5) * stride - 0.5 - pts, dim=-1)
        errors.append(err[present])
        hits.append((err <= cfg.tolerance * data.hand_sizes[sl, None])[present])
    out["landmark_val_loss"] = sum(losses) / max(n, 1)
    # NaN, not a crash, when no hand here has a known landmark (or, below, a graded area).
    out["point_error_net_px"] = float(torch.cat(errors).mean()) if errors else math.nan
    out["localisation_accuracy_net"] = float(torch.cat(hits).float().mean()) if hits else math.nan

    gnet = model.grading_net
    dims = [d for d, _ in gnet.cfg.dimensions]
    total, truth, preds = 0.0, {d: [] for d in dims}, {d: [] for d in dims}
    p = data.pairs.shape[0]
    for i in range(0, p, 256):
        hand, lm = data.pairs[i : i + 256].unbind(1)
        crops = centre_crops(data.contexts[hand, lm].float().unsqueeze(1), gnet.cfg.crop_size, cfg.context_factor)
        with _autocast(device):
            logits = gnet(crops.contiguous(memory_format=fmt), lm)
        for d in dims:
            t, m = data.targets[d][hand, lm], data.target_mask[d][hand, lm]
            total += float(grading_loss(logits[d], t, m, class_weights[d])) * len(hand)
            truth[d].append(t.argmax(1)[m].cpu())
            preds[d].append(logits[d].argmax(1)[m].cpu())
    out["grading_val_loss"] = total / max(p, 1)
    for d in dims:
        if not truth[d] or not sum(len(t) for t in truth[d]):
            out[f"{d}_weighted_accuracy"] = out[f"{d}_within_one"] = math.nan
            continue
        t, q = torch.cat(truth[d]).numpy(), torch.cat(preds[d]).numpy()
        out[f"{d}_weighted_accuracy"] = agreement.weighted_accuracy(t, q)
        out[f"{d}_within_one"] = agreement.within_one_accuracy(t, q)
    return out


def _true_label(value: Any) -> int:
    return int(value) if np.ndim(value) == 0 else int(np.argmax(value))


def evaluate_hands(model: HandModel, samples: Iterable[dict], tolerance: float = 0.1) -> dict[str, Any]:
    """End-to-end metrics on full images: predicted landmarks, then grades from crops cut around
    the predicted (not the true) landmarks, against each sample's targets.

    Localisation: `localisation_accuracy` counts a hit within tolerance x hand size of the true
    point; when samples carry "boxes" ({name: (x0, y0, x1, y1)}), `localisation_accuracy_box`
    counts a hit inside the joint box.
    """
    scheme = model.scheme
    names = scheme["landmarks"]
    dims = scheme_dimensions(scheme)
    area_key = {a["code"]: (a["landmark"], a["dimension"]) for a in scheme["areas"]}
    pred_pts, true_pts, sizes, boxes, seconds = [], [], [], [], []
    truth = {d: [] for d, _ in dims}
    guess = {d: [] for d, _ in dims}
    totals_true = {d: [] for d, _ in dims}
    totals_pred = {d: [] for d, _ in dims}
    any_boxes = False
    for s in samples:
        t0 = time.perf_counter()
        pred = predict_hand(model, s["image"], s["laterality"])
        seconds.append(time.perf_counter() - t0)
        tp = np.array([s["landmarks"].get(n, (np.nan, np.nan)) for n in names], dtype=np.float64)
        present = ~np.isnan(tp).any(1)
        pred_pts.append(np.array([pred.landmarks[n][:2] for n in names]))
        true_pts.append(tp)
        sizes.append(hand_size(tp, present))
        b = s.get("boxes") or {}
        any_boxes |= bool(b)
        boxes.append(np.array([b.get(n, (np.nan,) * 4) for n in names], dtype=np.float64))
        targets = {}
        for k, v in (s.get("targets") or {}).items():
            key = area_key.get(k, tuple(k) if not isinstance(k, str) else None)
            if key is not None and v is not None:
                targets[key] = _true_label(v)
        tot_t = {d: 0 for d, _ in dims}
        tot_p = {d: 0 for d, _ in dims}
        for a in pred.areas:
            key = (a["landmark"], a["dimension"])
            if key in targets:
                truth[key[1]].append(targets[key])
                guess[key[1]].append(a["label"])
                tot_t[key[1]] += targets[key]
                tot_p[key[1]] += a["label"]
        for d, _ in dims:
            totals_true[d].append(tot_t[d])
            totals_pred[d].append(tot_p[d])
    if not pred_pts:
        return {"hands": 0}
    P, T, B = np.stack(pred_pts), np.stack(true_pts), np.stack(boxes)
    present = ~np.isnan(T).any(-1)
    hits = M.localisation_hits(P, T, np.array(sizes), tolerance)
    err = M.point_errors(P, T)
    out: dict[str, Any] = {
        "hands": len(P),
        "tolerance": tolerance,
        "localisation_accuracy": float(hits[present].mean()),
        "mean_point_error_px": float(err[present].mean()),
        "mean_point_error_rel": float((err / np.array(sizes)[:, None])[present].mean()),
        "seconds_per_hand": float(np.mean(seconds)),
    }
    if any_boxes:
        out["localisation_accuracy_box"] = float(M.localisation_hits(P, T, None, boxes=B)[present].mean())
    all_true = np.zeros(len(P))
    all_pred = np.zeros(len(P))
    for d, k in dims:
        out[d] = agreement.grade_report(np.array(truth[d], int), np.array(guess[d], int), k)
        out[d]["total_mae"] = M.total_score_mae(totals_true[d], totals_pred[d])
        all_true += totals_true[d]
        all_pred += totals_pred[d]
    out["total_mae"] = M.total_score_mae(all_true, all_pred)
    return out


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------


def save_checkpoint(ckpt: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)  # a crash mid-write never leaves a truncated checkpoint behind


def load_checkpoint(path: str | Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def checkpoint_to_bytes(ckpt: dict) -> bytes:
    """The checkpoint as a file's bytes, for storage that is not a local path (Django's media)."""
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    return buffer.getvalue()


def checkpoint_from_bytes(data: bytes) -> dict:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def make_checkpoint(model: HandModel, cfg: TrainConfig, metrics: dict, split: dict[str, list[str]],
                    history: list[dict]) -> dict:
    config = asdict(cfg)
    # The model's own configs hold what the scheme filled in (landmark count, heads, masks).
    config["landmark"] = asdict(model.landmark_net.cfg)
    config["grading"] = asdict(model.grading_net.cfg)
    config["crop_scale"] = model.crop_scale
    return {
        "format": CHECKPOINT_FORMAT,
        "model": {
            "landmark": {k: v.detach().cpu().clone() for k, v in model.landmark_net.state_dict().items()},
            "grading": {k: v.detach().cpu().clone() for k, v in model.grading_net.state_dict().items()},
        },
        "config": config,
        "scheme": model.scheme,
        "metrics": metrics,
        "history": history,
        "split": split,
        "torch_version": str(torch.__version__),
    }


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def main(
    cfg: TrainConfig,
    samples: Iterable[dict] | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train both stages and return the checkpoint dict (also written to cfg.out when set).

    `on_epoch(epoch, log)` runs after every epoch; an exception it raises stops the training there
    and propagates, which is how a caller cancels a run between epochs.
    """
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    stored_cfg, cfg = cfg, device_config(cfg)  # the checkpoint keeps the config as given
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    scheme = cfg.scheme or load_scheme(cfg.schemes_path, cfg.scheme_key)

    def split_of(patient_id: str) -> str:
        return patient_split(str(patient_id), cfg.seed, cfg.val_fraction, cfg.test_fraction)

    t_data = time.monotonic()
    data = build_dataset(
        samples_from_phantoms(cfg.n_patients, cfg.phantom_seed) if samples is None else samples,
        scheme,
        cfg.landmark.input_size,
        cfg.grading.crop_size,
        cfg.crop_scale,
        cfg.context_factor,
        cfg.label_smoothing,
        keep_raw=lambda s: split_of(s["patient_id"]) != "train",
    )
    splits = np.array([split_of(p) for p in data.patient_ids])
    # A young project has few graded hands: a held-out part without any trains instead (it could
    # neither stop training early nor be scored), and so does everything when the training part
    # has none. The metrics then say there are no held-out figures, and promotion by comparison
    # waits for a person.
    graded = np.any(np.stack([m.any(axis=1) for m in data.target_mask.values()]), axis=0) if len(splits) else splits
    for part in ("val", "test"):
        if not graded[splits == part].any():
            splits[splits == part] = "train"
    if not graded[splits == "train"].any():
        splits[:] = "train"
    train = data.subset(np.flatnonzero(splits == "train"))
    val = data.subset(np.flatnonzero(splits == "val"))
    test = data.subset(np.flatnonzero(splits == "test"))
    if len(train) == 0:
        raise ValueError("no training hands after the patient split")
    # With very few patients there may be no validation hands; then early stopping watches the
    # training hands (without augmentation) and the metrics say so.
    monitor = val if len(val) else train
    data_seconds = time.monotonic() - t_data

    model = build_model(scheme, cfg.landmark, cfg.grading, cfg.crop_scale).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        if cfg.compile:
            # In place, so parameter names (and the checkpoint's state dicts) stay unchanged.
            model.landmark_net.compile()
            model.grading_net.compile()
    optimizers = {
        "landmark": torch.optim.AdamW(model.landmark_net.parameters(), lr=cfg.landmark_lr, weight_decay=cfg.weight_decay),
        "grading": torch.optim.AdamW(model.grading_net.parameters(), lr=cfg.grading_lr, weight_decay=cfg.weight_decay),
    }
    weights = class_balance_weights(train, cfg.class_balance)
    train_t, monitor_t = to_tensors(train, device), to_tensors(monitor, device)

    crops_recipe = cfg.grader_recipe == "crops"
    if cfg.grader_recipe not in ("joint", "crops"):
        raise ValueError(f"grader_recipe must be 'joint' or 'crops', not {cfg.grader_recipe!r}")
    landmark_budget = cfg.time_budget_s * cfg.crops_landmark_share if crops_recipe and cfg.time_budget_s else cfg.time_budget_s
    active = {"landmark": True, "grading": not crops_recipe}
    best = {"landmark": math.inf, "grading": math.inf}
    best_state = {"landmark": copy.deepcopy(model.landmark_net.state_dict()),
                  "grading": copy.deepcopy(model.grading_net.state_dict())}
    best_epoch = {"landmark": 0, "grading": 0}
    waited = {"landmark": 0, "grading": 0}
    history: list[dict] = []
    t_start = time.monotonic()

    for epoch in range(1, cfg.epochs + 1):

        def lr_factor(frac: float, epoch: int = epoch) -> float:
            # Cosine decay over whichever budget runs out first, epochs or wall time, so a
            # time-bounded run still ends on a small learning rate. Short linear warm-up.
            progress = (epoch - 1 + frac) / cfg.epochs
            if landmark_budget:
                progress = max(progress, (time.monotonic() - t_start) / landmark_budget)
            warm = min(1.0, (epoch - 1 + frac) / 2.0 + 0.05)
            return warm * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))

        t0 = time.monotonic()
        log: dict[str, Any] = {"epoch": epoch, "monitor": "val" if len(val) else "train"}
        log.update(train_one_epoch(model, train_t, optimizers, cfg, g, lr_factor, weights, active))
        log.update(evaluate(model, monitor_t, cfg, weights))
        for stage, key in (("landmark", "landmark_val_loss"), ("grading", "grading_val_loss")):
            if not active[stage]:
                continue
            if log[key] < best[stage]:
                best[stage], best_epoch[stage], waited[stage] = log[key], epoch, 0
                net = model.landmark_net if stage == "landmark" else model.grading_net
                best_state[stage] = copy.deepcopy(net.state_dict())
            else:
                waited[stage] += 1
                active[stage] = waited[stage] < cfg.patience
        log["seconds"] = time.monotonic() - t0
        log["active"] = dict(active)
        history.append(log)
        if on_epoch is not None:
            on_epoch(epoch, log)
        out_of_time = landmark_budget is not None and time.monotonic() - t_start >= landmark_budget
        if out_of_time or not any(active.values()):
            break

    model.landmark_net.load_state_dict(best_state["landmark"])
    model.grading_net.load_state_dict(best_state["grading"])
    grader_report = None
    if crops_recipe:
        # The recipe's own grader (crop size, widths and hidden units of `grading`, the rest at
        # their defaults) replaces the untrained one; the checkpoint stores its config.
        model.grading_net, grader_report = _crops_grader(cfg, train, monitor, scheme, history, on_epoch, t_start)
        model.grading_net.to(device)
        best_epoch["grading"] = grader_report["best_epoch"]
    model.eval()
    metrics: dict[str, Any] = {
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "train_seconds": time.monotonic() - t_start,
        "data_seconds": data_seconds,
        "monitor": "val" if len(val) else "train",
        "class_weights": {d: w.tolist() for d, w in weights.items()},
        "hands": {"train": len(train), "val": len(val), "test": len(test)},
        "held_out": bool(len(val) or len(test)),
    }
    if grader_report is not None:
        metrics["grader"] = {"recipe": "crops", **grader_report}
    for name, part in (("val", val), ("test", test)):
        raw = [r for r in part.raw if r is not None]
        if raw:
            metrics[name] = evaluate_hands(model, raw, cfg.tolerance)
    split = {k: sorted(set(part.patient_ids)) for k, part in (("train", train), ("val", val), ("test", test))}
    ckpt = make_checkpoint(model.cpu(), stored_cfg, metrics, split, history)
    if cfg.out:
        save_checkpoint(ckpt, cfg.out)
    return ckpt


def _crops_grader(cfg: TrainConfig, train: HandDataset, monitor: HandDataset, scheme: dict, history: list[dict],
                  on_epoch: Callable[[int, dict], None] | None, t_start: float) -> tuple[torch.nn.Module, dict]:
    """Stage 2 by modeling.ml.crops' recipe on the training hands' cached crops (cut at their
    landmarks, as the joint loop's), early-stopped on the hands stage 1 is monitored on (the
    validation patients, or the training hands when there are none), within what is left of the
    time budget, on the CPU. Each of its epochs is logged and reported through `on_epoch` after
    stage 1's, so progress and cancellation work as in the joint loop. Returns the best network and
    the recipe's report (learning curve, best epoch)."""
    from .crops import CropRecipe, train_grader  # crops imports this module

    recipe = CropRecipe(
        crop_size=cfg.grading.crop_size, crop_scale=cfg.crop_scale, context_factor=cfg.context_factor,
        widths=tuple(cfg.grading.widths), hidden=cfg.grading.hidden, max_epochs=cfg.epochs, batch=cfg.grading_batch,
        lr=cfg.grading_lr, weight_decay=cfg.weight_decay, balance=cfg.class_balance, seed=cfg.seed, augment=cfg.crop_augment,
        # A part with few areas per film (a foot has 6, a hand 16) would otherwise get epochs of a
        # few batches, and early stopping would end it near chance (measured on feet: 3 batches).
        min_steps=12,
    )

    def log(point: dict) -> None:
        row = {"epoch": len(history) + 1, "stage": "grading", "grading_epoch": point["epoch"],
               "grading_train_loss": point["train_loss"], "grading_held_out_balanced_accuracy": point["held_out_balanced_accuracy"],
               "seconds": point["seconds"] - sum(r["seconds"] for r in history if r.get("stage") == "grading")}
        history.append(row)
        if on_epoch is not None:
            on_epoch(row["epoch"], row)

    left = None if cfg.time_budget_s is None else max(cfg.time_budget_s - (time.monotonic() - t_start), 1.0)
    net, report = train_grader(train, scheme, recipe, log=log, time_budget_s=left, held_out=monitor)
    return net, report


def device_config(cfg: TrainConfig) -> TrainConfig:
    """The config a run trains with: on CUDA, batches `cuda_batch_scale` times larger and learning
    rates scaled by its square root; on CPU the config unchanged, so CPU results stay as they were."""
    scale = max(int(cfg.cuda_batch_scale), 1)
    if cfg.device != "cuda" or scale == 1:
        return cfg
    root = math.sqrt(scale)
    return replace(
        cfg, landmark_batch=cfg.landmark_batch * scale, grading_batch=cfg.grading_batch * scale,
        landmark_lr=cfg.landmark_lr * root, grading_lr=cfg.grading_lr * root,
    )  # fmt: skip


def _parse_args(argv: list[str] | None = None) -> TrainConfig:
    p = argparse.ArgumentParser(description="Train the two-stage hand scorer on phantoms.")
    p.add_argument("--patients", type=int, default=200)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--scheme", default="svdh")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-budget", type=float, default=None, help="seconds of training")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--compile", action="store_true", help="torch.compile both networks (CUDA only)")
    a = p.parse_args(argv)
    return TrainConfig(n_patients=a.patients, epochs=a.epochs, device=a.device, scheme_key=a.scheme,
                       seed=a.seed, time_budget_s=a.time_budget, num_threads=a.threads, out=a.out, compile=a.compile)


if __name__ == "__main__":
    ckpt = main(_parse_args(), on_epoch=lambda e, m: print(json.dumps({"epoch": e, **{k: v for k, v in m.items() if k != "epoch"}}), flush=True))
    print(json.dumps({k: v for k, v in ckpt["metrics"].items()}, indent=1, default=str))
