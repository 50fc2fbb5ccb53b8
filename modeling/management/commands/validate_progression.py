"""Check change scores, their reliability and the two fusions against a simulated longitudinal study.

Patients come from `modeling.ml.longitudinal` (true grades per visit, progressing at patient rates),
readers from `scoring.series_readers` (each reading mode's habits); the study goes through the real
import, grading, submission and consensus path (`consensus.progression_study`). It lives in the
modeling app because the truth comes from modeling's phantoms; the consensus app never imports them.
"""
from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser

from consensus.progression_study import ProgressionFigures, SeriesFilm, SeriesStudy, progression_validate
from modeling.ml.longitudinal import LongitudinalPatient, sample_cohort, true_change
from scoring.readers import SimulatedRead
from scoring.series_readers import MODES, SeriesReader, make_series_panel, read_series

MAX_GRADE = {"erosion": 5, "jsn": 4}
BASELINE_DATE = dt.date(2020, 1, 6)


def series_study(*, cohort: list[LongitudinalPatient], panel: list[SeriesReader], mode: str, seed: int) -> SeriesStudy:
    """Every reader reads every patient's series (both hands) in `mode`."""
    rng = np.random.default_rng([seed, MODES.index(mode)])
    films: list[SeriesFilm] = []
    reads: list[SimulatedRead] = []
    for patient in cohort:
        for laterality in ("L", "R"):
            series = patient.grades(laterality)
            first = len(films)
            for visit, grades in zip(patient.visits, series):
                date = BASELINE_DATE + dt.timedelta(days=round(visit.months * 30.44))
                films.append(SeriesFilm(patient.pseudonym, laterality, visit.timepoint, date, grades))
            for r, reader in enumerate(panel):
                given: list[dict[str, dict[str, int]]] = [{} for _ in series]
                for dimension, top in MAX_GRADE.items():
                    joints = list(series[0][dimension])
                    true = np.array([[grades[dimension][j] for j in joints] for grades in series])
                    read = read_series(reader, true, top, mode, rng)  # type: ignore[arg-type]
                    for t in range(len(series)):
                        given[t][dimension] = {j: int(g) for j, g in zip(joints, read[t])}
                reads += [SimulatedRead(film=first + t, reader=r, grades=given[t]) for t in range(len(series))]
    truth = {p.pseudonym: true_change(p, 0, len(p.visits) - 1)["total"] for p in cohort}
    return SeriesStudy(films=films, readers=[r.name for r in panel], reads=reads, reading_mode=mode, true_change=truth)


def _f(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def figures_table(rows: list[ProgressionFigures]) -> str:
    header = f"{'reading mode':<14} {'source':<13} {'ICC of change [95% CI]':<24} {'SDC':>5} {'sens':>5} {'spec':>5} {'MAE':>5} {'regr':>5}"
    lines = [header, "-" * len(header)]
    for r in rows:
        icc = f"{_f(r.icc)} [{_f(r.icc_low)}, {_f(r.icc_high)}]" if r.source == "readers" else ""
        lines.append(
            f"{r.mode:<14} {r.source:<13} {icc:<24} {_f(r.sdc):>5} {_f(r.sensitivity):>5} {_f(r.specificity):>5} "
            f"{_f(r.mae):>5} {_f(r.regression_share):>5}"
        )
    return "\n".join(lines)


def plot_write(path: Path, plots: dict[str, dict[str, list[tuple[float, float]]]], seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(plots), figsize=(5 * len(plots), 4.4), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (mode, curves) in zip(axes, plots.items()):
        for name, points in curves.items():
            if not points:
                continue
            p, c = zip(*points)
            style = {"truth": dict(color="black", lw=2.2), "per_film": dict(color="tab:blue", lw=2), "longitudinal": dict(color="tab:red", lw=2)}
            ax.plot(p, c, label=name.replace("_", " "), **style.get(name, dict(lw=0.9, alpha=0.7, ls="--")))
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_title(mode.replace("_", " "))
        ax.set_xlabel("cumulative probability")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("change in total SvdH hand score, baseline to last visit")
    axes[-1].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Cumulative probability of change (validate_progression --seed {seed})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


class Command(BaseCommand):
    help = (
        "Simulate a longitudinal study (patients with 2-4 visits, readers in each reading mode), load it through "
        "the real import, grading and consensus path, and report ICC and SDC of change, progressor sensitivity and "
        "specificity against the true progression and the mean absolute error of change, per reading mode and fusion. "
        "Projects progression-validation-SEED-MODE are deleted and rebuilt on every run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--patients", type=int, default=40)
        parser.add_argument("--readers", type=int, default=3)
        parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
        parser.add_argument("--plot", type=Path, default=None, help="write the cumulative probability plot as a PNG here")

    def handle(self, *args, seed: int, patients: int, readers: int, modes: list[str], plot: Path | None, **options):
        if patients < 3:
            raise CommandError("--patients must be at least 3")
        if readers < 2:
            raise CommandError("--readers must be at least 2 (reliability of change compares readers)")
        cohort = sample_cohort(seed, patients, prefix="PROG")
        panel = make_series_panel(seed, n=readers)
        n_films = sum(2 * len(p.visits) for p in cohort)
        n_true = sum(1 for p in cohort if true_change(p, 0, len(p.visits) - 1)["total"] > 0)
        self.stdout.write(
            f"{patients} patients ({sum(p.rapid for p in cohort)} rapid progressors drawn, {n_true} with any true "
            f"progression), {n_films} hand films, {readers} readers reading every film"
        )
        rows: list[ProgressionFigures] = []
        plots: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for mode in modes:
            study = series_study(cohort=cohort, panel=panel, mode=mode, seed=seed)
            figures, curves = progression_validate(study=study, slug=f"progression-validation-{seed}-{mode.replace('_', '-')}")
            rows += figures
            plots[mode] = curves
        self.stdout.write(figures_table(rows))
        self.stdout.write(
            "ICC and SDC of change between readers (baseline to last visit, total score); SDC by Bruynesteyn, for one "
            "reader (readers) or the mean of all (fusions); sens/spec: change > SDC against any true progression; "
            "MAE: mean |change - true change|; regr: share of intervals with a total change below -0.5."
        )
        if plot is not None:
            plot_write(plot, plots, seed)
            self.stdout.write(f"Cumulative probability plot written to {plot}")
