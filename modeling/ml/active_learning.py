"""The active-learning loop, simulated end to end on phantoms: no database, no web server.

Each round: three simulated readers grade the newly chosen hands (each with its own error
pattern), their grades are fused (a `fuse` callable: vote shares by default, Dawid-Skene when the
caller passes one), the two-stage model is retrained from scratch on every hand labelled so far,
scored on a fixed test set against the phantoms' ground truth, and the acquisition strategy
picks the next batch from the unlabelled pool.

Everything a strategy could be lucky or unlucky with is fixed by the seed alone and shared
between strategies: the pool, the test set, the readers' habits, every grade a reader would give
to every pool hand, the first (random) batch and the training seed. Two strategies run with one
seed therefore differ only in which hands they chose.

    from modeling.ml.active_learning import PRESETS, SimulationConfig, run_simulation
    result = run_simulation(SimulationConfig(**PRESETS["tiny"], strategy="entropy", rounds=2))
    result.curve  # [{"labelled_hands": 4, "weighted_accuracy": ..., "within_one": ...}, ...]

The command `manage.py simulate_active_learning` runs several strategies and seeds and plots them.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from scoring.readers import make_reader_panel

from . import acquisition
from .data import load_scheme, prepare_image, samples_from_phantoms, scheme_dimensions
from .inference import HandModel, joint_crops, load_model, locate
from .phantoms import PhantomConfig
from .train import DEFAULT_SCHEMES, TrainConfig, config_from_dict, evaluate_hands, main

# grades (n_readers, n_items) ints, n_grades -> posterior (n_items, n_grades), rows sum to 1.
Fuse = Callable[[np.ndarray, int], np.ndarray]

# A network small enough to train in seconds on one CPU core (the size the service tests use).
TINY_NETWORK: dict[str, Any] = {
    "landmark": {"input_size": [80, 64], "widths": [8, 16]},
    "grading": {"crop_size": 24, "widths": [8, 16], "hidden": 16, "embed_dim": 4},
    "num_threads": 1,
}

# Small enough for a CPU, large enough to learn on 256 x 320 films.
SMALL_NETWORK: dict[str, Any] = {
    "landmark": {"input_size": [160, 128], "widths": [8, 16, 32]},
    "grading": {"crop_size": 32, "widths": [8, 16, 32], "hidden": 32, "embed_dim": 8},
    "grading_batch": 32,
    "patience": 15,
    "num_threads": 1,
}

PRESETS: dict[str, dict[str, Any]] = {
    # Shape checks only, for CI: a model this small on 128 x 160 films stays near chance.
    "tiny": {
        "phantom": {"width": 128, "height": 160},
        "pool_patients": 12,
        "test_patients": 4,
        "initial": 4,
        "batch": 4,
        "epochs": 4,
        "mc_samples": 4,
        "train": TINY_NETWORK,
    },
    # Learns on a CPU (weighted accuracy 0.30 -> 0.37 from 16 to 32 hands), about three minutes
    # per strategy and seed for four rounds on one core.
    "small": {
        "phantom": {"width": 256, "height": 320},
        "pool_patients": 40,
        "test_patients": 12,
        "initial": 16,
        "batch": 16,
        "rounds": 4,
        "epochs": 60,
        "mc_samples": 8,
        "train": SMALL_NETWORK,
    },
    # The CPU figure: the small networks, but a pool four times the largest labelled set, so a
    # strategy has something to choose from to the end, and a test set large enough that each
    # rare grade has tens of areas. About 40 minutes for three strategies x 3 seeds with --jobs 2.
    "medium": {
        "phantom": {"width": 256, "height": 320},
        "pool_patients": 150,
        "test_patients": 30,
        "initial": 16,
        "batch": 16,
        "rounds": 6,
        "epochs": 60,
        "mc_samples": 8,
        "train": SMALL_NETWORK,
    },
    # Sized for random and one strategy over 5 seeds in about 15 minutes of one CPU core (a
    # target of about 90 s per strategy and seed, from `small`'s 3 minutes at 60 epochs): the
    # small networks on 256 x 320 realistic films, a 60-hand pool and 20 test hands, 4 rounds of 8.
    "cpu15": {
        "phantom": {"width": 256, "height": 320},
        "pool_patients": 30,
        "test_patients": 10,
        "initial": 8,
        "batch": 8,
        "rounds": 4,
        "epochs": 20,
        "mc_samples": 4,
        "train": SMALL_NETWORK,
    },
    # The figure the README claims: full-size films and the default networks, on a GPU.
    "full": {
        "phantom": {"width": 1024, "height": 1280},
        "pool_patients": 200,
        "test_patients": 50,
        "initial": 40,
        "batch": 40,
        "rounds": 8,
        "epochs": 60,
        "mc_samples": 16,
        "device": "cuda",
        "train": {},
    },
}


@dataclass
class SimulationConfig:
    strategy: str = "entropy"
    rounds: int = 5  # points on the learning curve; each after the first adds `batch` hands
    batch: int = 8
    initial: int | None = None  # hands labelled at random before the first round (default: batch)
    pool_patients: int = 40  # both hands of each patient enter the pool
    test_patients: int = 12
    seed: int = 0
    n_readers: int = 3
    phantom: dict = field(default_factory=dict)  # PhantomConfig keyword arguments
    train: dict = field(default_factory=dict)  # TrainConfig overrides (networks, learning rates)
    epochs: int = 30
    time_budget_s: float | None = None  # per round of training
    device: str = "cpu"
    mc_samples: int = 8  # MC-dropout passes for "bald"
    top_k: int = acquisition.DEFAULT_TOP_K
    rare_weight: float = acquisition.DEFAULT_RARE_WEIGHT
    diversity: float = 0.5  # for "diverse": 0 plain uncertainty, 1 pure k-centre

    def __post_init__(self) -> None:
        if self.strategy not in acquisition.STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(acquisition.STRATEGIES)}")
        if self.rounds < 1 or self.batch < 1 or self.n_readers < 1:
            raise ValueError("rounds, batch and n_readers must be at least 1")


@dataclass
class SimulationResult:
    strategy: str
    seed: int
    curve: list[dict[str, float]]  # one point per round
    chosen: list[list[int]]  # pool indices labelled in each round
    config: dict[str, Any]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Fusing readers' grades
# ---------------------------------------------------------------------------------------------


def vote_shares(grades: np.ndarray, n_grades: int) -> np.ndarray:
    """The share of readers who gave each grade: the fusion that needs no model of the readers."""
    g = np.asarray(grades, dtype=np.int64)
    counts = np.zeros((g.shape[1], n_grades))
    for reader in g:
        np.add.at(counts, (np.arange(g.shape[1]), reader), 1.0)
    return counts / counts.sum(1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# The model's view of one hand: distributions, MC-dropout samples, an embedding
# ---------------------------------------------------------------------------------------------


@dataclass
class HandOutputs:
    probs: np.ndarray  # (n_areas, K) in scheme area order, zero-padded
    samples: np.ndarray | None  # (S, n_areas, K) MC-dropout passes, when asked for
    embedding: np.ndarray  # grading-trunk features of every joint crop, concatenated, unit length


def _area_distributions(model: HandModel, logits: dict[str, torch.Tensor]) -> np.ndarray:
    """Per-area distributions laid out like predict_hand's (same masking and renormalising)."""
    index = {n: i for i, n in enumerate(model.scheme["landmarks"])}
    width = max(k for _, k in scheme_dimensions(model.scheme))
    probs = {d: torch.softmax(v.float(), dim=1).cpu().numpy() for d, v in logits.items()}
    out = np.zeros((len(model.scheme["areas"]), width))
    for i, a in enumerate(model.scheme["areas"]):
        p = probs[a["dimension"]][index[a["landmark"]], : a["max_grade"] + 1].astype(np.float64)
        out[i, : len(p)] = p / p.sum()
    return out


