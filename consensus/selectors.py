"""Reads of the consensus app: runs, agreement figures, the adjudication queue and exports.

Every figure here reveals other readers' grades, so callers show them to a project's leads and to
staff only (`annotation.selectors.project_list_led`); readers never get them, blinded or not.
Figures are plain dataclasses with NaN turned into None, ready for a template or JSON.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from annotation.models import Assignment, Dimension, Grade, JointArea, Project, Radiograph
from scoring import agreement, reliability

from .models import AdjudicatedLabel, ConsensusLabel, ConsensusRun, ConsensusSettings, ReaderEstimate

# A pseudo-reader's grades, e.g. a model version's: {name: {(radiograph_id, area_id): grade}}.
ExtraReaders = Mapping[str, Mapping[tuple[int, int], int]]

GROUP_ORDER = ("pip", "mcp", "wrist", "mtp", "dip")
BODY_PART_PLURAL = {"hand": "hands", "foot": "feet"}


def _num(value: float | None, digits: int = 4) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


@dataclass(frozen=True)
class Scale:
    """One grade grid: a dimension on one body part (hands erosion 0-5, feet erosion 0-10, ...)."""

    dimension: str
    body_part: str
    max_grade: int

    @property
    def key(self) -> str:
        return f"{self.dimension}-{self.body_part}"

    @property
    def n_grades(self) -> int:
        return self.max_grade + 1

    @property
    def title(self) -> str:
        return f"{Dimension(self.dimension).label}, {BODY_PART_PLURAL.get(self.body_part, self.body_part)} (0-{self.max_grade})"


def side_code(radiograph: Radiograph) -> str:
    """RA2-DREAM image suffix: LH, RH, LF, RF."""
    return f"{radiograph.laterality}{'F' if radiograph.body_part == 'foot' else 'H'}"


def scale_list(*, project: Project) -> list[Scale]:
    """The grade grids of the project's scheme, for the body parts it holds (hands when empty)."""
    parts = set(project.radiographs.values_list("body_part", flat=True)) or {"hand"}
    found = (
        JointArea.objects.filter(scheme_id=project.scheme_id, body_part__in=parts)
        .values_list("dimension", "body_part", "max_grade")
        .order_by()
        .distinct()
    )
    order = {"hand": 0, "foot": 1, "erosion": 0, "jsn": 1}
    return sorted((Scale(*row) for row in found), key=lambda s: (order.get(s.body_part, 9), order.get(s.dimension, 9), s.max_grade))


def group_list(*, project: Project) -> list[str]:
    parts = set(project.radiographs.values_list("body_part", flat=True)) or {"hand"}
    groups = set(
        JointArea.objects.filter(scheme_id=project.scheme_id, body_part__in=parts).values_list("group", flat=True)
    )
    return sorted(groups, key=lambda g: (GROUP_ORDER.index(g) if g in GROUP_ORDER else len(GROUP_ORDER), g))


def consensus_settings_for(*, project: Project) -> ConsensusSettings | None:
    return ConsensusSettings.objects.filter(project=project).first()


def consensus_run_list(*, project: Project) -> QuerySet[ConsensusRun]:
    return ConsensusRun.objects.filter(project=project).order_by("-created_at", "-id")


def consensus_run_latest(*, project: Project, dimension: str, ok_only: bool = True) -> ConsensusRun | None:
    runs = ConsensusRun.objects.filter(project=project, dimension=dimension)
    if ok_only:
        runs = runs.filter(status=ConsensusRun.Status.OK)
    return runs.order_by("-version").first()


def consensus_label_list(*, run: ConsensusRun) -> QuerySet[ConsensusLabel]:
    return run.labels.select_related("area", "radiograph__visit__patient")


# --------------------------------------------------------------------------- agreement


