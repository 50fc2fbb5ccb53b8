"""A timing of the numpy Dawid-Skene EM against crowd-kit's on simulated reader studies.

Run ``python -m consensus.bench_dawid_skene`` (``--help`` for the sizes); the reported tables came
from ``nice -n 5 .venv/bin/python -m consensus.bench_dawid_skene --readers 5`` and ``--readers 8``.
The studies come from `scoring.readers.label_study_simulate`, so one is fully determined by its
arguments and seed. A benchmark only: no production module imports it.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scoring.dawid_skene import DawidSkeneResult, dawid_skene
from scoring.readers import DEFAULT_PREVALENCE, LabelStudy, label_study_simulate


def _crowdkit(study: LabelStudy, n_iter: int, tol: float) -> tuple[float, NDArray[np.float64], Any]:
    """Seconds, posteriors on the full grid, and the fitted crowd-kit model."""
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    data = pd.DataFrame({"task": study.task, "worker": study.worker, "label": study.label})
    model = DawidSkene(n_iter=n_iter, tol=tol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas deprecation noise from crowd-kit
        started = time.perf_counter()
        model.fit(data)
        seconds = time.perf_counter() - started
    n_grades = study.confusion.shape[1]
    grid = model.probas_.reindex(index=range(study.truth.size), columns=range(n_grades))
    return seconds, grid.fillna(0.0).to_numpy(), model


def bench_size(n_labels: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The runs of one study size, as table rows."""
    study = label_study_simulate(n_labels, n_readers=args.readers, seed=args.seed)
    K = study.confusion.shape[1]
    n_tasks = study.truth.size

    def accuracy(labels: NDArray[np.int64]) -> float:
        return float(np.mean(labels == study.truth))

    def ours(**kwargs: Any) -> DawidSkeneResult:
        # Best of --repeat: other jobs share the CPUs, and the fastest run is the least disturbed.
        runs = [
            dawid_skene(study.task, study.worker, study.label, n_classes=K, **kwargs) for _ in range(args.repeat)
        ]
        return min(runs, key=lambda r: r.duration_s)

    ck_ok = n_labels <= args.ck_max_labels
    rows: list[dict[str, Any]] = []

    def against_crowdkit(n_iter: int, ours_posteriors: NDArray[np.float64]) -> dict[str, Any]:
        seconds, probas, model = _crowdkit(study, n_iter, -np.inf)
        diff = np.abs(probas - ours_posteriors).max()
        return {"ck_s": seconds, "diff": diff, "ck_acc": accuracy(_ck_labels(model, n_tasks))}

    fixed = ours(max_iter=100, tol=None, tol_posterior=None)
    row = {"run": "fixed 100 iterations", "ours_s": fixed.duration_s, "iters": 100, "acc": accuracy(fixed.labels)}
    ck_per_iteration = np.inf
    if ck_ok:
        row |= against_crowdkit(100, fixed.posteriors)
        ck_per_iteration = row["ck_s"] / 100
    rows.append(row)

    if ck_ok:
        seconds, _, model = _crowdkit(study, 100, 1e-5)
        iters, ck_acc = len(model.loss_history_), accuracy(_ck_labels(model, n_tasks))
        rows.append({"run": "crowd-kit default (tol 1e-5)", "ck_s": seconds, "iters": iters, "ck_acc": ck_acc})

    rule = ours()
    row = {"run": "stopping rule (cold)", "ours_s": rule.duration_s, "iters": rule.iterations}
    row |= {"conv": rule.converged, "acc": accuracy(rule.labels)}
    if ck_per_iteration * rule.iterations <= args.ck_seconds:
        row |= against_crowdkit(rule.iterations, rule.posteriors)
    rows.append(row)

    # Warm start: the study's last 1 % of tasks are new since the previous run.
    n_old = int(round(n_tasks / 1.01))
    old = study.task < n_old
    previous = dawid_skene(study.task[old], study.worker[old], study.label[old], n_classes=K, n_tasks=n_tasks)
    start = previous.posteriors.copy()
    start[n_old:] = np.nan
    warm = ours(init_posteriors=start)
    rows.append(
        {
            "run": "warm start, +1 % tasks",
            "ours_s": warm.duration_s,
            "iters": warm.iterations,
            "acc": accuracy(warm.labels),
            "diff": np.abs(warm.posteriors - rule.posteriors).max(),  # against the cold run
            "conv": warm.converged,
            # > 0: the warm start settled in a better optimum than the cold start (several exist)
            "dll": warm.log_likelihood[-1] - rule.log_likelihood[-1],
        }
    )
    for r in rows:
        r |= {"labels": study.n_labels, "patterns": rule.n_patterns}
    return rows


def _ck_labels(model: Any, n_tasks: int) -> NDArray[np.int64]:
    return model.labels_.reindex(range(n_tasks)).to_numpy(dtype=np.int64)


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = [  # key, heading, format
        ("labels", "labels", "d"), ("patterns", "patterns", "d"), ("run", "run", "s"),
        ("ours_s", "ours s", ".3f"), ("ck_s", "crowd-kit s", ".2f"), ("diff", "max|dpost|", ".1e"),
        ("iters", "iters", "d"), ("conv", "conv", "s"), ("acc", "acc ours", ".4f"), ("ck_acc", "acc ck", ".4f"),
        ("dll", "LL warm-cold", ".3g"),
    ]
    table = [[heading for _, heading, _ in columns]]
    for row in rows:
        row = {**row, "conv": {True: "yes", False: "no"}.get(row.get("conv"), "-")}
        table.append([format(row[key], fmt) if key in row else "-" for key, _, fmt in columns])
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for n, line in enumerate(table):
        print("  ".join(c.ljust(w) if i == 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))))
        if n == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="our runs are timed this often, best kept")
    parser.add_argument("--ck-max-labels", type=int, default=100_000, help="largest study crowd-kit runs on")
    parser.add_argument(
        "--ck-seconds", type=float, default=20.0,
        help="crowd-kit repeats the stopping-rule run only if its 100-iteration time predicts less than this",
    )
    args = parser.parse_args(argv)
    print(
        f"{args.readers} readers, 3 per task, 6 grades, prevalence {DEFAULT_PREVALENCE}, seed {args.seed}; "
        f"numpy {np.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; "
        f"ours: best of {args.repeat}, crowd-kit: one run"
    )
    rows = [row for n in args.sizes for row in bench_size(n, args)]
    print_table(rows)
    print(
        "max|dpost|: against crowd-kit at the same iterations; for the warm start, against the cold "
        "stopping-rule run, and LL warm-cold compares their final log-likelihoods (Dawid-Skene can have "
        "several optima). conv: the stopping rule fired before max_iter. '-': not run (crowd-kit above "
        "--ck-max-labels or --ck-seconds)."
    )


if __name__ == "__main__":
    main()