@torch.inference_mode()
def hand_outputs(model: HandModel, sample: dict, mc_samples: int = 0) -> HandOutputs:
    """Localise, crop and grade one hand; optionally S stochastic passes with dropout on.

    Only the grading head has dropout, so the trunk runs once and the S passes reuse its features.
    """
    model.eval()
    names = model.scheme["landmarks"]
    prep = prepare_image(sample["image"], sample["laterality"], model.landmark_net.cfg.input_size)
    points, _ = locate(model, prep)
    crops, _, _ = joint_crops(model, prep, points)
    net = model.grading_net
    idx = torch.arange(len(names), device=model.device)
    fmap = net.features(crops.to(model.device))
    probs = _area_distributions(model, net.classify(fmap, idx))
    samples = None
    if mc_samples > 1:
        dropouts = [m for m in net.modules() if isinstance(m, nn.Dropout)]
        for m in dropouts:
            m.train()
        try:
            samples = np.stack([_area_distributions(model, net.classify(fmap, idx)) for _ in range(mc_samples)])
        finally:
            for m in dropouts:
                m.eval()
    embedding = fmap.mean(dim=(2, 3)).flatten().float().cpu().numpy().astype(np.float64)
    embedding /= max(float(np.linalg.norm(embedding)), 1e-12)
    return HandOutputs(probs=probs, samples=samples, embedding=embedding)


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


