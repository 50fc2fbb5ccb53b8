"""Check the consensus against a simulated study whose true grades and reader habits are known.

It lives in the modeling app because the truth comes from modeling's phantom grade sampler (the
readers from `scoring.readers`); the consensus app never imports modeling.
"""
from __future__ import annotations

import json

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser

from consensus import studies
from consensus.validation_matrix import MATRIX_AGGREGATORS, default_verdicts, matrix_run, matrix_summary, matrix_table
from modeling.ml.phantoms import sample_patient_grades
from scoring.readers import SCENARIOS, SimulatedFilm, SimulatedStudy, make_reader_panel, study_simulate

DIMENSIONS = {"erosion": 5, "jsn": 4}
FOOT_DIMENSIONS = {"erosion": 10, "jsn": 4}


def simulated_study(*, seed: int, radiographs: int, readers: int, per_radiograph: int) -> SimulatedStudy:
    """Hands of `radiographs // 2` patients (both hands each) read by a panel of simulated readers."""
    rng = np.random.default_rng(seed)
    films = []
    for p in range((radiographs + 1) // 2):
        left, right = sample_patient_grades(rng)
        for laterality, grades in (("L", left), ("R", right)):
            if len(films) < radiographs:
                films.append(SimulatedFilm(pseudonym=f"SIM-{seed}-{p:05d}", laterality=laterality, truth=grades))
    panel = make_reader_panel(seed, n=readers, dimensions=DIMENSIONS)
    return study_simulate(
        films=films,
        readers=[reader.name for reader in panel],
        confusion={dim: np.stack([reader.confusion[dim] for reader in panel]) for dim in DIMENSIONS},
        per_film=per_radiograph,
        seed=seed,
    )


def simulated_foot_study(*, seed: int, radiographs: int, readers: int, per_radiograph: int) -> SimulatedStudy:
    """Feet of `radiographs // 2` patients (damage following their hands) read on the foot scales."""
    from modeling.ml.foot_phantoms import sample_foot_grades

    rng = np.random.default_rng([seed, 0xF007])
    films = []
    for p in range((radiographs + 1) // 2):
        left, right, _ = sample_foot_grades(rng, sample_patient_grades(rng))
        for laterality, grades in (("L", left), ("R", right)):
            if len(films) < radiographs:
                films.append(SimulatedFilm(pseudonym=f"SIMF-{seed}-{p:05d}", laterality=laterality, truth=grades, body_part="foot"))
    panel = make_reader_panel(seed, n=readers, dimensions=FOOT_DIMENSIONS)
    return study_simulate(
        films=films,
        readers=[reader.name for reader in panel],
        confusion={dim: np.stack([reader.confusion[dim] for reader in panel]) for dim in FOOT_DIMENSIONS},
        per_film=per_radiograph,
        seed=seed,
    )


def validation_slug(seed: int) -> str:
    return f"consensus-validation-{seed}"


class Command(BaseCommand):
    help = (
        "Simulate a sparse reader study with known truth, load it through the real import and consensus path "
        "and report majority vote and Dawid-Skene accuracy and the error of the estimated reader matrices. "
        "The project consensus-validation-SEED is deleted and rebuilt on every run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--radiographs", type=int, default=120, help="hand films (two per patient)")
        parser.add_argument("--foot-radiographs", type=int, default=60, help="foot films (two per patient), reported apart; 0: none")
        parser.add_argument("--readers", type=int, default=5)
        parser.add_argument("--per-radiograph", type=int, default=3, help="readers per film (fewer than --readers: sparse)")
        parser.add_argument("--params", default=None, help='Dawid-Skene parameters as JSON, e.g. \'{"max_iter": 50}\'')
        matrix = parser.add_argument_group("validation matrix (arrays only, no database)")
        matrix.add_argument("--matrix", action="store_true", help="run every scenario x aggregator over --seeds seeds")
        matrix.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 for the 95%% intervals")
        matrix.add_argument("--size", type=float, default=1.0, help="scale the number of areas of every scenario")
        matrix.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
        matrix.add_argument("--aggregators", nargs="+", choices=list(MATRIX_AGGREGATORS), default=list(MATRIX_AGGREGATORS))

    def handle(self, *args, seed: int, radiographs: int, readers: int, per_radiograph: int, params: str | None, **options):
        if options["matrix"]:
            self._matrix(seeds=options["seeds"], size=options["size"], scenarios=options["scenarios"], aggregators=options["aggregators"])
            return
        if readers < 3:
            raise CommandError("--readers must be at least 3")
        if not 1 <= per_radiograph <= readers:
            raise CommandError("--per-radiograph must lie in 1..--readers")
        if radiographs < 1:
            raise CommandError("--radiographs must be at least 1")
        parsed = json.loads(params) if params else None
        study = simulated_study(seed=seed, radiographs=radiographs, readers=readers, per_radiograph=per_radiograph)
        slug = validation_slug(seed)
        figures = studies.consensus_validate(study=study, slug=slug, params=parsed)
        self.stdout.write(
            f"Project {slug} (rebuilt): {radiographs} hand films, {readers} readers, {per_radiograph} per film, "
            f"{len(study.reads)} submitted readings"
        )
        feet = options["foot_radiographs"]
        if feet > 0:
            # Feet in a project of their own, so their figures never mix with the hands'.
            foot_study = simulated_foot_study(seed=seed, radiographs=feet, readers=readers, per_radiograph=per_radiograph)
            figures += studies.consensus_validate(study=foot_study, slug=f"{slug}-feet", params=parsed)
            self.stdout.write(f"Project {slug}-feet (rebuilt): {feet} foot films, {len(foot_study.reads)} submitted readings")
        self.stdout.write(f"{'dimension':<10} {'part':<5} {'tasks':>6} {'labels':>7}  {'majority':>8}  {'dawid-skene':>11}  {'matrix MAD':>10}  iterations")
        for row in figures:
            self.stdout.write(
                f"{row.dimension:<10} {row.body_part:<5} {row.n_tasks:>6} {row.n_labels:>7}  {row.accuracy['MajorityVote']:>8.4f}  "
                f"{row.accuracy['DawidSkene']:>11.4f}  {row.confusion_mad:>10.4f}  {row.run.iterations}"
            )

    def _matrix(self, *, seeds: int, size: float, scenarios: list[str], aggregators: list[str]) -> None:
        if seeds < 1:
            raise CommandError("--seeds must be at least 1")
        if size <= 0:
            raise CommandError("--size must be positive")
        for name in scenarios:
            self.stdout.write(f"- {name}: {SCENARIOS[name].description}")
        cells = matrix_run(
            seeds=range(seeds), scenarios=scenarios, aggregators=aggregators, size=size, progress=self.stderr.write
        )
        summary = matrix_summary(cells)
        self.stdout.write(f"Mean and 95% interval over {seeds} seeds; guard = share of seeds it tripped; s = seconds per fit")
        self.stdout.write(matrix_table(summary))
        notes = default_verdicts(summary)
        self.stdout.write("\n".join(notes) if notes else "OrdinalDawidSkene is at least as good as majority vote and crowd-kit DS everywhere, within the intervals.")
