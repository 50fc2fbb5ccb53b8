"""Reads of radiographic progression: each reader's and the consensus's grades laid out as patient
series, their change scores, the reliability of change, progressors and the exports.

Rows to arrays here, the maths in `scoring.progression`. Hands only (the SvdH hand score); a
patient's score at a visit is the sum over both hands. The reliability figures, the progressor
shares and the cumulative probability plot use one interval per patient, baseline to the last
visit, so every patient counts once; the change table lists every interval.
Leads only, like every figure of this app: change scores reveal readers' grades.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import numpy as np
from django.utils.translation import gettext as _

from annotation.models import Assignment, Dimension, Grade, JointArea, Patient, Project, Radiograph
from annotation.ra2 import side_code
from scoring import progression as pg

from .longitudinal import visit_order
from .models import ConsensusRun
from .selectors import consensus_run_latest

CONSENSUS = "consensus"


@dataclass
class SeriesGrades:
    """Every source's grades as patient series: ``visits x columns`` arrays, NaN where not read."""

    patients: list[tuple[int, str]]  # (patient id, pseudonym), sorted by pseudonym
    visits: dict[int, list[tuple[int, str, str]]]  # patient -> (visit id, timepoint, date) chronological
    columns: list[tuple[str, JointArea]]  # (side code, area)
    is_erosion: np.ndarray
    sources: dict[str, str]  # key -> label ("reader:3" -> "alice", "consensus" -> "Consensus (...)")
    grades: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)
    consensus_runs: list[ConsensusRun] = field(default_factory=list)


def series_grades_collect(*, project: Project) -> SeriesGrades:
    """Submitted hand grades of every reader and the latest consensus, as series per patient."""
    areas = list(JointArea.objects.filter(scheme_id=project.scheme_id, body_part="hand").order_by("dimension", "order"))
    columns = [(side, area) for side in ("LH", "RH") for area in areas]
    col_of = {(side, area.pk): i for i, (side, area) in enumerate(columns)}
    films = list(
        Radiograph.objects.filter(project=project, body_part="hand").values_list(
            "pk", "laterality", "visit_id", "visit__timepoint", "visit__acquired_on", "visit__patient_id"
        )
    )
    visits_of: dict[int, dict[int, tuple]] = {}
    film_at: dict[int, tuple[int, int, str]] = {}
    for pk, laterality, visit_id, timepoint, acquired_on, patient_id in films:
        visits_of.setdefault(patient_id, {})[visit_id] = (visit_order(acquired_on, visit_id), timepoint, acquired_on)
        film_at[pk] = (patient_id, visit_id, side_code(body_part="hand", laterality=laterality))
    patients = sorted(Patient.objects.filter(pk__in=visits_of).values_list("pk", "pseudonym"), key=lambda p: p[1])
    visits: dict[int, list[tuple[int, str, str]]] = {}
    row_of: dict[int, int] = {}
    for patient_id, by_visit in visits_of.items():
        ordered = sorted(by_visit.items(), key=lambda kv: kv[1][0])
        visits[patient_id] = [(v, tp, date.isoformat() if date else "") for v, (_key, tp, date) in ordered]
        row_of.update({v: i for i, (v, _) in enumerate(ordered)})
    out = SeriesGrades(
        patients=patients,
        visits=visits,
        columns=columns,
        is_erosion=np.array([area.dimension == Dimension.EROSION for _side, area in columns]),
        sources={},
    )

    def put(source: str, radiograph_id: int, area_id: int, value: int) -> None:
        where = film_at.get(radiograph_id)
        col = col_of.get((where[2], area_id)) if where else None
        if where is None or col is None:
            return
        patient_id, visit_id, _side = where
        grid = out.grades.setdefault(source, {}).get(patient_id)
        if grid is None:
            grid = out.grades[source][patient_id] = np.full((len(visits[patient_id]), len(columns)), np.nan)
        grid[row_of[visit_id], col] = value

    rows = Grade.objects.filter(
        assignment__radiograph__project=project,
        assignment__radiograph__body_part="hand",
        assignment__status=Assignment.Status.SUBMITTED,
    ).values_list("assignment__reader_id", "assignment__reader__username", "assignment__radiograph_id", "area_id", "value")
    for reader_id, username, radiograph_id, area_id, value in rows.iterator():
        key = f"reader:{reader_id}"
        out.sources.setdefault(key, username)
        put(key, radiograph_id, area_id, value)
    runs = [run for dim in Dimension.values if (run := consensus_run_latest(project=project, dimension=dim)) is not None]
    for run in runs:
        for radiograph_id, area_id, label in run.labels.values_list("radiograph_id", "area_id", "label").iterator():
            put(CONSENSUS, radiograph_id, area_id, label)
    if runs:
        fusions = sorted({run.get_fusion_display() for run in runs})
        out.sources[CONSENSUS] = _("Consensus (%(fusion)s)") % {"fusion": ", ".join(str(f) for f in fusions)}
        out.consensus_runs = runs
    out.sources = dict(sorted(out.sources.items(), key=lambda kv: (kv[0] == CONSENSUS, kv[1])))
    return out


