"""Reads of the consensus app: runs, scales, aggregator comparison, the adjudication queue and exports
(the agreement figures are `agreement_report.py`'s).

Every figure here reveals other readers' grades, so callers show them to a project's leads and to
staff only (`annotation.selectors.project_list_led`); readers never get them, blinded or not.
Figures are plain dataclasses with NaN turned into None, ready for a template or JSON.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils.translation import gettext

from annotation.models import Assignment, Dimension, Grade, JointArea, Project, Radiograph
from annotation.ra2 import side_code
from annotation.selectors import User, project_get_led

from .models import AdjudicatedLabel, ConsensusLabel, ConsensusRun, ConsensusSettings

GROUP_ORDER = ("pip", "mcp", "wrist", "mtp", "dip")


def dimension_label(dimension: str) -> str:
    """A dimension's name in the page's language (the stored choices' labels are English)."""
    return {"erosion": gettext("Erosion"), "jsn": gettext("Joint space narrowing")}.get(dimension, Dimension(dimension).label)


def project_led_for_consensus(*, user: User, project_id: int) -> Project:
    """The project if `user` leads it: 404 for non-members, 403 for its readers."""
    return project_get_led(
        user=user, project_id=project_id, readers_message="Consensus and agreement figures are shown to the project's leads only."
    )


def rounded(value: float | None, digits: int = 4) -> float | None:
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
        part = {"hand": gettext("hands"), "foot": gettext("feet")}.get(self.body_part, self.body_part)
        return f"{dimension_label(self.dimension)}, {part} (0-{self.max_grade})"


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
        return dimension_label(self.dimension)

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
                        side=radiographs[c["radiograph_id"]].side,
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
    """The adjudication queue: disputed areas, the least certain consensus first.

    An area qualifies once at least two readers submitted it and they disagreed (spread above
    zero), or, in a run whose fit the degeneracy guard called unreliable, once two readers
    submitted it and its posterior is flat enough (`min_uncertainty`, normalised entropy). An
    area only one reader has finished is no dispute yet, however flat its posterior. Areas a lead
    has already adjudicated are left out.
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
        disputed = Q(spread__gt=0)
        if run.unreliable:
            disputed |= Q(uncertainty__gte=min_uncertainty)
        # The first `limit` plus as many as may be adjudicated, by id alone: PostgreSQL keeps only
        # that many rows while it sorts, instead of joining and sorting every label of the run
        # (a run's labels span the runs that wrote them, so no index hands them over in order).
        ids = list(
            run.labels.filter(disputed, is_gold=False, n_readers__gte=2)
            .order_by("-uncertainty", "-spread", "radiograph_id", "area__order")
            .values_list("pk", flat=True)[: limit + len(adjudicated)]
        )
        rows = ConsensusLabel.objects.select_related("area", "radiograph__visit__patient").in_bulk(ids)
        picked = [rows[pk] for pk in ids if pk in rows and (rows[pk].radiograph_id, rows[pk].area_id) not in adjudicated]
        candidates += picked[:limit]
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
            side=c.radiograph.side,
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
            patient, side = radiograph.visit.patient.pseudonym, radiograph.side
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
    run: int  # the run's id
    run_version: int  # its version per project and dimension, as every page names it ("v2")


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
            side = side_code(body_part=body_part, laterality=laterality)
            out.append(ConsensusLongRow(pseudonym, timepoint, side, code, dimension, label, posterior, is_gold, run.pk, run.version))
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
        (patient, timepoint, side_code(body_part=body_part, laterality=laterality), code, dimension, reader, value,
         submitted.isoformat() if submitted else "")
        for patient, timepoint, laterality, body_part, code, dimension, reader, value, submitted in rows
    ]  # fmt: skip


@dataclass(frozen=True)
class DisputeDetail:
    """One area of one radiograph as the adjudication viewer shows it."""

    radiograph: Radiograph
    area: JointArea
    reader_grades: list[tuple[str, int]]
    label: int | None  # the latest run's consensus grade, None before any run covers the area
    posterior: list[float]
    run_version: int | None
    run_unreliable: bool
    adjudicated: AdjudicatedLabel | None  # the newest final grade, if a lead gave one


def dispute_detail(*, project: Project, radiograph_id: int, area_code: str) -> DisputeDetail | None:
    """Readers' grades, the consensus and any final grade for one area; None for an area or
    radiograph that is not in the project."""
    radiograph = Radiograph.objects.filter(project=project, pk=radiograph_id).select_related("visit__patient").first()
    if radiograph is None:
        return None
    area = JointArea.objects.filter(
        scheme_id=project.scheme_id, body_part=radiograph.body_part, code=area_code
    ).select_related("joint").first()
    if area is None:
        return None
    grades = list(
        Grade.objects.filter(assignment__radiograph=radiograph, assignment__status=Assignment.Status.SUBMITTED, area=area)
        .order_by("assignment__reader__username")
        .values_list("assignment__reader__username", "value")
    )
    run = consensus_run_latest(project=project, dimension=area.dimension)
    label = run.labels.filter(radiograph=radiograph, area=area).first() if run else None
    return DisputeDetail(
        radiograph=radiograph,
        area=area,
        reader_grades=grades,
        label=label.label if label else None,
        posterior=[float(p) for p in label.posterior] if label else [],
        run_version=run.version if run else None,
        run_unreliable=bool(run and run.unreliable),
        adjudicated=AdjudicatedLabel.objects.filter(radiograph=radiograph, area=area).select_related("lead").order_by("-created_at", "-id").first(),
    )
