"""Training and inference throughput of the two-stage model on one device, for sizing the GPU queue.

Prints one JSON object per figure:

- ``landmark_train``: stage-1 training steps (augmentation, forward, backward, AdamW) on random
  net-size images, in images/s;
- ``grading_train``: stage-2 training steps on random joint crops, in crops/s;
- ``retrain``: `train.main` end to end on phantom hands (decode, split, both stages, evaluation),
  in seconds, with the hands and epochs it ran;
- ``inference``: both networks on batches of prepared hands (net-size image, then one crop per
  landmark), in hands/s.

Batches and learning rates are those `train.device_config` gives the device, so a CUDA run
measures the batches a CUDA retrain uses. Compute only for the two training figures (data already
on the device), as the reference figures they are compared with.

    python -m modeling.ml.gpu_bench --device cuda                 # full size: 1,000 hands retrained
    python -m modeling.ml.gpu_bench --device cuda --compile       # the same with torch.compile
    python -m modeling.ml.gpu_bench --hands 4 --epochs 1 --steps 2 --inference-hands 8  # tiny, CPU
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch

from .data import augment_crops, augment_landmark_batch, load_scheme
from .inference import build_model
from .networks import gaussian_heatmaps
from .train import DEFAULT_SCHEMES, TrainConfig, _autocast, _memory_format, device_config, grading_loss, heatmap_loss, main


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(device: torch.device, step: Callable[[], None], items_per_step: int, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return items_per_step * steps / max(time.perf_counter() - started, 1e-9)


def training_rates(cfg: TrainConfig, *, steps: int, warmup: int) -> dict[str, float]:
    """Stage-1 images/s and stage-2 crops/s of training steps on random data already on the device."""
    device = torch.device(cfg.device)
    cfg = device_config(cfg)
    scheme = load_scheme(cfg.schemes_path, cfg.scheme_key)
    model = build_model(scheme, cfg.landmark, cfg.grading, cfg.crop_scale).to(device)
    fmt = _memory_format(device)
    model = model.to(memory_format=fmt)
    if cfg.compile and device.type == "cuda":
        model.landmark_net.compile()
        model.grading_net.compile()
    g = torch.Generator().manual_seed(cfg.seed)
    lnet, gnet = model.landmark_net, model.grading_net
    lnet.train()
    gnet.train()
    h, w = cfg.landmark.input_size
    n_landmarks = lnet.cfg.n_landmarks
    images = torch.rand(cfg.landmark_batch, 1, h, w, device=device)
    points = torch.rand(cfg.landmark_batch, n_landmarks, 2, device=device) * torch.tensor([w, h], device=device)
    present = torch.ones(cfg.landmark_batch, n_landmarks, dtype=torch.bool, device=device)
    lopt = torch.optim.AdamW(lnet.parameters(), lr=cfg.landmark_lr)

    def landmark_step() -> None:
        img, pts = augment_landmark_batch(images, points, cfg.augment, g)
        with _autocast(device):
            pred = lnet(img.contiguous(memory_format=fmt))
        stride = lnet.cfg.output_stride
        target = gaussian_heatmaps((pts + 0.5) / stride - 0.5, present, pred.shape[-2:], lnet.cfg.sigma)
        loss = heatmap_loss(pred, target, present, cfg.heatmap_bce_weight)
        lopt.zero_grad(set_to_none=True)
        loss.backward()
        lopt.step()

    side = int(round(gnet.cfg.crop_size * cfg.context_factor))
    contexts = torch.rand(cfg.grading_batch, 1, side, side, device=device)
    landmarks = torch.randint(0, n_landmarks, (cfg.grading_batch,), device=device)
    targets = {
        d: torch.nn.functional.one_hot(torch.randint(0, k, (cfg.grading_batch,), device=device), k).float()
        for d, k in gnet.cfg.dimensions
    }
    mask = torch.ones(cfg.grading_batch, dtype=torch.bool, device=device)
    weights = {d: torch.ones(k, device=device) for d, k in gnet.cfg.dimensions}
    gopt = torch.optim.AdamW(gnet.parameters(), lr=cfg.grading_lr)

    def grading_step() -> None:
        crops = augment_crops(contexts, gnet.cfg.crop_size, cfg.crop_augment, g, cfg.context_factor)
        with _autocast(device):
            logits = gnet(crops.contiguous(memory_format=fmt), landmarks)
        loss = sum(grading_loss(logits[d], targets[d], mask, weights[d]) for d in logits)
        gopt.zero_grad(set_to_none=True)
        loss.backward()
        gopt.step()

    return {
        "landmark_images_per_s": _rate(device, landmark_step, cfg.landmark_batch, steps, warmup),
        "landmark_batch": cfg.landmark_batch,
        "grading_crops_per_s": _rate(device, grading_step, cfg.grading_batch, steps, warmup),
        "grading_batch": cfg.grading_batch,
    }


@torch.no_grad()
def inference_rate(cfg: TrainConfig, *, hands: int, batch: int, warmup: int = 1) -> float:
    """Hands/s of both networks on batches of prepared hands (one crop per landmark)."""
    device = torch.device(cfg.device)
    scheme = load_scheme(cfg.schemes_path, cfg.scheme_key)
    model = build_model(scheme, cfg.landmark, cfg.grading, cfg.crop_scale).to(device).eval()
    fmt = _memory_format(device)
    model = model.to(memory_format=fmt)
    lnet, gnet = model.landmark_net, model.grading_net
    h, w = cfg.landmark.input_size
    n_landmarks = lnet.cfg.n_landmarks
    batch = max(1, min(batch, hands))
    images = torch.rand(batch, 1, h, w, device=device)
    crops = torch.rand(batch * n_landmarks, 1, gnet.cfg.crop_size, gnet.cfg.crop_size, device=device)
    landmarks = torch.arange(n_landmarks, device=device).repeat(batch)

    def step() -> None:
        with _autocast(device):
            lnet(images.contiguous(memory_format=fmt))
            gnet(crops.contiguous(memory_format=fmt), landmarks)

    return _rate(device, step, batch, max(1, hands // batch), warmup)


def retrain_seconds(cfg: TrainConfig) -> dict[str, float]:
    """`train.main` on phantom hands, end to end; seconds split into data and training."""
    started = time.perf_counter()
    ckpt = main(cfg)
    metrics = ckpt["metrics"]
    return {
        "seconds": time.perf_counter() - started,
        "data_seconds": metrics["data_seconds"],
        "train_seconds": metrics["train_seconds"],
        "hands": 2 * cfg.n_patients,
        "epochs_run": metrics["epochs_run"],
    }


def run(
    *, device: str, hands: int, epochs: int, steps: int, warmup: int, inference_hands: int, inference_batch: int,
    compile: bool, emit: Callable[[dict], None] = lambda row: print(json.dumps(row), flush=True),
) -> list[dict]:  # fmt: skip
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available")
    cfg = TrainConfig(device=device, n_patients=max(1, hands // 2), epochs=epochs, compile=compile, schemes_path=str(DEFAULT_SCHEMES))
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    rows = []
    for figure, values in (
        ("training", training_rates(cfg, steps=steps, warmup=warmup)),
        ("inference", {"hands_per_s": inference_rate(cfg, hands=inference_hands, batch=inference_batch),
                       "batch": min(inference_batch, inference_hands)}),
        ("retrain", retrain_seconds(cfg)),
    ):  # fmt: skip
        row = {"figure": figure, "device": name, "compile": compile, **values}
        emit(row)
        rows.append(row)
    return rows


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Training and inference throughput of the two-stage model.")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--hands", type=int, default=1000, help="phantom hands of the end-to-end retrain")
    p.add_argument("--epochs", type=int, default=30, help="epochs of the end-to-end retrain (early stopping may end it sooner)")
    p.add_argument("--steps", type=int, default=30, help="timed training steps per stage")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (allocations, compilation)")
    p.add_argument("--inference-hands", type=int, default=4096)
    p.add_argument("--inference-batch", type=int, default=256)
    p.add_argument("--compile", action="store_true", help="torch.compile both networks (CUDA only)")
    return p.parse_args(argv)


if __name__ == "__main__":
    a = _parse_args()
    run(
        device=a.device, hands=a.hands, epochs=a.epochs, steps=a.steps, warmup=a.warmup,
        inference_hands=a.inference_hands, inference_batch=a.inference_batch, compile=a.compile,
    )  # fmt: skip
