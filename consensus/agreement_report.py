"""The agreement report of one scale: readers against the latest consensus, reader pairs, the
aggregator's estimated reader profiles, and reliability (Krippendorff's alpha, ICC, SDC).

Every figure here reveals other readers' grades, so callers show them to a project's leads and to
staff only (`annotation.selectors.project_list_led`); readers never get them, blinded or not.
Figures are plain dataclasses with NaN turned into None, ready for a template or JSON. The
statistics themselves are `scoring`'s.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from itertools import combinations

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.module_loading import import_string

from annotation.models import Assignment, Grade, JointArea, Project
from scoring import agreement, reliability

from .arrays import ExtraLabels
from .models import AgreementReportCache, ConsensusRun, ReaderEstimate
from .selectors import Scale, consensus_run_latest, rounded, scale_list


@dataclass(frozen=True)
class ReaderAgreementRow:
    """One reader (or pseudo-reader) against the consensus; confusion rows = consensus grade."""

    reader: str
    reader_id: int | None
    is_model: bool
    n: int
    weighted_accuracy: float | None
    within_one: float | None  # plain share of the reader's grades within one of the consensus
    within_one_balanced: float | None  # the same, averaged over consensus grades
    kappa: float | None
    confusion: list[list[int]]
    confusion_normalised: list[list[float]]


@dataclass(frozen=True)
class ReaderEstimateRow:
    """The aggregator's estimate of a reader's P(given | true), rows = true grade."""

    reader: str
    reader_id: int
    n_labels: int
    few_labels: bool
    confusion: list[list[float]]
    support: list[float]


@dataclass(frozen=True)
class ReaderPairRow:
    """Two readers on the units both graded; confusion rows = reader_a's grade."""

    reader_a: str
    reader_b: str
    n_shared: int
    exact: float | None
    kappa: float | None
    confusion: list[list[int]]


@dataclass(frozen=True)
class Reliability:
    alpha: float | None  # Krippendorff's alpha, ordinal, over every (radiograph, area)
    alpha_units: int
    # ICC(2,1) of per-radiograph total scores (sum over the scale's areas, or the group's)
    icc: float | None = None
    icc_ci_low: float | None = None
    icc_ci_high: float | None = None
    sem: float | None = None
    sdc: float | None = None  # smallest detectable change, in total-score points
    icc_subjects: int = 0
    icc_readers: list[str] = field(default_factory=list)
    icc_note: str = ""


@dataclass(frozen=True)
class AgreementReport:
    scale: Scale
    group: str | None
    run: ConsensusRun | None
    n_units: int
    readers: list[ReaderAgreementRow]
    estimates: list[ReaderEstimateRow]
    pairs: list[ReaderPairRow]
    reliability: Reliability


@dataclass
class _Units:
    units: list[tuple[int, int]]
    groups: list[str]
    readers: list[tuple[str, int | None, bool]]  # (name, user id, is_model)
    ratings: np.ndarray  # readers x units, NaN gaps
    consensus: np.ndarray  # one grade per unit, NaN where the latest run has none


def _areas_of(project: Project, scale: Scale, group: str | None) -> dict[int, JointArea]:
    areas = JointArea.objects.filter(
        scheme_id=project.scheme_id, dimension=scale.dimension, body_part=scale.body_part, max_grade=scale.max_grade
    )
    if group:
        areas = areas.filter(group=group)
    return {area.pk: area for area in areas}


def _collect_units(
    *, project: Project, scale: Scale, group: str | None, run: ConsensusRun | None, extra_readers: ExtraLabels | None
) -> _Units:
    areas = _areas_of(project, scale, group)
    rows = Grade.objects.filter(
        assignment__radiograph__project=project,
        assignment__status=Assignment.Status.SUBMITTED,
        area_id__in=list(areas),
    ).values_list("assignment__radiograph_id", "area_id", "assignment__reader_id", "value")
    by_reader: dict[int, dict[tuple[int, int], int]] = defaultdict(dict)
    for radiograph_id, area_id, reader_id, value in rows:
        by_reader[reader_id][(radiograph_id, area_id)] = value
    names = dict(get_user_model().objects.filter(pk__in=list(by_reader)).values_list("pk", "username"))
    readers: list[tuple[str, int | None, bool]] = sorted(
        ((names.get(pk, str(pk)), pk, False) for pk in by_reader), key=lambda r: r[0]
    )
    grades_of: dict[str, Mapping[tuple[int, int], int]] = {name: by_reader[pk] for name, pk, _ in readers}
    for name, labels in (extra_readers or {}).items():
        readers.append((str(name), None, True))
        grades_of[str(name)] = {key: value for key, value in labels.items() if key[1] in areas}
    human_units = {key for pk in by_reader for key in by_reader[pk]}
    units = sorted(human_units)
    index = {unit: j for j, unit in enumerate(units)}
    ratings = np.full((len(readers), len(units)), np.nan)
    for i, (name, _pk, _model) in enumerate(readers):
        for key, value in grades_of[name].items():
            if key in index:
                ratings[i, index[key]] = value
    consensus = np.full(len(units), np.nan)
    if run is not None:
        for radiograph_id, area_id, label in run.labels.filter(area_id__in=list(areas)).values_list(
            "radiograph_id", "area_id", "label"
        ):
            j = index.get((radiograph_id, area_id))
            if j is not None:
                consensus[j] = label
    return _Units(
        units=units,
        groups=[areas[area_id].group for _r, area_id in units],
        readers=readers,
        ratings=ratings,
        consensus=consensus,
    )


