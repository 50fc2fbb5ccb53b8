"""The simulated active-learning loop at its tiny size: curve shape, fairness between strategies, the plot."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from django.core.management import call_command

from modeling.ml import active_learning as AL
from modeling.ml.inference import predict_hand

TINY = AL.SimulationConfig(**{**AL.PRESETS["tiny"], "rounds": 2, "strategy": "entropy"})


@pytest.fixture(scope="module")
def entropy_run():
    return AL.run_simulation(TINY)


@pytest.fixture(scope="module")
def random_run():
    return AL.run_simulation(replace(TINY, strategy="random"))


def test_two_rounds_give_a_two_point_curve_with_values_in_the_unit_interval(entropy_run):
    curve = entropy_run.curve
    assert [p["round"] for p in curve] == [0, 1]
    assert [p["labelled_hands"] for p in curve] == [4, 8]
    for point in curve:
        for key in ("weighted_accuracy", "within_one", "erosion_weighted_accuracy", "jsn_weighted_accuracy",
                    "localisation_accuracy", "fused_label_accuracy", "rare_share"):
            assert 0.0 <= point[key] <= 1.0, (key, point[key])
        assert point["weighted_accuracy"] == pytest.approx(
            (point["erosion_weighted_accuracy"] + point["jsn_weighted_accuracy"]) / 2
        )


def test_each_round_labels_new_pool_hands_only(entropy_run):
    initial, second = entropy_run.chosen
    assert len(initial) == 4 and len(second) == 4
    assert not set(initial) & set(second)
    assert all(0 <= i < 2 * TINY.pool_patients for i in initial + second)


def test_strategies_share_everything_but_their_choices(entropy_run, random_run):
    # Same seed: same pool, reads, first batch and training seed, so the first points are identical.
    assert entropy_run.chosen[0] == random_run.chosen[0]
    assert entropy_run.curve[0] == {**random_run.curve[0], "train_seconds": entropy_run.curve[0]["train_seconds"]}


def test_the_model_view_of_a_hand_matches_predict_hand_and_mc_passes_vary():
    from modeling.ml.data import samples_from_phantoms
    from modeling.ml.inference import load_model
    from modeling.ml.phantoms import PhantomConfig
    from modeling.ml.train import main

    samples = list(samples_from_phantoms(2, seed=5, config=PhantomConfig(**TINY.phantom)))
    cfg = AL._train_config(replace(TINY, epochs=1), AL.load_scheme(AL.DEFAULT_SCHEMES, "svdh"))
    model = load_model(main(cfg, samples=samples))
    out = AL.hand_outputs(model, samples[0], mc_samples=5)
    expected = predict_hand(model, samples[0]["image"], samples[0]["laterality"])
    assert out.probs.shape == (31, 6)
    for row, area in zip(out.probs, expected.areas):
        assert row[: len(area["distribution"])] == pytest.approx(area["distribution"], abs=1e-5)
    assert out.samples.shape == (5, 31, 6)
    assert np.allclose(out.samples.sum(-1), 1.0)
    assert not np.allclose(out.samples[0], out.samples[1])  # dropout was on
    assert np.linalg.norm(out.embedding) == pytest.approx(1.0)
    # Dropout is off again afterwards: the plain output is deterministic.
    assert np.allclose(AL.hand_outputs(model, samples[0]).probs, out.probs)


def test_vote_shares_are_the_fraction_of_readers_per_grade():
    grades = np.array([[0, 2, 1], [0, 2, 2], [1, 2, 3]])
    assert AL.vote_shares(grades, 4) == pytest.approx(
        np.array([[2 / 3, 1 / 3, 0, 0], [0, 0, 1, 0], [0, 1 / 3, 1 / 3, 1 / 3]])
    )


def _result(strategy: str, seed: int, values: list[float]) -> AL.SimulationResult:
    curve = [{"labelled_hands": 10 * (i + 1), "weighted_accuracy": v, "within_one": v} for i, v in enumerate(values)]
    return AL.SimulationResult(strategy=strategy, seed=seed, curve=curve, chosen=[], config={}, seconds=0.0)


def test_summary_averages_seeds_and_measures_the_label_saving():
    results = [_result("random", 0, [0.3, 0.4, 0.5]), _result("random", 1, [0.3, 0.4, 0.7]),
               _result("entropy", 0, [0.3, 0.6, 0.7]), _result("entropy", 1, [0.3, 0.6, 0.7])]
    summary = AL.summarise(results)
    assert summary["random"]["weighted_accuracy_mean"] == pytest.approx([0.3, 0.4, 0.6])
    assert summary["random"]["weighted_accuracy_sd"] == pytest.approx([0.0, 0.0, 0.1])
    assert summary["entropy"]["labelled_hands"] == [10, 20, 30]
    saving = AL.label_saving(summary, "entropy")
    # Random ends at 0.6 with 30 hands; entropy reaches 0.6 at 20 hands: a third fewer.
    assert saving["target"] == pytest.approx(0.6)
    assert saving["strategy_hands"] == pytest.approx(20.0)
    assert saving["saving"] == pytest.approx(1 / 3)
    assert saving["baseline_learned"] is True
    assert AL.labels_to_reach([10, 20], [0.2, 0.4], 0.3) == pytest.approx(15.0)
    assert AL.labels_to_reach([10, 20], [0.2, 0.4], 0.5) is None


def test_unknown_strategy_is_refused_before_anything_runs():
    with pytest.raises(ValueError, match="unknown strategy"):
        AL.SimulationConfig(strategy="psychic")


def test_the_plot_is_a_png_with_both_panels(tmp_path, entropy_run, random_run):
    path = AL.plot_learning_curves(AL.summarise([entropy_run, random_run]), tmp_path / "curves.png", "tiny")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_the_command_runs_the_loop_with_dawid_skene_and_writes_the_plot(tmp_path, capsys):
    out, curves = tmp_path / "al.png", tmp_path / "al.json"
    call_command("simulate_active_learning", "--strategy", "margin", "--rounds", "2", "--seeds", "1",
                 "--out", str(out), "--json", str(curves))
    printed = capsys.readouterr().out
    assert "random seed 0  hands    4" in printed and "margin seed 0  hands    8" in printed
    assert "margin reaches random's final weighted accuracy" in printed
    assert out.read_bytes()[:4] == b"\x89PNG"
    payload = json.loads(curves.read_text())
    assert set(payload["summary"]) == {"random", "margin"}
    # Dawid-Skene fuses three readers better than chance.
    assert all(p["fused_label_accuracy"] > 0.5 for run in payload["runs"] for p in run["curve"])


def test_runs_in_worker_processes_give_the_same_curves_as_in_one_process(tmp_path, capsys):
    curves = {}
    for jobs in (1, 2):
        path = tmp_path / f"jobs{jobs}.json"
        call_command("simulate_active_learning", "--strategy", "rare_boost", "--rounds", "2", "--seeds", "1",
                     "--jobs", str(jobs), "--json", str(path))
        curves[jobs] = [
            (run["strategy"], run["chosen"], [{k: v for k, v in p.items() if not k.endswith("seconds")} for p in run["curve"]])
            for run in json.loads(path.read_text())["runs"]
        ]
    assert [c[0] for c in curves[2]] == ["random", "rare_boost"]
    assert curves[2] == curves[1]
    printed = capsys.readouterr().out
    assert "rare_boost seed 0  hands    8" in printed and "rare_boost reaches random's final weighted accuracy" in printed


def test_curve_area_is_the_mean_height_of_the_trapezoids():
    assert AL.curve_area([10, 20, 30], [0.2, 0.4, 0.4]) == pytest.approx((0.3 * 10 + 0.4 * 10) / 20)
    # A late jump counts for the part of the range it covers, not for the whole curve.
    assert AL.curve_area([10, 20, 30], [0.2, 0.2, 0.8]) < AL.curve_area([10, 20, 30], [0.2, 0.8, 0.8])


def test_seed_intervals_of_identical_seeds_have_zero_width_and_a_noisy_seed_widens_them():
    same = [_result(name, s, values) for s in range(5)
            for name, values in (("random", [0.3, 0.4, 0.6]), ("entropy", [0.3, 0.6, 0.7]))]
    iv = AL.seed_intervals(same, "entropy", replicates=200)
    assert iv["seeds"] == [0, 1, 2, 3, 4]
    assert iv["hands"] == {"value": 20.0, "low": 20.0, "high": 20.0}
    assert iv["reached"] == "200 of 200"
    assert iv["area_difference"]["low"] == pytest.approx(iv["area_difference"]["high"])
    # One seed on which entropy is no better than random: the interval must open up.
    noisy = same[:-1] + [_result("entropy", 4, [0.3, 0.4, 0.6])]
    iv = AL.seed_intervals(noisy, "entropy", replicates=200)
    assert iv["hands"]["high"] > iv["hands"]["low"] == pytest.approx(20.0)
    assert iv["area_difference"]["low"] < iv["area_difference"]["high"]


def test_no_saving_is_read_off_a_baseline_that_did_not_learn():
    # Random ends below where it started: entropy "reaches" random's final at its first point,
    # which would read as a two-thirds saving although nothing was learned.
    results = [_result("random", 0, [0.30, 0.25, 0.28]), _result("entropy", 0, [0.30, 0.31, 0.29])]
    saving = AL.label_saving(AL.summarise(results), "entropy")
    assert saving["baseline_learned"] is False
    assert saving["strategy_hands"] == pytest.approx(10.0)
    assert saving["saving"] is None