def _phantom_config(cfg: SimulationConfig) -> PhantomConfig:
    return PhantomConfig(**cfg.phantom)


def _train_config(cfg: SimulationConfig, scheme: dict) -> TrainConfig:
    overrides = copy.deepcopy(cfg.train)
    train = config_from_dict({**asdict(TrainConfig()), **overrides})
    train.scheme = scheme
    train.seed = cfg.seed
    train.device = cfg.device
    train.epochs = cfg.epochs
    train.time_budget_s = cfg.time_budget_s
    # Every labelled hand trains; the fixed test set below is the only judge.
    train.val_fraction = 0.0
    train.test_fraction = 0.0
    train.out = None
    return train


def simulate_reads(pool: Sequence[dict], scheme: dict, n_readers: int, seed: int) -> dict[str, np.ndarray]:
    """Every grade every reader would give to every pool area: {dimension: (readers, hands, areas)}.

    Drawn once, up front and in pool order, so a hand gets the same reads whichever round (and
    whichever strategy) picks it.
    """
    panel = make_reader_panel(seed, n=n_readers)
    rng = np.random.default_rng([seed, 1])
    reads = {}
    for dim, _ in scheme_dimensions(scheme):
        landmarks = [a["landmark"] for a in scheme["areas"] if a["dimension"] == dim]
        truth = np.array([[s["targets"][(lm, dim)] for lm in landmarks] for s in pool], dtype=np.int64)
        reads[dim] = np.stack([reader.grade(truth, dim, rng) for reader in panel])
    return reads


def fused_samples(
    pool: Sequence[dict], labelled: Sequence[int], reads: dict[str, np.ndarray], scheme: dict, fuse: Fuse
) -> tuple[list[dict], float]:
    """Training samples of the labelled hands with fused targets, and the fused labels' accuracy.

    Fusion runs over all labelled hands at once, so Dawid-Skene estimates each reader's confusion
    matrix from everything they have read, as the platform's consensus does.
    """
    targets: list[dict] = [{} for _ in labelled]
    hits, total = 0, 0
    for dim, n_grades in scheme_dimensions(scheme):
        landmarks = [a["landmark"] for a in scheme["areas"] if a["dimension"] == dim]
        grades = reads[dim][:, list(labelled), :]  # (readers, hands, areas)
        posterior = fuse(grades.reshape(grades.shape[0], -1), n_grades).reshape(len(labelled), len(landmarks), n_grades)
        for h, hand in enumerate(labelled):
            for a, lm in enumerate(landmarks):
                targets[h][(lm, dim)] = posterior[h, a]
                hits += int(np.argmax(posterior[h, a]) == pool[hand]["targets"][(lm, dim)])
                total += 1
    samples = [{**{k: v for k, v in pool[hand].items() if k != "targets"}, "targets": t} for hand, t in zip(labelled, targets)]
    return samples, hits / max(total, 1)


