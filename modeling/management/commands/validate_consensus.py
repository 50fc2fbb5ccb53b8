"""Check the consensus against a simulated study whose true grades and reader habits are known.

It lives in the modeling app because the truth comes from modeling's phantom grade sampler (the
readers from `scoring.readers`); the consensus app never imports modeling.
"""
from __future__ import annotations

import json

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser

from consensus import studies
from modeling.ml.phantoms import sample_patient_grades
from scoring.readers import SimulatedFilm, SimulatedStudy, make_reader_panel, study_simulate

DIMENSIONS = {"erosion": 5, "jsn": 4}


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
        parser.add_argument("--readers", type=int, default=5)
        parser.add_argument("--per-radiograph", type=int, default=3, help="readers per film (fewer than --readers: sparse)")
        parser.add_argument("--params", default=None, help='Dawid-Skene parameters as JSON, e.g. \'{"max_iter": 50}\'')

    def handle(self, *args, seed: int, radiographs: int, readers: int, per_radiograph: int, params: str | None, **options):
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
        self.stdout.write(f"{'dimension':<10} {'tasks':>6} {'labels':>7}  {'majority':>8}  {'dawid-skene':>11}  {'matrix MAD':>10}  iterations")
        for row in figures:
            self.stdout.write(
                f"{row.dimension:<10} {row.n_tasks:>6} {row.n_labels:>7}  {row.accuracy['MajorityVote']:>8.4f}  "
                f"{row.accuracy['DawidSkene']:>11.4f}  {row.confusion_mad:>10.4f}  {row.run.iterations}"
            )
