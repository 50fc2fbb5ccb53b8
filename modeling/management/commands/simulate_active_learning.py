"""Simulate the active-learning loop on phantoms and plot each strategy beside random."""
from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np
import pandas as pd
from django.core.management.base import BaseCommand, CommandError

from consensus.aggregation import DEFAULT_AGGREGATOR, aggregate
from modeling.ml import acquisition
from modeling.ml.active_learning import (
    PRESETS,
    SimulationConfig,
    label_saving,
    plot_learning_curves,
    SimulationResult,
    curve_area,
    run_simulation,
    seed_intervals,
    summarise,
    vote_shares,
)


def _fuse_with(aggregator: str, grades: np.ndarray, n_grades: int) -> np.ndarray:
    readers, items = np.indices(grades.shape)
    labels = pd.DataFrame({"task": items.ravel(), "worker": readers.ravel(), "label": grades.ravel()})
    result = aggregate(labels, n_grades=n_grades, aggregator=aggregator, min_labels_per_reader=0)
    posteriors = result.posteriors
    return np.stack([posteriors[i] for i in range(grades.shape[1])])


def consensus_fuse(grades: np.ndarray, n_grades: int) -> np.ndarray:
    """Readers' grades (readers, items) -> posteriors (items, n_grades) of the platform's default
    consensus (`consensus.aggregation.DEFAULT_AGGREGATOR`), so the loop trains on what a project would."""
    return _fuse_with(DEFAULT_AGGREGATOR, grades, n_grades)


def dawid_skene_fuse(grades: np.ndarray, n_grades: int) -> np.ndarray:
    """Plain (unregularised) Dawid-Skene posteriors, for comparison with the default."""
    return _fuse_with("DawidSkene", grades, n_grades)


def _iv(d: dict) -> str:
    return f"{d['value']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"


def describe_point(strategy: str, seed: int, point: dict) -> str:
    return (
        f"{strategy:>14} seed {seed}  hands {point['labelled_hands']:>4}  weighted {point['weighted_accuracy']:.3f}"
        f"  within-one {point['within_one']:.3f}  localisation {point['localisation_accuracy']:.2f}"
        f"  fused labels {point['fused_label_accuracy']:.3f}  rare share {point['rare_share']:.3f}"
        f"  ({point['train_seconds']:.1f} s)"
    )


def run_in_worker(cfg: SimulationConfig, fuse) -> SimulationResult:
    """One strategy and seed in a worker process, printing each point as it comes."""
    return run_simulation(cfg, fuse=fuse, on_round=lambda point: print(describe_point(cfg.strategy, cfg.seed, point), flush=True))


