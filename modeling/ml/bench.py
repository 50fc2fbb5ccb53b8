"""Benchmark of the hand scorer on phantoms: accuracy on held-out patients, training throughput
and inference latency per full-size hand.

    python -m modeling.ml.bench --patients 200 --epochs 60 --device cuda --out model.pt
    python -m modeling.ml.bench --patients 40 --epochs 5 --time-budget 600 --threads 1
    python -m modeling.ml.bench --checkpoint model.pt --latency-hands 20   # no training

Every line printed is one JSON object, so a log can be parsed back.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from .data import samples_from_phantoms
from .inference import load_model, predict_hand
from .train import TrainConfig, config_from_dict, evaluate_hands, load_checkpoint, main


def _print(kind: str, payload: dict[str, Any]) -> None:
    print(json.dumps({"kind": kind, **payload}, default=str), flush=True)


def _round(d: Any) -> Any:
    if isinstance(d, float):
        return round(d, 4)
    if isinstance(d, dict):
        return {k: _round(v) for k, v in d.items() if k != "confusion"}
    return d


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of an evaluate_hands result."""
    out = {k: metrics.get(k) for k in ("hands", "tolerance", "localisation_accuracy",
                                       "localisation_accuracy_box", "mean_point_error_px", "total_mae")}
    for d in ("erosion", "jsn"):
        if d in metrics:
            out[d] = {k: metrics[d][k] for k in ("n", "weighted_accuracy", "within_one", "qwk", "total_mae")}
            out[d]["confusion"] = metrics[d]["confusion"]
    return _round(out) | {d: out[d] for d in ("erosion", "jsn") if d in out}


def latency(model: Any, samples: list[dict], repeats: int = 1) -> dict[str, float]:
    """Seconds per predict_hand call on full-size images, after one warm-up call."""
    predict_hand(model, samples[0]["image"], samples[0]["laterality"])
    times = []
    for _ in range(repeats):
        for s in samples:
            t0 = time.perf_counter()
            predict_hand(model, s["image"], s["laterality"])
            times.append(time.perf_counter() - t0)
    times.sort()
    return {
        "hands": len(times),
        "image_hw": list(samples[0]["image"].shape),
        "median_s": statistics.median(times),
        "p90_s": times[min(len(times) - 1, int(0.9 * len(times)))],
        "max_s": times[-1],
        "threads": torch.get_num_threads(),
    }


def run(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--patients", type=int, default=200, help="phantom patients (2 hands each)")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--time-budget", type=float, default=None, help="seconds of training at most")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 on a shared machine)")
    p.add_argument("--scheme", default="svdh")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--phantom-seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the checkpoint here")
    p.add_argument("--checkpoint", default=None, help="evaluate this checkpoint instead of training")
    p.add_argument("--latency-hands", type=int, default=10)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)

    if a.checkpoint:
        ckpt = load_checkpoint(a.checkpoint)
        cfg = config_from_dict(ckpt["config"])
        model = load_model(ckpt, a.device)
        test_ids = set(ckpt["split"]["test"])
        t0 = time.monotonic()
        test = [s for s in samples_from_phantoms(cfg.n_patients, cfg.phantom_seed) if s["patient_id"] in test_ids]
        _print("data", {"test_hands": len(test), "seconds": time.monotonic() - t0})
        result = {"test": evaluate_hands(model, test, cfg.tolerance)}
        _print("test", summary(result["test"]))
    else:
        cfg = TrainConfig(
            n_patients=a.patients, epochs=a.epochs, time_budget_s=a.time_budget, device=a.device,
            num_threads=a.threads, scheme_key=a.scheme, seed=a.seed, phantom_seed=a.phantom_seed, out=a.out,
        )
        t0 = time.monotonic()

        def on_epoch(epoch: int, m: dict) -> None:
            _print("epoch", _round(m) | {"elapsed_s": round(time.monotonic() - t0, 1)})

        ckpt = main(cfg, on_epoch=on_epoch)
        hist = ckpt["history"]
        result = {k: ckpt["metrics"].get(k) for k in ("val", "test")}
        _print("training", {
            "hands": ckpt["metrics"]["hands"],
            "data_seconds": ckpt["metrics"]["data_seconds"],
            "train_seconds": ckpt["metrics"]["train_seconds"],
            "epochs_run": ckpt["metrics"]["epochs_run"],
            "best_epoch": ckpt["metrics"]["best_epoch"],
            "landmark_images_per_s": statistics.median(h["landmark_images_per_s"] for h in hist if "landmark_images_per_s" in h),
            "grading_crops_per_s": statistics.median(h["grading_crops_per_s"] for h in hist if "grading_crops_per_s" in h),
        })
        for k in ("val", "test"):
            if result.get(k):
                _print(k, summary(result[k]))
        model = load_model(ckpt, a.device)

    # Latency on fresh full-size hands: another phantom seed, so patients no split has seen.
    fresh = list(samples_from_phantoms((a.latency_hands + 1) // 2, seed=a.phantom_seed + 7919))
    result["latency"] = latency(model, fresh[: a.latency_hands])
    _print("latency", _round(result["latency"]))
    return result


if __name__ == "__main__":
    run()