@dataclass(frozen=True)
class ReaderAgreementRow:
    """One reader (or pseudo-reader) against the consensus; confusion rows = consensus grade."""

    reader: str
    reader_id: int | None
    is_model: bool
    n: int
    weighted_accuracy: float | None
    within_one: float | None
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
    *, project: Project, scale: Scale, group: str | None, run: ConsensusRun | None, extra_readers: ExtraReaders | None
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
                weighted_accuracy=_num(figures.weighted_accuracy),
                within_one=_num(figures.within_one),
                kappa=_num(kappa),
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
                exact=_num(float(np.trace(cm)) / n) if n else None,
                kappa=_num(kappa),
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
    n_areas = len(_areas_of(project, scale, group))
    radiographs = sorted({r for r, _a in data.units})
    r_index = {r: i for i, r in enumerate(radiographs)}
    sums = np.zeros((len(radiographs), len(human)))
    counts = np.zeros((len(radiographs), len(human)))
    for j, (radiograph_id, _area) in enumerate(data.units):
        for col, i in enumerate(human):
            value = data.ratings[i, j]
            if not np.isnan(value):
                sums[r_index[radiograph_id], col] += value
                counts[r_index[radiograph_id], col] += 1
    totals = np.where(counts == n_areas, sums, np.nan)
    names = [data.readers[i][0] for i in human]
    block, block_names = _complete_block(totals, names) if len(human) >= 2 else (np.zeros((0, 0)), [])
    base = {"alpha": _num(alpha), "alpha_units": alpha_units}
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
        icc=_num(result.icc),
        icc_ci_low=_num(result.ci_low),
        icc_ci_high=_num(result.ci_high),
        sem=_num(result.sem, 2),
        sdc=_num(result.sdc, 2),
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
    *, project: Project, scale: Scale, group: str | None = None, extra_readers: ExtraReaders | None = None
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


# --------------------------------------------------------------------------- aggregator comparison


@dataclass(frozen=True)
class ChangedTask:
    patient: str
    side: str
    area_code: str
    label: int
    others: dict[str, int]  # only the aggregators that pick another grade
    grades: list[int]  # every aggregator's grade, in the comparison's aggregator order


@dataclass(frozen=True)
class AggregatorComparison:
    dimension: str
    run: ConsensusRun
    aggregators: list[str]
    n_tasks: int
    n_changed: int  # tasks where at least one other aggregator picks another grade
    matrix: list[list[int | None]]  # label changes between each pair, aggregators x aggregators
    examples: list[ChangedTask]

    @property
    def dimension_label(self) -> str:
        return Dimension(self.dimension).label

    @property
    def rows(self) -> list[tuple[str, list[int | None]]]:
        return list(zip(self.aggregators, self.matrix))


def aggregator_comparison(*, project: Project, examples: int = 10) -> list[AggregatorComparison]:
    """From the latest run of each dimension: how many labels change between aggregators."""
    out = []
    for dimension in Dimension.values:
        run = consensus_run_latest(project=project, dimension=dimension)
        if run is None or not run.comparison.get("aggregators"):
            continue
        names = run.comparison["aggregators"]
        position = {name: i for i, name in enumerate(names)}
        matrix: list[list[int | None]] = [[None for _b in names] for _a in names]
        for a, b, n in run.comparison["pairs"]:
            matrix[position[a]][position[b]] = matrix[position[b]][position[a]] = n
        changed = run.comparison.get("changed", [])[:examples]
        radiographs = Radiograph.objects.select_related("visit__patient").in_bulk([c["radiograph_id"] for c in changed])
        areas = JointArea.objects.in_bulk([c["area_id"] for c in changed])
        out.append(
            AggregatorComparison(
                dimension=dimension,
                run=run,
                aggregators=names,
                n_tasks=run.comparison.get("n_tasks", 0),
                n_changed=run.comparison.get("n_changed", 0),
                matrix=matrix,
                examples=[
                    ChangedTask(
                        patient=radiographs[c["radiograph_id"]].visit.patient.pseudonym,
                        side=side_code(radiographs[c["radiograph_id"]]),
                        area_code=areas[c["area_id"]].code,
                        label=c["label"],
                        others=c["others"],
                        grades=[c["others"].get(name, c["label"]) for name in names],
                    )
                    for c in changed
                    if c["radiograph_id"] in radiographs and c["area_id"] in areas
                ],
            )
        )
    return out


# --------------------------------------------------------------------------- adjudication queue


