"""Write one of the consensus downloads of a project to a file or to standard output."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from annotation.exports import ScoreSourceUnavailable
from annotation.models import Project
from consensus import exports


class Command(BaseCommand):
    help = "Export the latest consensus, the agreement report or every reader's grades of a project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug or id")
        parser.add_argument("--export", required=True, choices=sorted(exports.EXPORTS))
        parser.add_argument("--timepoint", default="baseline", help="consensus-ra2.csv only")
        parser.add_argument("--out", type=Path, default=None, help="file to write; standard output when left out")

    def handle(self, *args, project: str, export: str, timepoint: str, out: Path | None, **options):
        lookup = Q(slug=project) | (Q(pk=int(project)) if project.isdigit() else Q())
        found = Project.objects.filter(lookup).first()
        if found is None:
            raise CommandError(f"no project with slug or id {project!r}")
        kwargs = {"timepoint": timepoint} if export == "consensus-ra2.csv" else {}
        try:
            text = exports.EXPORTS[export](project=found, **kwargs)
        except ScoreSourceUnavailable as error:
            raise CommandError(str(error)) from None
        if out is None:
            self.stdout.write(text, ending="")
        else:
            out.write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {out}")
