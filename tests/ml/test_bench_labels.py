"""The model benchmark trains on readers' labels: the truth reaches training only in the ceiling row."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modeling.ml.bench import ROWS, fuse_majority, metric_table, training_samples

SCHEME = {
    "landmarks": ["mcp2", "mcp3"],
    "areas": [
        {"code": "e2", "landmark": "mcp2", "dimension": "erosion", "max_grade": 5},
        {"code": "e3", "landmark": "mcp3", "dimension": "erosion", "max_grade": 5},
        {"code": "j2", "landmark": "mcp2", "dimension": "jsn", "max_grade": 4},
    ],
}


def _samples(truth: np.ndarray, jsn: np.ndarray) -> list[dict]:
    return [
        {"patient_id": f"p{h}", "image": None, "laterality": "R",
         "targets": {("mcp2", "erosion"): int(t[0]), ("mcp3", "erosion"): int(t[1]), ("mcp2", "jsn"): int(j)}}
        for h, (t, j) in enumerate(zip(truth, jsn))
    ]


def _reads(rng: np.random.Generator, hands: int) -> dict[str, np.ndarray]:
    return {"erosion": rng.integers(0, 6, size=(3, hands, 2)), "jsn": rng.integers(0, 5, size=(3, hands, 1))}


@pytest.mark.parametrize("labels", [r for r in ROWS if r != "ceiling"])
def test_reader_rows_build_their_targets_from_the_reads_and_never_from_the_truth(labels):
    rng = np.random.default_rng(0)
    hands = 60
    reads = _reads(rng, hands)
    truth = rng.integers(0, 6, size=(hands, 2))
    first = training_samples(_samples(truth, rng.integers(0, 5, hands)), reads, SCHEME, labels)
    # Another truth entirely, the same reads: the targets must not move.
    second = training_samples(_samples(5 - truth, rng.integers(0, 5, hands)), reads, SCHEME, labels)
    for a, b in zip(first, second):
        assert a["targets"].keys() == b["targets"].keys()
        for key in a["targets"]:
            np.testing.assert_array_equal(a["targets"][key], b["targets"][key])


def test_one_reader_and_majority_targets_are_the_readers_grades():
    rng = np.random.default_rng(1)
    reads = _reads(rng, 30)
    samples = _samples(np.zeros((30, 2), int), np.zeros(30, int))
    one = training_samples(samples, reads, SCHEME, "one_reader")
    assert [int(np.argmax(s["targets"][("mcp3", "erosion")])) for s in one] == reads["erosion"][0, :, 1].tolist()
    votes = np.array([[2, 2, 4], [1, 3, 5], [0, 4, 4]]).T  # (readers, items)
    assert np.argmax(fuse_majority(votes, 6), axis=1).tolist() == [2, 1, 4]


def test_only_the_ceiling_row_trains_on_the_truth():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 6, size=(10, 2))
    samples = _samples(truth, np.zeros(10, int))
    ceiling = training_samples(samples, _reads(rng, 10), SCHEME, "ceiling")
    assert [s["targets"][("mcp2", "erosion")] for s in ceiling] == truth[:, 0].tolist()
    with pytest.raises(ValueError, match="unknown training labels"):
        training_samples(samples, _reads(rng, 10), SCHEME, "truth")


def test_metric_table_scores_a_perfect_reader_and_an_always_zero_reader_apart():
    rng = np.random.default_rng(3)
    truth = rng.choice(6, size=(40, 10), p=[0.6, 0.15, 0.1, 0.07, 0.05, 0.03])
    patients = [f"p{h // 2}" for h in range(40)]
    perfect = metric_table(truth, truth, patients, 6, replicates=100)
    zeros = metric_table(truth, np.zeros_like(truth), patients, 6, replicates=100)
    assert perfect["balanced_accuracy"].value == 1.0 and perfect["total_mae"].value == 0.0
    # Always answering 0 scores well on plain within-one, poorly once each grade counts equally.
    assert zeros["within_one"].value > 0.7
    assert zeros["balanced_within_one"].value == pytest.approx(2 / 6)
    assert zeros["balanced_accuracy"].low <= zeros["balanced_accuracy"].value <= zeros["balanced_accuracy"].high


def test_the_crops_recipe_trains_each_row_on_its_own_labels_and_logs_its_learning_curve(capsys):
    from modeling.ml.bench import run

    result = run(["--rows", "ceiling,one_reader", "--patients", "4", "--test-patients", "2", "--width", "192",
                  "--height", "240", "--max-epochs", "2", "--patience", "1", "--replicates", "20", "--threads", "1"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    epochs = [line for line in lines if line["kind"] == "epoch"]
    assert {line["labels"] for line in epochs} == {"ceiling", "one_reader"}
    assert all(1 <= line["epoch"] <= 2 and 0.0 <= line["held_out_balanced_accuracy"] <= 1.0 for line in epochs)
    trained = {line["labels"]: line for line in lines if line["kind"] == "model_vs_truth"}
    assert trained["one_reader"]["recipe"] == "crops" and 1 <= trained["one_reader"]["best_epoch"] <= 2
    assert set(result["models"]) == {"ceiling", "one_reader"}
    assert 0.0 <= result["models"]["ceiling"]["erosion"]["balanced_accuracy"].value <= 1.0