def rare_share(pool: Sequence[dict], labelled: Sequence[int], scheme: dict) -> float:
    """Share of the labelled hands' scored areas whose true grade is rare (3 or more)."""
    keys = [(a["landmark"], a["dimension"]) for a in scheme["areas"]]
    grades = np.array([pool[i]["targets"][key] for i in labelled for key in keys])
    return float(np.mean(grades >= acquisition.RARE_GRADE)) if grades.size else 0.0


def curve_point(model: HandModel, test: Sequence[dict]) -> dict[str, float]:
    """Test-set metrics against ground truth; the headline is the mean over erosion and JSN."""
    report = evaluate_hands(model, test)
    dims = [d for d in ("erosion", "jsn") if d in report]
    point = {
        "weighted_accuracy": float(np.mean([report[d]["weighted_accuracy"] for d in dims])),
        "within_one": float(np.mean([report[d]["within_one"] for d in dims])),
        "localisation_accuracy": float(report["localisation_accuracy"]),
    }
    for d in dims:
        point[f"{d}_weighted_accuracy"] = float(report[d]["weighted_accuracy"])
        point[f"{d}_within_one"] = float(report[d]["within_one"])
    return point


def choose_next(
    cfg: SimulationConfig,
    model: HandModel,
    pool: Sequence[dict],
    labelled: Sequence[int],
    rng: np.random.Generator,
) -> list[int]:
    """Pool indices of the next batch, chosen by the strategy among unlabelled hands."""
    taken = set(labelled)
    candidates = [i for i in range(len(pool)) if i not in taken]
    k = min(cfg.batch, len(candidates))
    if k == 0:
        return []
    if cfg.strategy == "random":
        return [candidates[i] for i in rng.choice(len(candidates), size=k, replace=False)]
    outputs = [hand_outputs(model, pool[i], cfg.mc_samples if cfg.strategy == "bald" else 0) for i in candidates]
    probs = np.stack([o.probs for o in outputs])
    n_grades = np.array([a["max_grade"] + 1 for a in model.scheme["areas"]])
    samples = np.stack([o.samples for o in outputs], axis=1) if cfg.strategy == "bald" else None
    scores = acquisition.item_scores(
        cfg.strategy, probs, n_grades=n_grades, samples=samples, top_k=cfg.top_k, rare_weight=cfg.rare_weight, rng=rng
    )
    embeddings = centres = None
    diversity = 0.0
    if cfg.strategy == "diverse":
        diversity = cfg.diversity
        embeddings = np.stack([o.embedding for o in outputs])
        centres = np.stack([hand_outputs(model, pool[i]).embedding for i in labelled])
    picks = acquisition.select_batch(scores, k, embeddings=embeddings, centres=centres, diversity=diversity)
    return [candidates[i] for i in picks]


