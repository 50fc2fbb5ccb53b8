"""Training a young project: held-out parts without a graded hand train instead of crashing.

Patient ids are fixed strings here, so the hash split (`data.patient_split`) is the same on every
machine and each test knows which patients fall into validation and test.
"""
from __future__ import annotations

import math

import torch

from modeling.ml.data import patient_split
from modeling.ml.train import main

from .model_fixtures import toy_samples
from .test_model_training import tiny_config


def _split(samples, cfg) -> dict[str, set[str]]:
    parts: dict[str, set[str]] = {"train": set(), "val": set(), "test": set()}
    for s in samples:
        parts[patient_split(s["patient_id"], cfg.seed, cfg.val_fraction, cfg.test_fraction)].add(s["patient_id"])
    return parts


def _unread(samples, patients: set[str]) -> None:
    for s in samples:
        if s["patient_id"] in patients:
            s["targets"] = {}


def test_validation_patients_nobody_graded_train_instead_of_crashing_in_evaluate():
    torch.set_num_threads(1)
    cfg = tiny_config(epochs=2)
    samples = toy_samples(12, seed=4)
    parts = _split(samples, cfg)
    assert parts["val"] and parts["test"] and parts["train"]  # the hash split has all three here
    _unread(samples, parts["val"])  # before the fix: torch.cat() of an empty list in evaluate

    ckpt = main(cfg, samples)

    metrics = ckpt["metrics"]
    assert metrics["hands"] == {"train": 2 * (len(parts["train"]) + len(parts["val"])), "val": 0, "test": 2 * len(parts["test"])}
    assert ckpt["split"]["val"] == [] and set(ckpt["split"]["test"]) == parts["test"]
    assert metrics["monitor"] == "train" and metrics["held_out"] is True
    assert metrics["test"]["erosion"]["n"] == 2 * len(parts["test"]) * 3  # three erosion areas per toy hand
    assert [row["monitor"] for row in ckpt["history"]] == ["train", "train"]


def test_with_no_graded_held_out_hand_every_hand_trains_and_the_metrics_say_so():
    cfg = tiny_config(epochs=1)
    samples = toy_samples(12, seed=4)
    parts = _split(samples, cfg)
    _unread(samples, parts["val"] | parts["test"])

    ckpt = main(cfg, samples)

    assert ckpt["metrics"]["hands"] == {"train": 24, "val": 0, "test": 0}
    assert ckpt["metrics"]["held_out"] is False and "val" not in ckpt["metrics"] and "test" not in ckpt["metrics"]
    assert ckpt["split"]["val"] == [] and ckpt["split"]["test"] == []


def test_two_graded_hands_of_one_held_out_patient_still_train():
    cfg = tiny_config(epochs=1)
    samples = toy_samples(12, seed=4)
    parts = _split(samples, cfg)
    (chosen, *_) = sorted(parts["val"])
    _unread(samples, {s["patient_id"] for s in samples} - {chosen})  # only one patient read, and it is held out

    ckpt = main(cfg, samples)

    # Training hands without any grade could not teach grading: everything trains.
    assert ckpt["metrics"]["hands"] == {"train": 24, "val": 0, "test": 0} and ckpt["metrics"]["held_out"] is False
    first = ckpt["history"][0]
    assert math.isfinite(first["grading_val_loss"]) and math.isfinite(first["erosion_weighted_accuracy"])


def test_the_crops_grader_recipe_trains_stage_two_after_stage_one_and_logs_its_epochs():
    torch.set_num_threads(1)
    cfg = tiny_config(epochs=2, grader_recipe="crops")
    seen = []
    ckpt = main(cfg, toy_samples(12, seed=4), on_epoch=lambda e, log: seen.append((e, log.get("stage"))))
    history = ckpt["history"]
    stage_one = [row for row in history if row.get("stage") != "grading"]
    stage_two = [row for row in history if row.get("stage") == "grading"]
    # Stage 1 alone in the loop, then the grader's own epochs, numbered on after it.
    assert len(stage_one) == 2 and all("grading_train_loss" not in row for row in stage_one)
    assert stage_two and [row["grading_epoch"] for row in stage_two] == list(range(1, len(stage_two) + 1))
    assert [e for e, _ in seen] == list(range(1, len(history) + 1))
    grader = ckpt["metrics"]["grader"]
    assert grader["recipe"] == "crops" and grader["epochs_run"] == len(stage_two) <= cfg.epochs
    assert ckpt["metrics"]["best_epoch"]["grading"] == grader["best_epoch"]
    # The checkpoint holds the recipe's grader, and it reloads to grade every test hand.
    assert ckpt["config"]["grading"]["crop_size"] == cfg.grading.crop_size
    assert ckpt["metrics"]["test"]["erosion"]["n"] > 0