@dataclass(frozen=True)
class ChangeRow:
    source: str
    patient: str
    start: str  # timepoint names
    end: str
    total: float
    erosion: float
    jsn: float
    joint_decreases: int  # areas whose grade fell over the interval


@dataclass
class SourceSummary:
    """One reader's (or the consensus's) baseline-to-last change scores and what they show."""

    key: str
    label: str
    n: int
    mean_change: float | None
    sdc_used: float | None
    shares: list[pg.ProgressorShare]
    regression: pg.RegressionFlag
    plot: list[tuple[float, float]]  # (cumulative probability, change)


@dataclass
class ProgressionReport:
    series: SeriesGrades
    changes: list[ChangeRow]
    # Baseline-to-last total change per source and patient (NaN where not read at both visits).
    primary: dict[str, dict[int, float]]
    reliability: pg.ChangeReliability | None
    reliability_note: str
    summaries: list[SourceSummary]


def sdc_of(reliability: pg.ChangeReliability, *, k: int) -> float:
    """The Bruynesteyn SDC of the mean of `k` readers' change scores, from the panel's SD of differences."""
    return pg.sdc_from_sd_difference(reliability.sd_difference, k)


def progression_report(*, project: Project) -> ProgressionReport:
    """Change scores of every reader and the consensus, with the reliability of change among readers."""
    series = series_grades_collect(project=project)
    names = dict(series.patients)
    changes: list[ChangeRow] = []
    primary: dict[str, dict[int, float]] = {}
    for source, by_patient in series.grades.items():
        for patient_id, grid in by_patient.items():
            visits = series.visits[patient_id]
            if len(visits) < 2:
                continue
            scored = pg.change_scores(grid, series.is_erosion)
            for c in scored:
                decreases = int(np.nansum(c.per_area < 0))
                changes.append(ChangeRow(source, names[patient_id], visits[c.start][1], visits[c.end][1], c.total, c.erosion, c.jsn, decreases))
            primary.setdefault(source, {})[patient_id] = scored[-1].total
    # Stable sort: within a patient the intervals keep their order (consecutive, then first to last).
    changes.sort(key=lambda r: (r.source == CONSENSUS, series.sources.get(r.source, ""), r.patient))
    readers = [key for key in series.sources if key != CONSENSUS]
    patients = [p for p, _ in series.patients if all(not math.isnan(primary.get(r, {}).get(p, math.nan)) for r in readers)]
    reliability, note = None, ""
    if len(readers) < 2:
        note = _("Reliability of change needs at least two readers who read both visits of the same patients.")
    elif len(patients) < 2:
        note = _("Only %(n)d patient(s) were read at baseline and follow-up by all %(k)d readers; at least 2 are needed.") % {
            "n": len(patients), "k": len(readers),
        }
    else:
        matrix = np.array([[primary[r][p] for r in readers] for p in patients])
        if np.ptp(matrix) == 0:
            note = _("Every reader scored the same change (%(change)g) for all %(n)d patients: the ICC is undefined.") % {
                "change": matrix[0, 0], "n": len(patients),
            }
        else:
            reliability = pg.change_reliability(matrix)
    summaries = []
    for key, label in series.sources.items():
        values = np.array(list(primary.get(key, {}).values()), dtype=float)
        values = values[~np.isnan(values)]
        if reliability is None:
            sdc = None
        else:
            # One reader's change has the single-reader SDC; the consensus fuses all readers.
            sdc = sdc_of(reliability, k=reliability.n_readers if key == CONSENSUS else 1)
        decreases = sum(r.joint_decreases for r in changes if r.source == key)
        p, c = pg.cumulative_probability(values)
        summaries.append(
            SourceSummary(
                key=key,
                label=label,
                n=int(values.size),
                mean_change=float(values.mean()) if values.size else None,
                sdc_used=sdc,
                shares=pg.progressor_shares(values, sdc),
                regression=pg.regression_flag([r.total for r in changes if r.source == key], decreases),
                plot=list(zip(p.tolist(), c.tolist())),
            )
        )
    return ProgressionReport(series, changes, primary, reliability, note, summaries)


# --------------------------------------------------------------------------- exports


def _number(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:g}"


