"""A CPU recipe that trains the per-joint grader (stage 2) to convergence in minutes.

The full two-stage training (`train.main`) spends most of a CPU's time on the landmark network
and on full-resolution films; at benchmark size on one shared core it stops at its time budget
after a handful of epochs, long before the grader converges. The benchmark's question (what do
the training labels buy the grader?) needs the grader converged, so this recipe:

- cuts every joint crop once (`build_dataset`'s context crops, at a smaller crop size) and trains
  on those cached arrays only;
- places crops at the phantom's landmark positions. Landmarks are geometry, not grades: every row
  of training labels gets the same crops, and only the targets differ; nothing about a grade
  leaks through a crop's position. Localisation is stage 1's job and is measured apart;
- draws each epoch's joints with class-balanced sampling (by the rarer of the joint's erosion and
  JSN label), so the rare high grades are seen as often as the common ones;
- stops early on a held-out part of the *training* patients, scored against the same kind of
  labels it trains on (the readers' fusion for a reader row), never against the truth;
- keeps the whole learning curve, so a reader of the figures can check that it flattened.

numpy and torch only, like the rest of `modeling.ml`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from scoring import agreement

from .data import AugmentConfig, HandDataset, augment_crops, build_dataset, centre_crops, patient_split, scheme_class_mask, scheme_dimensions, scheme_side_sums, target_distribution
from .networks import GradingNet, GradingNetConfig, LandmarkNetConfig
from .train import grading_loss


@dataclass
class CropRecipe:
    """How the grader is trained on cached crops. Defaults fit one CPU core in a few minutes."""

    crop_size: int = 48
    crop_scale: float = 0.3  # crop side = crop_scale x hand size, as the full training
    context_factor: float = 1.5
    widths: tuple[int, ...] = (16, 32, 64)
    hidden: int = 64
    max_epochs: int = 60
    patience: int = 8  # epochs without a better held-out score before stopping
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    # Sampling weight of a joint = frequency(label) ** -balance; 0.75 as the full training's class
    # weights. On a 10-patient check 0.5 with few steps collapsed to grade 0; not tuned beyond that.
    balance: float = 0.75
    label_smoothing: float = 0.1
    val_fraction: float = 0.2  # of the training patients, held out for early stopping
    # Batches per epoch at least: a foot has 6 graded joints to a hand's 22, so at the same number
    # of patients a foot epoch is 3 batches and early stopping ends training after a few dozen steps.
    min_steps: int = 0
    seed: int = 0
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(rotation_deg=15.0, scale=0.1, shift=0.06))


def crop_dataset(samples: Sequence[dict], scheme: dict, recipe: CropRecipe) -> HandDataset:
    """Crops around every landmark of every hand, cut once; targets as the samples give them."""
    # The net-size image only sets the intensity window (as at inference); its pixels are unused.
    return build_dataset(
        samples, scheme, tuple(LandmarkNetConfig.input_size), recipe.crop_size, recipe.crop_scale, recipe.context_factor, recipe.label_smoothing
    )


def with_targets(data: HandDataset, targets: Sequence[dict], scheme: dict, smoothing: float) -> HandDataset:
    """The same crops with other targets ({(landmark, dimension): grade or distribution} per hand)."""
    out = copy.copy(data)
    index = {n: i for i, n in enumerate(scheme["landmarks"])}
    max_grade = {(a["landmark"], a["dimension"]): a["max_grade"] for a in scheme["areas"]}
    out.targets, out.target_mask = {}, {}
    for d, k in scheme_dimensions(scheme):
        t = np.zeros((len(data), len(index), k), dtype=np.float32)
        m = np.zeros((len(data), len(index)), dtype=bool)
        for h, hand in enumerate(targets):
            for (lm, dim), value in hand.items():
                # Areas the scheme does not score (the phantom grades every joint) are left out.
                if dim == d and lm in index and (lm, dim) in max_grade:
                    t[h, index[lm]] = target_distribution(value, max_grade[(lm, dim)] + 1, k, smoothing)
                    m[h, index[lm]] = data.present[h, index[lm]]
        out.targets[d], out.target_mask[d] = t, m
    return out


def _pairs(data: HandDataset) -> np.ndarray:
    any_mask = np.zeros(data.present.shape, dtype=bool)
    for m in data.target_mask.values():
        any_mask |= m
    return np.argwhere(any_mask)


def _sampling_weights(data: HandDataset, pairs: np.ndarray, balance: float) -> np.ndarray:
    """Per joint: the larger of its erosion and JSN label's inverse frequency, to the `balance`."""
    w = np.ones(len(pairs))
    for d, t in data.targets.items():
        m = data.target_mask[d][pairs[:, 0], pairs[:, 1]]
        label = t[pairs[:, 0], pairs[:, 1]].argmax(1)
        freq = np.bincount(label[m], minlength=t.shape[-1]).astype(float)
        freq = freq / max(freq.sum(), 1.0)
        wd = np.where(m, np.maximum(freq[label], 1e-3) ** -balance, 0.0)
        w = np.maximum(w, wd)
    return w / w.sum()


def build_grader(scheme: dict, recipe: CropRecipe) -> GradingNet:
    return GradingNet(GradingNetConfig(
        n_landmarks=len(scheme["landmarks"]), crop_size=recipe.crop_size, widths=tuple(recipe.widths),
        hidden=recipe.hidden, dimensions=tuple(scheme_dimensions(scheme)), class_mask=scheme_class_mask(scheme),
        side_sum=scheme_side_sums(scheme),
    ))