def run_simulation(
    cfg: SimulationConfig,
    fuse: Fuse = vote_shares,
    on_round: Callable[[dict[str, float]], None] | None = None,
) -> SimulationResult:
    """Run `cfg.rounds` rounds of read -> fuse -> train -> evaluate -> choose; return the curve."""
    started = time.monotonic()
    torch.set_num_threads(int(cfg.train.get("num_threads") or torch.get_num_threads()))
    scheme = load_scheme(DEFAULT_SCHEMES, cfg.train.get("scheme_key", "svdh"))
    phantom = _phantom_config(cfg)
    # Pool and test patients come from different generator seeds, so no patient is in both.
    pool = list(samples_from_phantoms(cfg.pool_patients, seed=10_000 + cfg.seed, config=phantom))
    test = list(samples_from_phantoms(cfg.test_patients, seed=20_000 + cfg.seed, config=phantom))
    reads = simulate_reads(pool, scheme, cfg.n_readers, cfg.seed)
    initial = min(cfg.initial or cfg.batch, len(pool))
    labelled = [int(i) for i in np.random.default_rng([cfg.seed, 2]).choice(len(pool), size=initial, replace=False)]
    choice_rng = np.random.default_rng([cfg.seed, 3, acquisition.STRATEGIES.index(cfg.strategy)])
    train_cfg = _train_config(cfg, scheme)
    curve: list[dict[str, float]] = []
    chosen: list[list[int]] = [list(labelled)]
    for round_index in range(cfg.rounds):
        samples, label_accuracy = fused_samples(pool, labelled, reads, scheme, fuse)
        t0 = time.monotonic()
        model = load_model(main(copy.deepcopy(train_cfg), samples=samples), device=cfg.device)
        point = {
            "round": round_index,
            "labelled_hands": len(labelled),
            **curve_point(model, test),
            "fused_label_accuracy": label_accuracy,
            # Share of labelled areas whose true grade is 3 or more: what a rare-grade boost buys.
            "rare_share": rare_share(pool, labelled, scheme),
            "train_seconds": time.monotonic() - t0,
        }
        curve.append(point)
        if on_round is not None:
            on_round(point)
        if round_index == cfg.rounds - 1:
            break
        picks = choose_next(cfg, model, pool, labelled, choice_rng)
        if not picks:
            break  # the pool is exhausted
        labelled += picks
        chosen.append(picks)
    return SimulationResult(
        strategy=cfg.strategy, seed=cfg.seed, curve=curve, chosen=chosen, config=asdict(cfg),
        seconds=time.monotonic() - started,
    )


# ---------------------------------------------------------------------------------------------
# Summaries over seeds, the label saving, the plot
# ---------------------------------------------------------------------------------------------

CURVE_METRICS = ("weighted_accuracy", "within_one")


def summarise(results: Sequence[SimulationResult]) -> dict[str, dict[str, list[float]]]:
    """Per strategy: labelled hands and the mean and SD over seeds of each curve metric.

    Curves of one strategy are cut to the shortest (a pool that ran out ends a curve early).
    """
    by_strategy: dict[str, list[SimulationResult]] = {}
    for r in results:
        by_strategy.setdefault(r.strategy, []).append(r)
    out: dict[str, dict[str, list[float]]] = {}
    for strategy, runs in by_strategy.items():
        n = min(len(r.curve) for r in runs)
        summary: dict[str, list[float]] = {
            "labelled_hands": [float(np.mean([r.curve[i]["labelled_hands"] for r in runs])) for i in range(n)],
            "seeds": [float(len(runs))] * n,
        }
        for metric in CURVE_METRICS:
            values = np.array([[r.curve[i][metric] for i in range(n)] for r in runs])
            summary[f"{metric}_mean"] = values.mean(0).tolist()
            summary[f"{metric}_sd"] = values.std(0).tolist()
        out[strategy] = summary
    return out


def labels_to_reach(labelled: Sequence[float], values: Sequence[float], target: float) -> float | None:
    """Labelled hands at which a curve first reaches `target` (linear between points), or None."""
    for i, (x, y) in enumerate(zip(labelled, values)):
        if y >= target:
            if i == 0:
                return float(x)
            x0, y0 = labelled[i - 1], values[i - 1]
            return float(x0 + (x - x0) * (target - y0) / (y - y0)) if y > y0 else float(x)
    return None


def label_saving(summary: dict[str, dict[str, list[float]]], strategy: str, baseline: str = "random",
                 metric: str = "weighted_accuracy") -> dict[str, float | None]:
    """How many fewer hands `strategy` needs to reach the baseline's final mean `metric`.

    saving = 1 - hands(strategy reaches target) / hands(baseline's last point); None when the
    strategy never reaches the target within its curve, and None when the baseline did not learn
    (its final mean is not above its first): reaching a target the baseline already had at its
    first point measures noise, not a saving.
    """
    base, mine = summary[baseline], summary[strategy]
    target = base[f"{metric}_mean"][-1]
    baseline_hands = base["labelled_hands"][-1]
    baseline_learned = bool(base[f"{metric}_mean"][-1] > base[f"{metric}_mean"][0])
    needed = labels_to_reach(mine["labelled_hands"], mine[f"{metric}_mean"], target)
    return {
        "target": target,
        "baseline_hands": baseline_hands,
        "baseline_learned": baseline_learned,
        "strategy_hands": needed,
        "saving": None if needed is None or not baseline_learned else 1.0 - needed / baseline_hands,
    }