def _reader_rows(data: _Units, n_grades: int) -> list[ReaderAgreementRow]:
    names = [name for name, _pk, _model in data.readers]
    stats = agreement.reader_vs_consensus(data.ratings, data.consensus, n_grades, readers=names)
    out = []
    for (name, pk, is_model), row in zip(data.readers, data.ratings):
        figures = stats[name]
        keep = ~np.isnan(row) & ~np.isnan(data.consensus)
        kappa = (
            agreement.quadratic_weighted_kappa(data.consensus[keep], row[keep], n_grades) if keep.any() else float("nan")
        )
        out.append(
            ReaderAgreementRow(
                reader=name,
                reader_id=pk,
                is_model=is_model,
                n=figures.n_units,
                weighted_accuracy=rounded(figures.weighted_accuracy),
                within_one=rounded(figures.within_one),
                within_one_balanced=rounded(figures.within_one_balanced),
                kappa=rounded(kappa),
                confusion=figures.confusion.tolist(),
                confusion_normalised=[[round(float(x), 4) for x in r] for r in figures.confusion_normalised],
            )
        )
    return out


def _pair_rows(data: _Units, n_grades: int) -> list[ReaderPairRow]:
    out = []
    for i, j in combinations(range(len(data.readers)), 2):
        a, b = data.ratings[i], data.ratings[j]
        both = ~np.isnan(a) & ~np.isnan(b)
        n = int(both.sum())
        cm = agreement.confusion_matrix(a[both], b[both], n_grades)
        kappa = agreement.quadratic_weighted_kappa(a[both], b[both], n_grades) if n >= 2 else float("nan")
        out.append(
            ReaderPairRow(
                reader_a=data.readers[i][0],
                reader_b=data.readers[j][0],
                n_shared=n,
                exact=rounded(float(np.trace(cm)) / n) if n else None,
                kappa=rounded(kappa),
                confusion=cm.tolist(),
            )
        )
    return out