def progression_long_csv(*, project: Project) -> str:
    """One row per source, patient, interval and measure (total, erosion, JSN, then each area)."""
    report = progression_report(project=project)
    series = report.series
    names = dict(series.patients)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["source", "patient", "from", "to", "measure", "change"])
    for source, by_patient in sorted(series.grades.items(), key=lambda kv: series.sources[kv[0]]):
        label = series.sources[source]
        for patient_id, grid in sorted(by_patient.items(), key=lambda kv: names[kv[0]]):
            visits = series.visits[patient_id]
            if len(visits) < 2:
                continue
            for c in pg.change_scores(grid, series.is_erosion):
                a, b = visits[c.start][1], visits[c.end][1]
                for measure, value in (("total", c.total), ("erosion", c.erosion), ("jsn", c.jsn)):
                    writer.writerow([label, names[patient_id], a, b, measure, _number(value)])
                for (side, area), value in zip(series.columns, c.per_area):
                    if not math.isnan(value):
                        writer.writerow([label, names[patient_id], a, b, f"{side}_{area.code}", _number(float(value))])
    return buffer.getvalue()


_SHARE_MEASURES = {"> SDC": "progressors_above_sdc", "> 0.5": "progressors_above_0.5", ">= 5": "progressors_at_least_5"}


def progression_reliability_csv(*, project: Project) -> str:
    """The Progression page's figures as rows: ICC and SDC of change among the readers, then per
    source (each reader, the consensus) the mean change, the SDC applied, the progressor shares
    and the regression flag, each with the count behind it. Empty values where a figure cannot
    be computed; the reason is the `note` row."""
    report = progression_report(project=project)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["source", "measure", "value", "ci_low", "ci_high", "count", "n"])
    reliability = report.reliability
    if reliability is None:
        writer.writerow(["readers", "note", report.reliability_note, "", "", "", ""])
    else:
        icc = reliability.icc
        writer.writerow(["readers", "icc_of_change", _number(icc.icc), _number(icc.ci_low), _number(icc.ci_high), "", reliability.n_subjects])
        writer.writerow(["readers", "sd_of_differences", _number(reliability.sd_difference), "", "", "", reliability.n_subjects])
        writer.writerow(["readers", f"sdc_of_mean_of_{reliability.k_averaged}", _number(reliability.sdc), "", "", "", reliability.n_subjects])
    for summary in report.summaries:
        writer.writerow([summary.label, "mean_change", _number(summary.mean_change), "", "", "", summary.n])
        writer.writerow([summary.label, "sdc_applied", _number(summary.sdc_used), "", "", "", summary.n])
        for share in summary.shares:
            value = share.count / share.n if share.n else None
            writer.writerow([summary.label, _SHARE_MEASURES.get(share.label, share.label), _number(value), "", "", share.count, share.n])
        flag = summary.regression
        writer.writerow([summary.label, "regression_flagged", int(flag.flagged), "", "", flag.n_negative, flag.n_intervals])
    return buffer.getvalue()


def progression_wide_csv(*, project: Project) -> str:
    """One row per source and patient; one block of columns per timepoint (T1, T2, ...) in order.

    A block holds the timepoint's name and date, the total, erosion and JSN scores and every area's
    grade; the change from T1 follows each later block's scores.
    """
    series = series_grades_collect(project=project)
    names = dict(series.patients)
    n_blocks = max((len(v) for v in series.visits.values()), default=0)
    area_names = [f"{side}_{area.code}" for side, area in series.columns]
    header = ["source", "patient"]
    for t in range(1, n_blocks + 1):
        header += [f"T{t}_timepoint", f"T{t}_date", f"T{t}_total", f"T{t}_erosion", f"T{t}_jsn"]
        if t > 1:
            header += [f"T{t}_change_total"]
        header += [f"T{t}_{name}" for name in area_names]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for source, by_patient in sorted(series.grades.items(), key=lambda kv: series.sources[kv[0]]):
        for patient_id, grid in sorted(by_patient.items(), key=lambda kv: names[kv[0]]):
            row = [series.sources[source], names[patient_id]]
            baseline = None
            for t in range(n_blocks):
                visits = series.visits[patient_id]
                if t >= len(visits):
                    row += [""] * (5 + (1 if t else 0) + len(area_names))
                    continue
                g = grid[t]
                seen = ~np.isnan(g)
                total = float(g[seen].sum()) if seen.any() else math.nan
                row += [visits[t][1], visits[t][2], _number(total),
                        _number(float(g[seen & series.is_erosion].sum()) if seen.any() else math.nan),
                        _number(float(g[seen & ~series.is_erosion].sum()) if seen.any() else math.nan)]  # fmt: skip
                if t == 0:
                    baseline = total
                else:
                    row.append(_number(total - baseline if baseline is not None else math.nan))
                row += [_number(float(v)) for v in g]
            writer.writerow(row)
    return buffer.getvalue()