@torch.no_grad()
def predict_crops(net: GradingNet, data: HandDataset, recipe: CropRecipe) -> dict[str, np.ndarray]:
    """Grade distributions of every landmark of every hand: {dimension: (hands, landmarks, K)}."""
    net.eval()
    n, n_lm = data.present.shape
    pairs = np.argwhere(data.present)
    out = {d: np.zeros((n, n_lm, k), dtype=np.float32) for d, k in net.cfg.dimensions}
    for i in range(0, len(pairs), 512):
        hand, lm = torch.from_numpy(pairs[i : i + 512]).unbind(1)
        ctx = torch.from_numpy(data.contexts[hand.numpy(), lm.numpy()]).float().unsqueeze(1)
        logits = net(centre_crops(ctx, recipe.crop_size, recipe.context_factor), lm)
        for d, k in net.cfg.dimensions:
            out[d][hand.numpy(), lm.numpy()] = torch.softmax(logits[d][:, :k], 1).numpy()
    return out


def held_out_score(net: GradingNet, data: HandDataset, recipe: CropRecipe) -> float:
    """Mean over dimensions of balanced accuracy against the data's own labels (argmax)."""
    probs = predict_crops(net, data, recipe)
    scores = []
    for d, p in probs.items():
        m = data.target_mask[d]
        if m.any():
            scores.append(agreement.weighted_accuracy(data.targets[d].argmax(-1)[m], p.argmax(-1)[m]))
    return float(np.mean(scores)) if scores else math.nan


def train_grader(data: HandDataset, scheme: dict, recipe: CropRecipe, log=None, build=None,
                 time_budget_s: float | None = None, held_out: HandDataset | None = None) -> tuple[GradingNet, dict]:
    """Train on `data`'s crops and targets; early-stop on a held-out share of its patients, or on
    `held_out` when given (then every hand of `data` trains), and after the epoch that ends
    `time_budget_s`, when given.

    Returns the best network (by held-out balanced accuracy against the training labels) and a
    report holding the learning curve, the best epoch and the epochs run. `build(scheme, recipe)`
    makes another network than `build_grader`'s (a head variant under measurement).
    """
    torch.manual_seed(recipe.seed)
    g = torch.Generator().manual_seed(recipe.seed)
    if held_out is not None:
        train, val = data, held_out
    else:
        split = np.array([patient_split(p, recipe.seed, recipe.val_fraction, 0.0) for p in data.patient_ids])
        train, val = data.subset(np.flatnonzero(split == "train")), data.subset(np.flatnonzero(split == "val"))
    if len(val) == 0:
        raise ValueError("no held-out training patients for early stopping; add patients or raise val_fraction")
    net = (build or build_grader)(scheme, recipe)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    pairs = _pairs(train)
    weights = torch.from_numpy(_sampling_weights(train, pairs, recipe.balance))
    flat = {d: torch.ones(k) for d, k in scheme_dimensions(scheme)}  # the sampler balances already
    contexts = torch.from_numpy(train.contexts)
    targets = {d: torch.from_numpy(v) for d, v in train.targets.items()}
    masks = {d: torch.from_numpy(v) for d, v in train.target_mask.items()}
    steps = max(1, recipe.min_steps, len(pairs) // recipe.batch)
    total_steps = steps * recipe.max_epochs
    best, best_epoch, best_state, waited, curve = -1.0, 0, copy.deepcopy(net.state_dict()), 0, []
    t0 = time.monotonic()
    for epoch in range(1, recipe.max_epochs + 1):
        net.train()
        draw = torch.multinomial(weights, steps * recipe.batch, replacement=True, generator=g)
        running = 0.0
        for s in range(steps):
            step = (epoch - 1) * steps + s
            for group in opt.param_groups:
                group["lr"] = recipe.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / total_steps)))
            idx = pairs[draw[s * recipe.batch : (s + 1) * recipe.batch].numpy()]
            hand, lm = torch.from_numpy(idx).unbind(1)
            crops = augment_crops(contexts[hand, lm].float().unsqueeze(1), recipe.crop_size, recipe.augment, g, recipe.context_factor)
            logits = net(crops, lm)
            loss = sum(grading_loss(logits[d], targets[d][hand, lm], masks[d][hand, lm], flat[d]) for d in logits)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.item()
        score = held_out_score(net, val, recipe)
        point = {"epoch": epoch, "train_loss": running / steps, "held_out_balanced_accuracy": score,
                 "seconds": round(time.monotonic() - t0, 1)}
        curve.append(point)
        if log is not None:
            log(point)
        if score > best:
            best, best_epoch, best_state, waited = score, epoch, copy.deepcopy(net.state_dict()), 0
        else:
            waited += 1
            if waited >= recipe.patience:
                break
        if time_budget_s is not None and time.monotonic() - t0 >= time_budget_s:
            break
    net.load_state_dict(best_state)
    net.eval()
    return net, {
        "best_epoch": best_epoch, "epochs_run": len(curve), "held_out_best": best, "curve": curve,
        "train_hands": len(train), "held_out_hands": len(val), "train_joints": int(len(pairs)),
        "seconds": round(time.monotonic() - t0, 1), "stopped_early": len(curve) < recipe.max_epochs,
    }


def grades_by_dimension(probs: dict[str, np.ndarray], scheme: dict) -> dict[str, np.ndarray]:
    """{dimension: (hands, landmarks, K)} -> {dimension: (hands, areas)} in the scheme's area order."""
    index = {n: i for i, n in enumerate(scheme["landmarks"])}
    out = {}
    for d, _ in scheme_dimensions(scheme):
        cols = [index[a["landmark"]] for a in scheme["areas"] if a["dimension"] == d]
        out[d] = probs[d][:, cols].argmax(-1).astype(np.int64)
    return out
