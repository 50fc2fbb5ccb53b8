"""Write a project's scores from one source (a reader, or a registered source such as consensus)."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.exports import ScoreSourceUnavailable, ra2_sheet_export
from annotation.models import Project


class Command(BaseCommand):
    help = (
        "Export scores in the RA2-DREAM layout: Patient_ID, Overall_Tol, Overall_erosion, "
        "Overall_narrowing, then {side}_{area code} for sides LH, RH, LF, RF in the scheme's area order. "
        "--source is a reader's username (submitted readings only) or a registered source such as consensus."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--format", choices=["ra2"], default="ra2", dest="layout")
        parser.add_argument("--source", required=True, help="reader username, reader:NAME, or consensus")
        parser.add_argument("--out", required=True, help="file to write, or - for standard output")
        parser.add_argument("--timepoint", default="baseline", help="visit to export (default baseline)")

    def handle(self, *args, project: str, layout: str, source: str, out: str, timepoint: str, **options):
        target = Project.objects.filter(slug=project).select_related("scheme").first()
        if target is None:
            raise CommandError(f"No project '{project}'.")
        try:
            text = ra2_sheet_export(project=target, source=source, timepoint=timepoint)
        except ScoreSourceUnavailable as exc:
            raise CommandError(str(exc)) from None
        if out == "-":
            self.stdout.write(text, ending="")
            return
        Path(out).write_text(text, encoding="utf-8", newline="")
        rows = text.count("\n") - 1
        self.stdout.write(f"{rows} patient(s) from {source} written to {out}.")