def _complete_block(totals: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """The readers and radiographs that form the largest complete subjects x readers block.

    ICC(2,1) needs every reader on every subject, but readers are assigned k at a time, so the
    raw layout has gaps. Readers are dropped one at a time, each time the one whose removal leaves
    the most information (complete subjects times readers minus one), keeping the best block seen.
    """
    keep = list(range(len(names)))
    best: tuple[int, list[int]] = (-1, [])
    while len(keep) >= 2:
        complete = ~np.isnan(totals[:, keep]).any(axis=1)
        score = int(complete.sum()) * (len(keep) - 1)
        if complete.sum() >= 2 and score > best[0]:
            best = (score, list(keep))
        if len(keep) == 2:
            break
        options = []
        for drop in keep:
            rest = [r for r in keep if r != drop]
            options.append((int((~np.isnan(totals[:, rest]).any(axis=1)).sum()), -drop, rest))
        keep = max(options)[2]
    if best[0] < 0:
        return np.zeros((0, 0)), []
    cols = best[1]
    rows = ~np.isnan(totals[:, cols]).any(axis=1)
    return totals[np.ix_(rows, cols)], [names[c] for c in cols]


def _reliability(data: _Units, project: Project, scale: Scale, group: str | None) -> Reliability:
    human = [i for i, (_n, _pk, is_model) in enumerate(data.readers) if not is_model]
    ratings = data.ratings[human]
    alpha = reliability.krippendorff_alpha(ratings, level="ordinal") if ratings.size else float("nan")
    alpha_units = int(((~np.isnan(ratings)).sum(axis=0) >= 2).sum()) if ratings.size else 0

    # Per-radiograph totals: a reader's total counts only if they graded every area of the scale.
    areas = _areas_of(project, scale, group)
    n_areas = len(areas)
    # Totals in grade points: a level counts its step (Genant's half grades) times the area's weight.
    points = {pk: float(area.grade_step) * area.total_weight for pk, area in areas.items()}
    radiographs = sorted({r for r, _a in data.units})
    r_index = {r: i for i, r in enumerate(radiographs)}
    sums = np.zeros((len(radiographs), len(human)))
    counts = np.zeros((len(radiographs), len(human)))
    for j, (radiograph_id, area_id) in enumerate(data.units):
        for col, i in enumerate(human):
            value = data.ratings[i, j]
            if not np.isnan(value):
                sums[r_index[radiograph_id], col] += value * points.get(area_id, 1.0)
                counts[r_index[radiograph_id], col] += 1
    totals = np.where(counts == n_areas, sums, np.nan)
    names = [data.readers[i][0] for i in human]
    block, block_names = _complete_block(totals, names) if len(human) >= 2 else (np.zeros((0, 0)), [])
    base = {"alpha": rounded(alpha), "alpha_units": alpha_units}
    if block.shape[0] < 2 or block.shape[1] < 2:
        return Reliability(**base, icc_note="ICC needs at least two radiographs read completely by the same two readers.")
    if np.all(block == block[0, 0]):
        return Reliability(
            **base, icc_subjects=block.shape[0], icc_readers=block_names,
            icc_note="Every total is the same score; ICC is undefined.",
        )
    result = reliability.icc_2_1(block)
    return Reliability(
        **base,
        icc=rounded(result.icc),
        icc_ci_low=rounded(result.ci_low),
        icc_ci_high=rounded(result.ci_high),
        sem=rounded(result.sem, 2),
        sdc=rounded(result.sdc, 2),
        icc_subjects=result.n_subjects,
        icc_readers=block_names,
    )


def _estimate_rows(run: ConsensusRun | None, scale: Scale) -> list[ReaderEstimateRow]:
    if run is None:
        return []
    estimates = ReaderEstimate.objects.filter(run=run, body_part=scale.body_part).select_related("reader")
    rows = [
        ReaderEstimateRow(
            reader=estimate.reader.get_username(),
            reader_id=estimate.reader_id,
            n_labels=estimate.n_labels,
            few_labels=estimate.few_labels,
            confusion=[[round(float(x), 4) for x in row] for row in estimate.confusion],
            support=[round(float(x), 2) for x in estimate.support],
        )
        for estimate in estimates
        if len(estimate.confusion) == scale.n_grades
    ]
    return sorted(rows, key=lambda r: r.reader)


def agreement_report(
    *, project: Project, scale: Scale, group: str | None = None, extra_readers: ExtraLabels | None = None
) -> AgreementReport:
    """Readers against the latest consensus, against each other, and overall reliability.

    `group` restricts every figure to one joint group (pip, mcp, wrist, ...), except the
    aggregator's estimated reader profiles, which are fitted on the whole scale. `extra_readers`
    adds pseudo-readers (a model version) to the reader and pair tables; they stay out of alpha
    and ICC, which describe the human readers.
    """
    run = consensus_run_latest(project=project, dimension=scale.dimension)
    data = _collect_units(project=project, scale=scale, group=group, run=run, extra_readers=extra_readers)
    return AgreementReport(
        scale=scale,
        group=group,
        run=run,
        n_units=len(data.units),
        readers=_reader_rows(data, scale.n_grades),
        estimates=_estimate_rows(run, scale),
        pairs=_pair_rows(data, scale.n_grades),
        reliability=_reliability(data, project, scale, group),
    )


def model_readers(*, project: Project) -> ExtraLabels:
    """The serving model as a marked pseudo-reader, from the app named by MODEL_READER_PROVIDER
    (this app never imports modeling); {} without a provider or an active version."""
    provider = getattr(settings, "MODEL_READER_PROVIDER", None)
    return import_string(provider)(project=project) if provider else {}


def report_to_json(report: AgreementReport) -> dict[str, Any]:
    data = asdict(report)
    data.pop("run")
    return data


def report_from_json(data: Mapping[str, Any], *, run: ConsensusRun | None) -> AgreementReport:
    return AgreementReport(
        scale=Scale(**data["scale"]),
        group=data["group"],
        run=run,
        n_units=data["n_units"],
        readers=[ReaderAgreementRow(**row) for row in data["readers"]],
        estimates=[ReaderEstimateRow(**row) for row in data["estimates"]],
        pairs=[ReaderPairRow(**row) for row in data["pairs"]],
        reliability=Reliability(**data["reliability"]),
    )


def agreement_report_cached(*, project: Project, scale: Scale) -> tuple[AgreementReport, list[str]] | None:
    """The stored whole-scale report of the latest consensus run and its pseudo-readers, if kept."""
    run = consensus_run_latest(project=project, dimension=scale.dimension)
    if run is None:
        return None
    cache = AgreementReportCache.objects.filter(run=run, body_part=scale.body_part, max_grade=scale.max_grade).first()
    if cache is None:
        return None
    return report_from_json(cache.report, run=run), list(cache.model_readers)
