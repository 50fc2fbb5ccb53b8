"""Import an RA2-DREAM score sheet and its images as one reader's submitted readings."""
from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.ingestion import ra2_import
from annotation.ra2 import SheetError
from annotation.sources import TIMEPOINT_PATTERN

from ._common import project_for_command, report_lines


class Command(BaseCommand):
    help = (
        "Import an RA2-DREAM CSV (Patient_ID, Overall_*, {LH,RH}_{mcp,pip,wrist}_{E,J}__{code}, "
        "{LF,RF}_mtp_{E,J}__{code}) and images {Patient_ID}-{LH,RH,LF,RF}.jpg as READER's submitted "
        "grades. Project and reader are created when new; run once per reader for a multi-reader study. "
        "Missing images, missing columns and total mismatches are reported, not fatal."
    )

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True, type=Path, help="the score sheet")
        parser.add_argument("--images", required=True, type=Path, help="folder of {Patient_ID}-{LH,RH,LF,RF}.jpg")
        parser.add_argument("--project", required=True, help="project slug; created if it does not exist")
        parser.add_argument("--reader", required=True, help="username whose readings the grades become")
        parser.add_argument("--scheme", help="scoring scheme of a new project (default svdh)")
        parser.add_argument("--timepoint", default="baseline", help="visit the images belong to (default baseline)")
        parser.add_argument("--allow-colour", action="store_true", help="import colour images as grey instead of refusing them")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the report as JSON")

    def handle(self, *args, csv: Path, images: Path, project: str, reader: str, scheme: str | None,
               timepoint: str, allow_colour: bool, as_json: bool, **options):
        if not images.is_dir():
            raise CommandError(f"{images} is not a folder.")
        if not TIMEPOINT_PATTERN.match(timepoint):
            raise CommandError(f"--timepoint '{timepoint}' must be 1-32 letters, digits, dots, hyphens or underscores.")
        try:
            UnicodeUsernameValidator()(reader)
        except ValidationError:
            raise CommandError(f"--reader '{reader}' is not a valid username (letters, digits and @.+-_).") from None
        try:
            text = csv.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {csv}: {exc}") from None
        target = project_for_command(project, scheme)
        try:
            report = ra2_import(
                project=target, csv_text=text, images_root=images, reader_username=reader,
                timepoint=timepoint, allow_colour=allow_colour,
            )
        except SheetError as exc:
            raise CommandError(f"{csv}: {exc}") from None
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        else:
            self.stdout.write("\n".join(report_lines(report)))
