"""The consensus as files: a score source of the annotation app's exports and the lead downloads.

`consensus_scores` is registered as the `consensus` source of `export_scores` (RA2-DREAM wide
sheet). The other functions write the long CSV and JSON files leads download from the agreement
page, the API and `manage.py export_consensus`. Every one of them reveals readers' grades.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence

from annotation.exports import ScoreSourceUnavailable, ra2_sheet_export
from annotation.models import Dimension, Project

from . import agreement_report, selectors
from .models import ConsensusRun
from .progression import progression_long_csv, progression_reliability_csv, progression_wide_csv
from .serializers import AgreementReportSerializer


def consensus_scores(*, project: Project, timepoint: str) -> dict[tuple[str, str, str], int]:
    """Latest successful consensus of every dimension at one timepoint, keyed (patient, side, area)."""
    if not any(selectors.consensus_run_latest(project=project, dimension=d) for d in Dimension.values):
        raise ScoreSourceUnavailable(
            f"No consensus has been computed for project {project.slug} yet: "
            f"run `manage.py compute_consensus --project {project.slug}` or recompute it on the agreement page."
        )
    try:
        scores = selectors.consensus_grades_for_export(project, timepoint=timepoint)
    except selectors.ExportAmbiguous as error:
        raise ScoreSourceUnavailable(str(error)) from None
    if not scores:
        raise ScoreSourceUnavailable(f"The consensus of project {project.slug} has no grades at timepoint {timepoint!r}.")
    return scores


def _csv(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def consensus_long_csv(*, project: Project) -> str:
    """One row per radiograph and area of the latest consensus, posterior p0..pK on the widest scale.

    Hands (0-5) and feet (0-10) share the file, so columns run to the largest maximum grade and a
    row's columns beyond its own scale are empty.
    """
    rows = selectors.consensus_long_rows(project=project)
    width = max((len(row.posterior) for row in rows), default=0)
    header = ["patient", "timepoint", "side", "area", "dimension", "label", *(f"p{k}" for k in range(width)), "is_gold",
              "run", "aggregator", "unreliable"]  # fmt: skip
    origin = _label_origin({row.run for row in rows})
    return _csv(
        header,
        (
            [r.patient, r.timepoint, r.side, r.area, r.dimension, r.label,
             *(f"{p:.6g}" for p in r.posterior), *([""] * (width - len(r.posterior))), int(r.is_gold), r.run_version,
             *origin[(r.run, "foot" if r.side.endswith("F") else "hand")]]
            for r in rows
        ),
    )  # fmt: skip


def _label_origin(run_ids: set[int]) -> dict[tuple[int, str], tuple[str, int]]:
    """(run, body part) -> (aggregator that made the labels, 1 if the guard tripped on that part's fit).

    Where the requested aggregator's fit of a grade grid looked degenerate, that part's labels come
    from a fallback, recorded per part on the run (``labels_from``, ``unreliable``).
    """
    out: dict[tuple[int, str], tuple[str, int]] = {}
    for run in ConsensusRun.objects.filter(pk__in=run_ids).only("pk", "aggregator", "unreliable", "parts"):
        for body_part in ("hand", "foot"):
            out[(run.pk, body_part)] = (run.aggregator, int(run.unreliable))
        for part in run.parts or []:
            out[(run.pk, part.get("body_part"))] = (
                part.get("labels_from") or run.aggregator, int(bool(part.get("unreliable", False)))
            )
    return out


def consensus_ra2_csv(*, project: Project, timepoint: str = "baseline") -> str:
    """The latest consensus in the RA2-DREAM wide layout, as `export_scores --source consensus` writes it."""
    return ra2_sheet_export(project=project, source="consensus", timepoint=timepoint)


def agreement_reports(*, project: Project) -> list[agreement_report.AgreementReport]:
    return [agreement_report.agreement_report(project=project, scale=scale) for scale in selectors.scale_list(project=project)]


def agreement_json(*, project: Project) -> str:
    """Every scale's agreement report as the API serves it, one list."""
    return json.dumps(AgreementReportSerializer(agreement_reports(project=project), many=True).data, indent=1)


def agreement_csv(*, project: Project) -> str:
    """The agreement figures as flat rows: each reader against the consensus, each reader pair, and reliability."""
    rows = []
    for report in agreement_reports(project=project):
        scale = report.scale.key
        for r in report.readers:
            rows.append([scale, "reader_vs_consensus", r.reader, "", r.n, r.weighted_accuracy, r.within_one, r.kappa, ""])
        for p in report.pairs:
            rows.append([scale, "reader_pair", p.reader_a, p.reader_b, p.n_shared, p.exact, "", p.kappa, ""])
        rel = report.reliability
        rows.append([scale, "krippendorff_alpha", "", "", rel.alpha_units, "", "", "", rel.alpha])
        rows.append([scale, "icc_2_1", ",".join(rel.icc_readers), "", rel.icc_subjects, "", "", "", rel.icc])
    header = ["scale", "kind", "reader", "other_reader", "n", "weighted_accuracy", "within_one", "kappa", "value"]
    return _csv(header, ([("" if v is None else v) for v in row] for row in rows))


def reader_grades_csv(*, project: Project) -> str:
    """Every submitted grade of every reader, one row each."""
    header = ["patient", "timepoint", "side", "area", "dimension", "reader", "grade", "submitted_at"]
    return _csv(header, selectors.reader_grade_rows(project=project))


EXPORTS = {
    "consensus.csv": consensus_long_csv,
    "consensus-ra2.csv": consensus_ra2_csv,
    "agreement.csv": agreement_csv,
    "agreement.json": agreement_json,
    "reader-grades.csv": reader_grades_csv,
    "progression-long.csv": progression_long_csv,
    "progression-wide.csv": progression_wide_csv,
    "progression-reliability.csv": progression_reliability_csv,
}
