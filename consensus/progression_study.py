"""A simulated longitudinal study through the real path: import the films of every patient's visits,
save and submit each reader's grades, fuse per film and longitudinally, and score the change scores
against the known true change. Not used by the product's own flows (`manage.py validate_progression`).
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from annotation.models import JointArea, Project
from annotation.services import GradeInput, assignment_submit, assignments_create, grade_bulk_save, project_create, radiograph_add
from scoring import progression as pg
from scoring.readers import SimulatedRead

from .models import ConsensusRun, ConsensusSettings, Fusion
from .progression import CONSENSUS, ProgressionReport, progression_report, sdc_of
from .services import ConsensusError, consensus_compute
from .studies import _placeholder_png, _project_remove, _study_readers


@dataclass(frozen=True)
class SeriesFilm:
    """One film of a simulated series, with its true grades ({dimension: {joint: grade}})."""

    pseudonym: str
    laterality: str
    timepoint: str
    acquired_on: dt.date
    truth: dict[str, dict[str, int]]


@dataclass
class SeriesStudy:
    films: list[SeriesFilm]
    readers: list[str]
    reads: list[SimulatedRead]  # every reader reads every film here
    reading_mode: str
    # True baseline-to-last total change (both hands) per patient pseudonym.
    true_change: dict[str, float]


@dataclass(frozen=True)
class ProgressionFigures:
    """One reading mode and one source (a fusion, or the readers one by one) against the truth."""

    mode: str
    source: str  # "per_film", "longitudinal" or "readers"
    icc: float
    icc_low: float
    icc_high: float
    sdc: float  # Bruynesteyn SDC of the source's change (k readers for a fusion, 1 for a reader)
    sensitivity: float  # change > SDC among true progressors (true change > 0)
    specificity: float  # change <= SDC among true non-progressors
    mae: float  # mean |estimated - true| baseline-to-last total change
    regression_share: float  # share of intervals with total change < -0.5
    n_patients: int
    n_true_progressors: int


def series_study_import(*, study: SeriesStudy, slug: str, name: str) -> Project:
    """Films, dates, assignments and submitted grades of `study`, in a rebuilt project `slug`."""
    _project_remove(slug=slug)
    project = project_create(name=name, slug=slug, readers_per_radiograph=len(study.readers), reading_mode=study.reading_mode)
    ConsensusSettings.objects.create(project=project, auto_recompute=False)
    users = _study_readers(project=project, usernames=[f"{slug}-{reader}" for reader in study.readers])
    areas = {
        (area.dimension, area.joint.name): area
        for area in JointArea.objects.filter(scheme_id=project.scheme_id, body_part="hand").select_related("joint")
    }
    films = [
        radiograph_add(
            project=project, pseudonym=film.pseudonym, laterality=film.laterality,
            image_bytes=_placeholder_png(f"{slug}/{i}"), image_suffix="png", width=8, height=8,
            timepoint=film.timepoint, acquired_on=film.acquired_on,
        ).radiograph
        for i, film in enumerate(study.films)
    ]  # fmt: skip
    for read in study.reads:
        (assignment,) = assignments_create(radiograph=films[read.film], readers=[users[read.reader]])
        items = [
            GradeInput(area=areas[(dimension, joint)], value=value, version=0)
            for dimension, grades in read.grades.items()
            for joint, value in grades.items()
            if (dimension, joint) in areas
        ]
        grade_bulk_save(assignment=assignment, user=users[read.reader], items=items)
        assignment_submit(assignment=assignment)
    return project


def _against_truth(
    *, report: ProgressionReport, study: SeriesStudy, keys: Sequence[str], k: int, mode: str, source: str
) -> ProgressionFigures:
    rel = report.reliability
    names = dict(report.series.patients)
    sdc = math.nan if rel is None else sdc_of(rel, k=k)
    errors, sens, spec, regress = [], [], [], []
    for key in keys:
        changes = report.primary.get(key, {})
        est = np.array([changes[p] for p in changes], dtype=float)
        true = np.array([study.true_change[names[p]] for p in changes], dtype=float)
        errors.append(float(np.abs(est - true).mean()))
        # A true progressor is any patient whose true score rose (change >= 1 grade step).
        truth_flag = true > 0
        called = est > (sdc if not math.isnan(sdc) else pg.ANY_PROGRESSION)
        sens.append(float((called & truth_flag).sum() / max(truth_flag.sum(), 1)))
        spec.append(float((~called & ~truth_flag).sum() / max((~truth_flag).sum(), 1)))
        totals = [r.total for r in report.changes if r.source == key]
        regress.append(float(np.mean(np.array(totals) < -pg.ANY_PROGRESSION)) if totals else math.nan)
    n_true = int(sum(1 for p in study.true_change.values() if p > 0))
    return ProgressionFigures(
        mode=mode,
        source=source,
        icc=rel.icc.icc if rel else math.nan,
        icc_low=rel.icc.ci_low if rel else math.nan,
        icc_high=rel.icc.ci_high if rel else math.nan,
        sdc=sdc,
        sensitivity=float(np.mean(sens)),
        specificity=float(np.mean(spec)),
        mae=float(np.mean(errors)),
        regression_share=float(np.nanmean(regress)),
        n_patients=len(study.true_change),
        n_true_progressors=n_true,
    )


def progression_validate(*, study: SeriesStudy, slug: str) -> tuple[list[ProgressionFigures], dict[str, list[tuple[float, float]]]]:
    """Import `study`, fuse per film and longitudinally, and score each against the true change.

    Returns the figures (readers one by one, then each fusion) and the cumulative probability
    plot points per source (reader names, "per_film", "longitudinal", "truth"). The project keeps
    the longitudinal run as its latest consensus.
    """
    project = series_study_import(study=study, slug=slug, name=f"Progression validation ({slug})")
    rows: list[ProgressionFigures] = []
    plots: dict[str, list[tuple[float, float]]] = {}
    for fusion in (Fusion.PER_FILM, Fusion.LONGITUDINAL):
        for dimension in ("erosion", "jsn"):
            run = consensus_compute(project=project, dimension=dimension, fusion=fusion, compare_with=())
            if run.status != ConsensusRun.Status.OK:
                raise ConsensusError(f"{fusion} {dimension} consensus failed: {run.error.splitlines()[0]}")
        report = progression_report(project=project)
        readers = [key for key in report.series.sources if key != CONSENSUS]
        if fusion == Fusion.PER_FILM:
            rows.append(_against_truth(report=report, study=study, keys=readers, k=1, mode=study.reading_mode, source="readers"))
            for summary in report.summaries:
                if summary.key != CONSENSUS:
                    plots[summary.label.removeprefix(f"{slug}-")] = summary.plot
        rows.append(_against_truth(report=report, study=study, keys=[CONSENSUS], k=len(readers), mode=study.reading_mode, source=str(fusion)))
        plots[str(fusion)] = next(s.plot for s in report.summaries if s.key == CONSENSUS)
    p, c = pg.cumulative_probability(list(study.true_change.values()))
    plots["truth"] = list(zip(p.tolist(), c.tolist()))
    return rows, plots
