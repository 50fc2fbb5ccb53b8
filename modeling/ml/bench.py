"""The model benchmark on phantoms: trained on simulated readers' labels, judged against truth.

Training patients are read by a panel of image-aware simulated readers (`scoring.image_readers`:
misses grow as a lesion's visibility falls, plus each reader's habits). The same network is then
trained once per row of training labels:

- ``consensus``: the readers' grades fused by the platform's default consensus, the ordinal
  Dawid-Skene of `scoring.ordinal_ds` (posteriors as soft targets, as the platform trains);
- ``majority``: the modal grade of the readers (ties to the lower grade of the tie);
- ``one_reader``: the first reader's grades alone;
- ``ceiling``: the phantom truth, the only row that ever sees it.

By default (``--recipe crops``) each row trains the per-joint grader alone on crops cut once at
the phantom's landmark positions, to convergence with early stopping on held-out training patients
(`modeling.ml.crops`: landmarks are geometry, not grades, so every row gets the same crops and
only its targets differ); ``--recipe full`` trains both stages end to end with `train.main`.

Every model is evaluated on held-out patients against the truth, with patient-level bootstrap
95% intervals for accuracy, balanced accuracy, plain and grade-balanced within-one, quadratic
kappa and the total-score MAE per hand. The readers are scored the same way on the test hands,
and the originating study's table is printed: the consensus-trained model and each reader against
the test hands' consensus.

    python -m modeling.ml.bench --patients 60 --test-patients 30 --threads 1 --table   # grader to convergence
    python -m modeling.ml.bench --recipe full --patients 60 --test-patients 30 --epochs 30 --time-budget 420 --threads 1
    python -m modeling.ml.bench --rows consensus --patients 20 --test-patients 8 --epochs 2   # quick
    python -m modeling.ml.bench --checkpoint model.pt --latency-hands 20                     # latency only
    python -m modeling.ml.bench --body-parts hand,foot --rows consensus --patients 24 --test-patients 12 --threads 1 --table

Every line printed is one JSON object, so a log can be parsed back; `--table` adds plain text.
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from scoring import agreement
from scoring.bootstrap import Interval, patient_bootstrap
from scoring.image_readers import ImageReader, make_image_reader_panel
from scoring.ordinal_ds import ordinal_dawid_skene

from . import crops as crop_recipe

from .data import load_scheme, phantom_sample, samples_from_phantoms, scheme_dimensions
from .inference import load_model, predict_hand
from .phantoms import PhantomConfig, generate_patient
from .train import DEFAULT_SCHEMES, TrainConfig, load_checkpoint, main

ROWS = ("ceiling", "consensus", "majority", "one_reader")
TRUTH_ROWS = frozenset({"ceiling"})


def _print(kind: str, payload: dict[str, Any]) -> None:
    print(json.dumps({"kind": kind, **payload}, default=str), flush=True)


# ---------------------------------------------------------------------------------------------
# Data: patients, reads, fused labels
# ---------------------------------------------------------------------------------------------


def make_hands(
    n_patients: int, seed: int, config: PhantomConfig, *, severities: Sequence[float] | None = None
) -> tuple[list[dict], list[dict]]:
    """Samples (truth in "targets") and per-hand visibility of both hands of n patients.

    ``severities`` fixes each patient's disease level; the test set spreads it so that high
    grades come from many patients, not from the one severe patient a random draw gives.
    """
    samples, visibility = [], []
    for p in range(n_patients):
        severity = None if severities is None else float(severities[p])
        pid = f"bench{seed:04d}p{p:04d}"
        for ph in generate_patient(seed * 100_003 + p, config, severity=severity):
            samples.append(phantom_sample(ph, pid))
            visibility.append(ph.visibility)
    return samples, visibility


def dimension_landmarks(scheme: dict) -> dict[str, list[str]]:
    return {d: [a["landmark"] for a in scheme["areas"] if a["dimension"] == d] for d, _ in scheme_dimensions(scheme)}


def truth_array(samples: Sequence[dict], landmarks: Sequence[str], dim: str) -> np.ndarray:
    return np.array([[int(s["targets"][(lm, dim)]) for lm in landmarks] for s in samples], dtype=np.int64)


def read_hands(
    samples: Sequence[dict], visibility: Sequence[dict], panel: Sequence[ImageReader], scheme: dict, seed: int
) -> dict[str, np.ndarray]:
    """Every reader's grades of every hand: {dimension: (readers, hands, areas)}.

    Hands are read in list order, which is also each reader's order through the reading day.
    """
    rng = np.random.default_rng([seed, 7])
    out = {}
    for dim, k in scheme_dimensions(scheme):
        lms = dimension_landmarks(scheme)[dim]
        truth = truth_array(samples, lms, dim)
        vis = np.array([[float((v or {}).get(dim, {}).get(lm, 1.0)) for lm in lms] for v in visibility])
        out[dim] = np.stack([r.grade(truth, vis, k - 1, rng) for r in panel])
    return out


def fuse_consensus(grades: np.ndarray, n_grades: int) -> np.ndarray:
    """(readers, items) -> (items, n_grades) posteriors of the platform's default consensus,
    the regularised ordinal Dawid-Skene of `scoring.ordinal_ds` with its documented defaults."""
    readers, items = np.indices(grades.shape)
    fit = ordinal_dawid_skene(items.ravel(), readers.ravel(), grades.ravel(), n_classes=n_grades, n_tasks=grades.shape[1])
    return fit.posteriors


def _without_truth(sample: dict) -> dict:
    return {k: v for k, v in sample.items() if k != "targets"} | {"targets": {}}


def fuse_majority(grades: np.ndarray, n_grades: int) -> np.ndarray:
    """One-hot modal grade per item; a tie goes to the lowest tied grade."""
    g = np.asarray(grades, dtype=np.int64)
    counts = np.zeros((g.shape[1], n_grades))
    for reader in g:
        np.add.at(counts, (np.arange(g.shape[1]), reader), 1.0)
    return np.eye(n_grades)[np.argmax(counts, axis=1)]


def fuse_one_reader(grades: np.ndarray, n_grades: int) -> np.ndarray:
    return np.eye(n_grades)[np.asarray(grades[0], dtype=np.int64)]


FUSERS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "consensus": fuse_consensus,
    "majority": fuse_majority,
    "one_reader": fuse_one_reader,
}


def training_samples(samples: Sequence[dict], reads: dict[str, np.ndarray], scheme: dict, labels: str) -> list[dict]:
    """Training samples whose targets come from ``labels``.

    Only ``"ceiling"`` keeps the phantom truth; every other row builds its targets from the
    readers' grades alone, on copies of the samples that no longer carry the truth.
    """
    if labels in TRUTH_ROWS:
        return [dict(s) for s in samples]
    if labels not in FUSERS:
        raise ValueError(f"unknown training labels {labels!r}; choose one of {', '.join(ROWS)}")
    out = [{k: v for k, v in s.items() if k != "targets"} | {"targets": {}} for s in samples]
    for dim, k in scheme_dimensions(scheme):
        lms = dimension_landmarks(scheme)[dim]
        grades = reads[dim]  # (readers, hands, areas)
        fused = FUSERS[labels](grades.reshape(grades.shape[0], -1), k).reshape(len(samples), len(lms), k)
        for h, s in enumerate(out):
            for a, lm in enumerate(lms):
                s["targets"][(lm, dim)] = fused[h, a]
    return out


# ---------------------------------------------------------------------------------------------
# Scoring with intervals
# ---------------------------------------------------------------------------------------------

METRICS = ("accuracy", "balanced_accuracy", "within_one", "balanced_within_one", "qwk", "total_mae")


def metric_table(
    truth: np.ndarray, given: np.ndarray, patients: Sequence[str], n_grades: int, *, replicates: int = 1000, seed: int = 0
) -> dict[str, Interval]:
    """Metrics of ``given`` against ``truth`` (hands x areas), each with a patient-level interval."""
    t, g = np.asarray(truth), np.asarray(given)

    def flat(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return t[idx].ravel(), g[idx].ravel()

    def balanced(idx: np.ndarray, tol: int) -> float:
        a, b = flat(idx)
        present = np.unique(a)
        return float(np.mean([np.mean(np.abs(b[a == k] - k) <= tol) for k in present]))

    fns: dict[str, Callable[[np.ndarray], float]] = {
        "accuracy": lambda idx: float(np.mean(np.equal(*flat(idx)))),
        "balanced_accuracy": lambda idx: balanced(idx, 0),
        "within_one": lambda idx: float(np.mean(np.abs(np.subtract(*flat(idx))) <= 1)),
        "balanced_within_one": lambda idx: balanced(idx, 1),
        "qwk": lambda idx: agreement.quadratic_weighted_kappa(*flat(idx), n_grades),
        "total_mae": lambda idx: float(np.mean(np.abs(t[idx].sum(1) - g[idx].sum(1)))),
    }
    groups = np.asarray(patients)
    return {name: patient_bootstrap(fn, groups, replicates=replicates, seed=seed) for name, fn in fns.items()}


def grade_support(truth: np.ndarray, patients: Sequence[str], n_grades: int) -> dict[int, dict[str, int]]:
    """Per true grade: how many areas and from how many patients (the test set's power)."""
    pats = np.repeat(np.asarray(patients), truth.shape[1])
    flat = truth.ravel()
    return {k: {"areas": int((flat == k).sum()), "patients": int(len(set(pats[flat == k])))} for k in range(n_grades)}


def model_grades(model: Any, samples: Sequence[dict], scheme: dict) -> dict[str, np.ndarray]:
    """The model's grade of every area of every hand, end to end: {dimension: (hands, areas)}."""
    lms = dimension_landmarks(scheme)
    out = {d: np.zeros((len(samples), len(v)), dtype=np.int64) for d, v in lms.items()}
    col = {d: {lm: i for i, lm in enumerate(v)} for d, v in lms.items()}
    for h, s in enumerate(samples):
        for a in predict_hand(model, s["image"], s["laterality"]).areas:
            if a["dimension"] in col and a["landmark"] in col[a["dimension"]]:
                out[a["dimension"]][h, col[a["dimension"]][a["landmark"]]] = int(a["label"])
    return out


def _fmt(table: dict[str, Interval]) -> dict[str, dict[str, float]]:
    return {k: v.as_dict() for k, v in table.items()}


# ---------------------------------------------------------------------------------------------
# Latency (unchanged from the earlier benchmark)
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _text_table(title: str, rows: dict[str, dict[str, dict[str, Interval]]]) -> str:
    lines = [title]
    for dim in ("erosion", "jsn"):
        lines.append(f"  {dim}: " + " | ".join(METRICS))
        for name, by_dim in rows.items():
            if dim in by_dim:
                lines.append(f"    {name:<38}" + " | ".join(str(by_dim[dim][m]) for m in METRICS))
    return "\n".join(lines)


def run(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--patients", type=int, default=60, help="training phantom patients (2 hands each)")
    p.add_argument("--test-patients", type=int, default=30, help="held-out patients, severity spread evenly")
    p.add_argument("--readers", type=int, default=3)
    p.add_argument("--rows", default=",".join(ROWS), help=f"training labels to run, of {', '.join(ROWS)}")
    p.add_argument("--mode", default="realistic", choices=["simple", "realistic"], help="phantom mode")
    p.add_argument("--width", type=int, default=PhantomConfig.width)
    p.add_argument("--height", type=int, default=PhantomConfig.height)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--time-budget", type=float, default=None, help="seconds of training per row at most")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 on a shared machine)")
    p.add_argument("--scheme", default="svdh")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--phantom-seed", type=int, default=0)
    p.add_argument("--replicates", type=int, default=1000, help="bootstrap replicates")
    p.add_argument("--table", action="store_true", help="also print plain-text tables")
    p.add_argument("--checkpoint", default=None, help="only measure this checkpoint's latency")
    p.add_argument("--latency-hands", type=int, default=0)
    p.add_argument("--recipe", default="crops", choices=["crops", "full"],
                   help="crops: the grader alone on cached crops at the landmark positions, trained to "
                        "convergence (modeling.ml.crops); full: both stages end to end (train.main)")
    p.add_argument("--max-epochs", type=int, default=crop_recipe.CropRecipe.max_epochs, help="crops recipe")
    p.add_argument("--patience", type=int, default=crop_recipe.CropRecipe.patience, help="crops recipe")
    p.add_argument("--crop-size", type=int, default=crop_recipe.CropRecipe.crop_size, help="crops recipe")
    p.add_argument("--cache", default=None, help="crops recipe: keep films' crops and reads in this file and reuse them")
    # Hands and feet side by side (modeling.ml.body_part_bench): localisation and grading per part.
    p.add_argument("--body-parts", default=None, help="e.g. hand,foot: benchmark these body parts of whole patients")
    p.add_argument("--foot-erosion-heads", default="range", help="body parts: range (0-10 head), sides (two 0-5 summed), or both")
    p.add_argument("--landmark-epochs", type=int, default=30, help="body parts: stage-1 epochs at most (0 skips localisation)")
    p.add_argument("--landmark-time-budget", type=float, default=None, help="body parts: seconds of stage-1 training per part")
    p.add_argument("--tolerance", type=float, default=0.1, help="body parts: localisation hit within this x part size")
    p.add_argument("--foot-min-steps", type=int, default=12, help="body parts: batches per foot grading epoch at least")
    p.add_argument("--overlay", default=None, help="body parts: write predicted landmarks on test films to PREFIX-{part}.png")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.body_parts:
        from .body_part_bench import run_parts

        return run_parts(a)
    result: dict[str, Any] = {}

    if a.checkpoint:
        ckpt = load_checkpoint(a.checkpoint)
        model = load_model(ckpt, a.device)
        fresh = list(samples_from_phantoms((max(a.latency_hands, 1) + 1) // 2, seed=a.phantom_seed + 7919))
        result["latency"] = latency(model, fresh[: max(a.latency_hands, 1)])
        _print("latency", result["latency"])
        return result

    rows = [r.strip() for r in a.rows.split(",") if r.strip()]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        p.error(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    scheme = load_scheme(DEFAULT_SCHEMES, a.scheme)
    dims = scheme_dimensions(scheme)
    lms = dimension_landmarks(scheme)
    phantom = PhantomConfig(width=a.width, height=a.height, mode=a.mode)
    panel = make_image_reader_panel(a.seed, a.readers)

    recipe = crop_recipe.CropRecipe(max_epochs=a.max_epochs, patience=a.patience, crop_size=a.crop_size, seed=a.seed)
    t0 = time.monotonic()
    cache = Path(a.cache) if a.cache else None
    if cache is not None and cache.exists() and a.recipe == "crops":
        with cache.open("rb") as handle:
            train, test, train_reads, test_reads, train_crops, test_crops = pickle.load(handle)
    else:
        train, train_vis = make_hands(a.patients, a.phantom_seed, phantom)
        # Test severities evenly spread from none to severe, shuffled so reading order is not severity.
        sev = np.random.default_rng([a.phantom_seed, 3]).permutation(np.linspace(0.2, 3.6, a.test_patients))
        test, test_vis = make_hands(a.test_patients, a.phantom_seed + 50_000, phantom, severities=sev)
        train_reads = read_hands(train, train_vis, panel, scheme, a.seed)
        test_reads = read_hands(test, test_vis, panel, scheme, a.seed + 1)
        if a.recipe == "crops":
            # Crops are cut once, without targets; each row below only swaps the targets in.
            train_crops = crop_recipe.crop_dataset([_without_truth(s) for s in train], scheme, recipe)
            test_crops = crop_recipe.crop_dataset([_without_truth(s) for s in test], scheme, recipe)
            # The films are not needed again: keep the truth for scoring, drop the pixels.
            train = [{k: v for k, v in s.items() if k != "image"} for s in train]
            test = [{k: v for k, v in s.items() if k != "image"} for s in test]
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                with cache.open("wb") as handle:
                    pickle.dump((train, test, train_reads, test_reads, train_crops, test_crops), handle)
    patients = [s["patient_id"] for s in test]
    truth = {d: truth_array(test, lms[d], d) for d, _ in dims}
    _print("data", {
        "mode": a.mode, "train_hands": len(train), "test_hands": len(test), "readers": [r.name for r in panel],
        "seconds": round(time.monotonic() - t0, 1),
        "test_support": {d: grade_support(truth[d], patients, k) for d, k in dims},
    })

    # Readers against truth, and the test consensus the originating study's table is scored on.
    reader_rows: dict[str, dict[str, dict[str, Interval]]] = {}
    consensus = {}
    for d, k in dims:
        for i, r in enumerate(panel):
            reader_rows.setdefault(r.name, {})[d] = metric_table(truth[d], test_reads[d][i], patients, k, replicates=a.replicates)
        flat = test_reads[d].reshape(len(panel), -1)
        consensus[d] = np.argmax(fuse_consensus(flat, k), axis=1).reshape(truth[d].shape)
        reader_rows.setdefault("test consensus (ordinal Dawid-Skene)", {})[d] = metric_table(truth[d], consensus[d], patients, k, replicates=a.replicates)
    for name, by_dim in reader_rows.items():
        _print("reader_vs_truth", {"reader": name, **{d: _fmt(v) for d, v in by_dim.items()}})

    model_rows: dict[str, dict[str, dict[str, Interval]]] = {}
    study: dict[str, dict[str, dict[str, Interval]]] = {}
    for row in rows:
        cfg = TrainConfig(
            n_patients=a.patients, epochs=a.epochs, time_budget_s=a.time_budget, device=a.device,
            num_threads=a.threads, scheme_key=a.scheme, seed=a.seed, phantom_seed=a.phantom_seed,
            val_fraction=0.15, test_fraction=0.0,
        )
        t1 = time.monotonic()
        row_samples = training_samples(train, train_reads, scheme, row)
        if a.recipe == "crops":
            data = crop_recipe.with_targets(train_crops, [s["targets"] for s in row_samples], scheme, recipe.label_smoothing)
            net, report = crop_recipe.train_grader(data, scheme, recipe, log=lambda point, row=row: _print("epoch", {"labels": row, **point}))
            pred = crop_recipe.grades_by_dimension(crop_recipe.predict_crops(net, test_crops, recipe), scheme)
            trained = {"epochs_run": report["epochs_run"], "best_epoch": report["best_epoch"],
                       "stopped_early": report["stopped_early"], "held_out_best": report["held_out_best"]}
        else:
            ckpt = main(cfg, row_samples)
            model = load_model(ckpt, a.device)
            pred = model_grades(model, test, scheme)
            trained = {"epochs_run": ckpt["metrics"]["epochs_run"]}
        model_rows[row] = {d: metric_table(truth[d], pred[d], patients, k, replicates=a.replicates) for d, k in dims}
        _print("model_vs_truth", {
            "labels": row, "recipe": a.recipe, **trained, "train_seconds": round(time.monotonic() - t1, 1),
            **{d: _fmt(v) for d, v in model_rows[row].items()},
        })
        if row == "consensus":
            study["model (consensus-trained)"] = {d: metric_table(consensus[d], pred[d], patients, k, replicates=a.replicates) for d, k in dims}
    for i, r in enumerate(panel):
        study[r.name] = {d: metric_table(consensus[d], test_reads[d][i], patients, k, replicates=a.replicates) for d, k in dims}
    for name, by_dim in study.items():
        _print("vs_consensus", {"who": name, **{d: _fmt(v) for d, v in by_dim.items()}})
    if a.table:
        print(_text_table("model against truth, by training labels", model_rows))
        print(_text_table("readers against truth", reader_rows))
        print(_text_table("against the test consensus (the originating study's table)", study))
    result.update(models=model_rows, readers=reader_rows, study=study, config=vars(a) | {"phantom": asdict(phantom)})
    if a.latency_hands and rows and a.recipe == "full":
        result["latency"] = latency(model, test[: a.latency_hands])
        _print("latency", result["latency"])
    return result


if __name__ == "__main__":
    run()
