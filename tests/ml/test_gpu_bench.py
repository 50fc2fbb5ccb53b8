"""The GPU benchmark at a tiny size on the CPU, and the device-dependent training config."""
from __future__ import annotations

import math

from modeling.ml import gpu_bench
from modeling.ml.train import TrainConfig, device_config


def test_a_cpu_run_trains_with_the_config_as_given() -> None:
    cfg = TrainConfig(device="cpu", landmark_batch=8, grading_batch=128, cuda_batch_scale=8)
    assert device_config(cfg) is cfg


def test_a_cuda_run_scales_batches_and_the_learning_rate_by_its_square_root() -> None:
    cfg = TrainConfig(device="cuda", landmark_batch=8, grading_batch=128, landmark_lr=2e-3, grading_lr=1e-3, cuda_batch_scale=16)
    scaled = device_config(cfg)
    assert (scaled.landmark_batch, scaled.grading_batch) == (128, 2048)
    assert math.isclose(scaled.landmark_lr, 8e-3) and math.isclose(scaled.grading_lr, 4e-3)
    assert (cfg.landmark_batch, cfg.landmark_lr) == (8, 2e-3)  # the given config is left as it was
    assert device_config(TrainConfig(device="cuda", cuda_batch_scale=1)).landmark_batch == TrainConfig().landmark_batch


def test_the_benchmark_prints_training_inference_and_retrain_figures_on_a_tiny_cpu_run() -> None:
    printed: list[dict] = []
    rows = gpu_bench.run(
        device="cpu", hands=2, epochs=1, steps=1, warmup=0, inference_hands=2, inference_batch=2, compile=False,
        emit=printed.append,
    )  # fmt: skip
    assert printed == rows and [row["figure"] for row in rows] == ["training", "inference", "retrain"]
    training, inference, retrain = rows
    assert training["landmark_images_per_s"] > 0 and training["grading_crops_per_s"] > 0
    assert (training["landmark_batch"], training["grading_batch"]) == (8, 128)  # CPU: batches as configured
    assert inference["hands_per_s"] > 0 and inference["batch"] == 2
    assert retrain["hands"] == 2 and retrain["epochs_run"] == 1 and retrain["seconds"] >= retrain["train_seconds"] > 0