@dataclass(frozen=True)
class DisputedItem:
    radiograph_id: int
    area_id: int
    patient: str
    timepoint: str
    side: str
    area_code: str
    area_label: str
    dimension: str
    max_grade: int
    label: int
    probability: float  # posterior probability of the consensus grade
    uncertainty: float
    spread: int
    reader_grades: list[tuple[str, int]]

    @property
    def no_reader_agrees(self) -> bool:
        """The consensus grade is one that no reader gave (the aggregator's reader profiles moved it)."""
        return bool(self.reader_grades) and all(grade != self.label for _r, grade in self.reader_grades)


def disputed_list(*, project: Project, dimension: str | None = None, limit: int = 25, min_uncertainty: float = 0.2) -> list[DisputedItem]:
    """The adjudication queue: areas whose consensus is least certain, most uncertain first.

    An area qualifies when readers disagreed (spread above zero) or the posterior is flat enough
    (`min_uncertainty`, normalised entropy). Areas a lead has already adjudicated are left out.
    """
    dimensions = [dimension] if dimension else list(Dimension.values)
    adjudicated = set(
        AdjudicatedLabel.objects.filter(radiograph__project=project).values_list("radiograph_id", "area_id")
    )
    candidates: list[ConsensusLabel] = []
    for name in dimensions:
        run = consensus_run_latest(project=project, dimension=name)
        if run is None:
            continue
        labels = (
            run.labels.filter(is_gold=False)
            .exclude(spread=0, uncertainty__lt=min_uncertainty)
            .select_related("area", "radiograph__visit__patient")
            .order_by("-uncertainty", "-spread", "radiograph_id", "area__order")
        )
        picked = []
        for label in labels.iterator():
            if (label.radiograph_id, label.area_id) not in adjudicated:
                picked.append(label)
            if len(picked) >= limit:
                break
        candidates += picked
    candidates.sort(key=lambda c: (-c.uncertainty, -c.spread, c.radiograph_id, c.area.order))
    candidates = candidates[:limit]
    given: dict[tuple[int, int], list[tuple[str, int]]] = defaultdict(list)
    grades = Grade.objects.filter(
        assignment__status=Assignment.Status.SUBMITTED,
        assignment__radiograph_id__in={c.radiograph_id for c in candidates},
        area_id__in={c.area_id for c in candidates},
    ).values_list("assignment__radiograph_id", "area_id", "assignment__reader__username", "value")
    for radiograph_id, area_id, username, value in grades.order_by("assignment__reader__username"):
        given[(radiograph_id, area_id)].append((username, value))
    return [
        DisputedItem(
            radiograph_id=c.radiograph_id,
            area_id=c.area_id,
            patient=c.radiograph.visit.patient.pseudonym,
            timepoint=c.radiograph.visit.timepoint,
            side=side_code(c.radiograph),
            area_code=c.area.code,
            area_label=c.area.label,
            dimension=c.area.dimension,
            max_grade=c.area.max_grade,
            label=c.label,
            probability=round(float(c.posterior[c.label]), 3),
            uncertainty=round(c.uncertainty, 3),
            spread=c.spread,
            reader_grades=given.get((c.radiograph_id, c.area_id), []),
        )
        for c in candidates
    ]


def adjudicated_label_list(*, project: Project) -> QuerySet[AdjudicatedLabel]:
    return (
        AdjudicatedLabel.objects.filter(radiograph__project=project)
        .select_related("radiograph__visit__patient", "area", "lead")
        .order_by("-created_at", "-id")
    )


# --------------------------------------------------------------------------- export


class ExportAmbiguous(Exception):
    """Two radiographs would fill the same RA2 cells (several timepoints, or a repeated film)."""