def plot_learning_curves(summary: dict[str, dict[str, list[float]]], path: str | Path, title: str = "") -> Path:
    """Two panels (weighted accuracy, within-one) of the mean over seeds.

    Random is a dashed line with a grey +-1 SD band; each strategy is a solid line with +-1 SD
    bars, nudged sideways a little so that strategies with equal values stay distinguishable.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    labels = {"weighted_accuracy": "weighted (balanced) accuracy", "within_one": "within-one-grade accuracy"}
    others = [s for s in summary if s != "random"]
    colours = plt.get_cmap("tab10")
    seeds = sorted({int(s["seeds"][0]) for s in summary.values()})
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    for ax, metric in zip(axes, CURVE_METRICS):
        low, high = 1.0, 0.0
        xs = sorted({x for s in summary.values() for x in s["labelled_hands"]})
        step = (xs[-1] - xs[0]) if len(xs) > 1 else 1.0
        if "random" in summary:
            s = summary["random"]
            x, mean, sd = (np.array(s[k]) for k in ("labelled_hands", f"{metric}_mean", f"{metric}_sd"))
            ax.fill_between(x, mean - sd, mean + sd, color="0.6", alpha=0.25, linewidth=0, label="random ±1 SD")
            ax.plot(x, mean, color="0.15", linestyle="--", marker="s", linewidth=2.2, zorder=6, label="random")
            low, high = min(low, float((mean - sd).min())), max(high, float((mean + sd).max()))
        for i, strategy in enumerate(others):
            s = summary[strategy]
            x, mean, sd = (np.array(s[k]) for k in ("labelled_hands", f"{metric}_mean", f"{metric}_sd"))
            nudge = (i - (len(others) - 1) / 2) * 0.012 * step
            ax.errorbar(x + nudge, mean, yerr=sd, color=colours(i), marker="o", markersize=5, linewidth=1.8,
                        elinewidth=1, capsize=2, alpha=0.9, zorder=4, label=strategy)
            low, high = min(low, float((mean - sd).min())), max(high, float((mean + sd).max()))
        if metric == "weighted_accuracy" and "random" in summary and others:
            # The claim the plot is for: where each strategy reaches random's final accuracy.
            target, last = summary["random"]["weighted_accuracy_mean"][-1], summary["random"]["labelled_hands"][-1]
            ax.axhline(target, color="0.15", linestyle=":", linewidth=1, zorder=3)
            ax.annotate(f"random's final ({last:.0f} hands)", (xs[0], target), xytext=(2, 3), textcoords="offset points",
                        fontsize=8, color="0.25")
            lines = [f"hands to reach random's final {target:.3f}:"]
            for i, strategy in enumerate(others):
                saving = label_saving(summary, strategy)
                if not saving["baseline_learned"]:
                    lines = ["random's curve does not rise (final not above first):", "no label saving can be read"]
                    break
                if saving["strategy_hands"] is None:
                    lines.append(f"{strategy}: not reached")
                    continue
                ax.plot([saving["strategy_hands"]], [target], marker="v", markersize=8, color=colours(i), zorder=7)
                lines.append(f"{strategy}: {saving['strategy_hands']:.0f} ({saving['saving']:.0%} fewer)")
            ax.text(0.98, 0.03, "\n".join(lines), transform=ax.transAxes, ha="right", va="bottom", fontsize=8.5,
                    bbox={"facecolor": "white", "edgecolor": "0.8", "boxstyle": "round,pad=0.4"}, zorder=8)
        # At least a 0.2-wide window, so that noise on a flat curve does not look like a trend.
        centre, half = (low + high) / 2, max((high - low) / 2 + 0.03, 0.1)
        ax.set_ylim(max(0.0, centre - half), min(1.0, centre + half))
        if len(xs) <= 12:
            ax.set_xticks(xs)  # tick exactly where the curves have points
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("labelled hands (each read by 3 simulated readers, fused)")
        ax.set_ylabel(f"test {labels[metric]}")
        ax.set_title(labels[metric].capitalize() + " against ground truth")
        ax.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 8), fontsize=9, frameon=False)
    seed_text = "/".join(str(n) for n in seeds)
    fig.suptitle((title + "\n" if title else "") + f"mean over {seed_text} seed{'s' if seeds != [1] else ''}; "
                 "bars and band: ±1 SD over seeds", fontsize=10.5)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


# ---------------------------------------------------------------------------------------------
# Over seeds: intervals for the saving and the area under each curve
# ---------------------------------------------------------------------------------------------


def curve_area(labelled: Sequence[float], values: Sequence[float]) -> float:
    """Area under a learning curve divided by its span of labelled hands: the curve's mean height
    (trapezoids), so one lucky end point cannot decide a comparison."""
    x, y = np.asarray(labelled, dtype=float), np.asarray(values, dtype=float)
    if len(x) < 2 or x[-1] <= x[0]:
        return float(y.mean()) if len(y) else float("nan")
    return float(np.sum((y[1:] + y[:-1]) / 2.0 * np.diff(x)) / (x[-1] - x[0]))


def seed_intervals(
    results: Sequence[SimulationResult], strategy: str, baseline: str = "random",
    metric: str = "weighted_accuracy", replicates: int = 1000, seed: int = 0,
) -> dict[str, Any]:
    """Bootstrap over seeds (paired: a seed's runs share pool, test set and reads) of the hands
    `strategy` needs to reach the baseline's final mean, and of each curve's area.

    A replicate in which the strategy never reaches the target is dropped from the hands interval
    and counted in ``reached``, so the reader sees how often the saving exists at all.
    """
    from scoring.bootstrap import patient_bootstrap

    by_seed: dict[int, dict[str, SimulationResult]] = {}
    for r in results:
        by_seed.setdefault(r.seed, {})[r.strategy] = r
    seeds = sorted(s for s, runs in by_seed.items() if strategy in runs and baseline in runs)
    if not seeds:
        raise ValueError(f"no seed has both {strategy!r} and {baseline!r}")
    n = min(len(by_seed[s][name].curve) for s in seeds for name in (strategy, baseline))
    x = {name: np.array([[by_seed[s][name].curve[i]["labelled_hands"] for i in range(n)] for s in seeds], dtype=float)
         for name in (strategy, baseline)}
    y = {name: np.array([[by_seed[s][name].curve[i][metric] for i in range(n)] for s in seeds], dtype=float)
         for name in (strategy, baseline)}

    def hands(idx: np.ndarray) -> float:
        target = y[baseline][idx].mean(0)[-1]
        needed = labels_to_reach(x[strategy][idx].mean(0), y[strategy][idx].mean(0), target)
        return float("nan") if needed is None else needed

    def area(name: str) -> Callable[[np.ndarray], float]:
        return lambda idx: curve_area(x[name][idx].mean(0), y[name][idx].mean(0))

    def area_difference(idx: np.ndarray) -> float:
        return area(strategy)(idx) - area(baseline)(idx)

    groups = np.arange(len(seeds))
    needed = patient_bootstrap(hands, groups, replicates=replicates, seed=seed)
    baseline_hands = float(x[baseline].mean(0)[-1])
    return {
        "seeds": seeds,
        "target": float(y[baseline].mean(0)[-1]),
        "baseline_hands": baseline_hands,
        "hands": needed.as_dict(1),
        "reached": f"{needed.replicates} of {replicates}",
        "area": {name: patient_bootstrap(area(name), groups, replicates=replicates, seed=seed).as_dict()
                 for name in (baseline, strategy)},
        "area_difference": patient_bootstrap(area_difference, groups, replicates=replicates, seed=seed).as_dict(),
    }
