"""What the ingestion commands share: the project argument and how a report is printed."""
from __future__ import annotations

from django.core.management.base import CommandError

from annotation.ingestion import IngestionReport, project_ensure
from annotation.models import Project, Scheme


def report_lines(report: IngestionReport) -> list[str]:
    lines = []
    for outcome in report.files:
        where = ""
        if outcome.patient and outcome.side:
            where = f" -> {outcome.patient}/{outcome.timepoint} {outcome.side}"
        if outcome.radiograph:
            where += f" #{outcome.radiograph}"
        reason = f": {outcome.reason}" if outcome.reason else ""
        lines.append(f"{outcome.status:<8} {outcome.file}{where}{reason}")
        lines.extend(f"         warning: {warning}" for warning in outcome.warnings)
    for reading in report.readings:
        reason = f": {reading.reason}" if reading.reason else ""
        lines.append(f"reading  {reading.patient} {reading.side} {reading.status}{reason}")
    lines.extend(f"note     {note}" for note in report.notes)
    counts = report.counts()
    summary = f"{counts['imported']} imported, {counts['skipped']} skipped, {counts['failed']} failed"
    if report.readings:
        summary += "; readings: " + ", ".join(f"{n} {status}" for status, n in sorted(report.reading_counts().items()))
    lines.append(summary + ".")
    return lines


def project_for_command(slug: str, scheme: str | None) -> Project:
    """The project, created with `scheme` (default svdh) if new; a different scheme is refused."""
    if scheme is not None and not Scheme.objects.filter(key=scheme).exists():
        known = ", ".join(Scheme.objects.values_list("key", flat=True))
        raise CommandError(f"Unknown scheme '{scheme}'; known: {known}.")
    project, _ = project_ensure(slug=slug, scheme_key=scheme or "svdh")
    if scheme is not None and project.scheme.key != scheme:
        raise CommandError(f"Project {slug} already exists with scheme {project.scheme.key}, not {scheme}.")
    return project