def consensus_grades_for_export(
    project: Project, *, timepoint: str | None = None
) -> dict[tuple[str, str, str], int]:
    """Consensus grades of the latest successful run of each dimension, keyed for RA2 export.

    Keys are ``(patient pseudonym, side, area code)`` with side the RA2-DREAM image suffix
    (``LH``, ``RH``, ``LF``, ``RF``), so the column is ``f"{side}_{area_code}"``. Adjudicated
    grades are included (they are gold in the run). An RA2 row holds one film per patient and
    side, so with several timepoints pass ``timepoint``; two radiographs that would share cells
    raise ExportAmbiguous rather than one silently overwriting the other.
    """
    out: dict[tuple[str, str, str], int] = {}
    owner: dict[tuple[str, str], Radiograph] = {}
    for dimension in Dimension.values:
        run = consensus_run_latest(project=project, dimension=dimension)
        if run is None:
            continue
        labels = run.labels.select_related("area", "radiograph__visit__patient").order_by("radiograph_id", "area__order")
        if timepoint is not None:
            labels = labels.filter(radiograph__visit__timepoint=timepoint)
        for label in labels.iterator():
            radiograph = label.radiograph
            patient, side = radiograph.visit.patient.pseudonym, side_code(radiograph)
            first = owner.setdefault((patient, side), radiograph)
            if first.pk != radiograph.pk:
                where = (
                    f"timepoints {first.visit.timepoint!r} and {radiograph.visit.timepoint!r}; choose one"
                    if first.visit.timepoint != radiograph.visit.timepoint
                    else f"two radiographs (#{first.pk} and #{radiograph.pk}) at {radiograph.visit.timepoint!r}"
                )
                raise ExportAmbiguous(f"patient {patient} {side} has consensus grades at {where}")
            out[(patient, side, label.area.code)] = label.label
    return out


def consensus_labels_for_training(*, run: ConsensusRun) -> dict[tuple[int, int], tuple[int, list[float]]]:
    """{(radiograph_id, area_id): (label, posterior)} of one run, for training targets."""
    return {
        (radiograph_id, area_id): (label, posterior)
        for radiograph_id, area_id, label, posterior in run.labels.values_list("radiograph_id", "area_id", "label", "posterior")
    }


def reader_grade_count(*, project: Project) -> int:
    return Grade.objects.filter(
        assignment__radiograph__project=project, assignment__status=Assignment.Status.SUBMITTED
    ).count()


@dataclass(frozen=True)
class ConsensusLongRow:
    patient: str
    timepoint: str
    side: str
    area: str
    dimension: str
    label: int
    posterior: list[float]
    is_gold: bool
    run: int


def consensus_long_rows(*, project: Project) -> list[ConsensusLongRow]:
    """The latest successful run of each dimension, one row per radiograph and area, every visit."""
    out: list[ConsensusLongRow] = []
    for dimension in Dimension.values:
        run = consensus_run_latest(project=project, dimension=dimension)
        if run is None:
            continue
        labels = run.labels.order_by("radiograph__visit__patient__pseudonym", "radiograph__visit__timepoint", "radiograph_id", "area__order")
        for pseudonym, timepoint, laterality, body_part, code, label, posterior, is_gold in labels.values_list(
            "radiograph__visit__patient__pseudonym", "radiograph__visit__timepoint", "radiograph__laterality",
            "radiograph__body_part", "area__code", "label", "posterior", "is_gold",
        ):  # fmt: skip
            side = f"{laterality}{'F' if body_part == 'foot' else 'H'}"
            out.append(ConsensusLongRow(pseudonym, timepoint, side, code, dimension, label, posterior, is_gold, run.pk))
    return out


def reader_grade_rows(*, project: Project) -> list[tuple]:
    """(patient, timepoint, side, area, dimension, reader, grade, submitted_at) of every submitted grade."""
    rows = (
        Grade.objects.filter(assignment__radiograph__project=project, assignment__status=Assignment.Status.SUBMITTED)
        .order_by("assignment__radiograph__visit__patient__pseudonym", "assignment__radiograph__visit__timepoint",
                  "assignment__radiograph_id", "area__dimension", "area__order", "assignment__reader__username")
        .values_list("assignment__radiograph__visit__patient__pseudonym", "assignment__radiograph__visit__timepoint",
                     "assignment__radiograph__laterality", "assignment__radiograph__body_part", "area__code",
                     "area__dimension", "assignment__reader__username", "value", "assignment__submitted_at")
    )  # fmt: skip
    return [
        (patient, timepoint, f"{laterality}{'F' if body_part == 'foot' else 'H'}", code, dimension, reader, value,
         submitted.isoformat() if submitted else "")
        for patient, timepoint, laterality, body_part, code, dimension, reader, value, submitted in rows
    ]  # fmt: skip