class Command(BaseCommand):
    help = (
        "Run the active-learning loop headless on phantoms (3 simulated readers, Dawid-Skene, retraining) "
        "for one or more strategies beside random, over several seeds; print the learning curves and plot them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--strategy", nargs="+", default=["rare_boost"], choices=acquisition.STRATEGIES,
                            help="strategies to compare with random (random always runs)")
        parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny",
                            help="sizes: tiny (CI, shape only), small (CPU, minutes), medium (CPU, an hour), full (GPU)")
        parser.add_argument("--rounds", type=int, default=None, help="points on each curve")
        parser.add_argument("--batch", type=int, default=None, help="hands labelled per round")
        parser.add_argument("--seed", type=int, default=0, help="first seed")
        parser.add_argument("--seeds", type=int, default=1, help="number of seeds, from --seed on")
        parser.add_argument("--epochs", type=int, default=None)
        parser.add_argument("--time-budget", type=float, default=None, help="seconds of training per round")
        parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
        parser.add_argument("--jobs", type=int, default=1,
                            help="runs (strategy x seed) in parallel worker processes; each trains on one thread")
        parser.add_argument("--fuse", choices=["consensus", "dawid-skene", "votes"], default="consensus",
                            help="consensus: the platform's default aggregator; dawid-skene: plain Dawid-Skene; votes: vote shares")
        parser.add_argument("--out", default=None, help="PNG path of the plot")
        parser.add_argument("--json", dest="json_path", default=None, help="write every curve and the summary to this file")

    def handle(self, *args, strategy, preset, rounds, batch, seed, seeds, epochs, time_budget, device, jobs, fuse, out, json_path, **options):
        base = SimulationConfig(**{"rounds": 3, **PRESETS[preset]})
        overrides = {k: v for k, v in {"rounds": rounds, "batch": batch, "epochs": epochs,
                                       "time_budget_s": time_budget, "device": device}.items() if v is not None}
        base = replace(base, **overrides)
        if seeds < 1:
            raise CommandError("--seeds must be at least 1")
        if jobs < 1:
            raise CommandError("--jobs must be at least 1")
        strategies = ["random", *[s for s in dict.fromkeys(strategy) if s != "random"]]
        fuser = {"consensus": consensus_fuse, "dawid-skene": dawid_skene_fuse, "votes": vote_shares}[fuse]

        configs = [replace(base, strategy=name, seed=s) for s in range(seed, seed + seeds) for name in strategies]
        if jobs > 1:
            # Spawned, not forked: a fork of a process whose torch thread pool is running can hang.
            with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                results = list(pool.map(run_in_worker, configs, [fuser] * len(configs)))
        else:
            results = [
                run_simulation(cfg, fuse=fuser, on_round=lambda point, cfg=cfg: self.stdout.write(describe_point(cfg.strategy, cfg.seed, point)))
                for cfg in configs
            ]

        summary = summarise(results)
        self.stdout.write("\nlearning curves (mean over seeds: labelled hands -> weighted accuracy / within-one)")
        for name, s in summary.items():
            points = "  ".join(
                f"{int(x)}: {w:.3f}/{o:.3f}"
                for x, w, o in zip(s["labelled_hands"], s["weighted_accuracy_mean"], s["within_one_mean"])
            )
            self.stdout.write(f"  {name:>14}  {points}")
        savings = {name: label_saving(summary, name) for name in summary if name != "random"}
        for name, saving in savings.items():
            reached = "never" if saving["strategy_hands"] is None else f"{saving['strategy_hands']:.1f} hands"
            share = "n/a" if saving["saving"] is None else f"{saving['saving']:+.0%}"
            if not saving["baseline_learned"]:
                share = "n/a: random's curve does not rise (final not above first), so no saving can be read"
            self.stdout.write(
                f"  {name} reaches random's final weighted accuracy {saving['target']:.3f} "
                f"({saving['baseline_hands']:.0f} hands): {reached}, saving {share}"
            )
        for name, s in summary.items():
            self.stdout.write(f"  {name} area under the weighted-accuracy curve (mean height): "
                              f"{curve_area(s['labelled_hands'], s['weighted_accuracy_mean']):.3f}")
        intervals = {}
        if seeds > 1:
            # Bootstrap over seeds, so a lucky end point or seed cannot decide the comparison.
            for name in savings:
                iv = intervals[name] = seed_intervals(results, name)
                self.stdout.write(
                    f"  {name} over {len(iv['seeds'])} seeds (95% bootstrap): hands to reach random's final "
                    f"{iv['hands']['value']} [{iv['hands']['low']}, {iv['hands']['high']}] of {iv['baseline_hands']:.0f}, "
                    f"reached in {iv['reached']} resamples; area {_iv(iv['area'][name])} vs random {_iv(iv['area']['random'])}, "
                    f"difference {_iv(iv['area_difference'])}"
                )
        if out:
            phantom = base.phantom
            title = (f"Active learning on phantoms ({phantom.get('width', 1024)} x {phantom.get('height', 1280)}, "
                     f"{base.pool_patients * 2}-hand pool, {base.test_patients * 2} test hands, preset {preset})")
            path = plot_learning_curves(summary, out, title)
            self.stdout.write(f"plot: {path}")
        if json_path:
            with open(json_path, "w") as handle:
                json.dump({"summary": summary, "savings": savings, "intervals": intervals, "runs": [r.to_dict() for r in results]}, handle, indent=1, default=str)
            self.stdout.write(f"curves: {json_path}")
