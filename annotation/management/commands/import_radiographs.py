"""Import a folder of radiographs (PNG, JPEG, TIFF, DICOM) into a project."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from annotation.ingestion import folder_has_dicom, pseudonym_key_problem, radiograph_folder_import
from annotation.sources import TIMEPOINT_PATTERN, ManifestError, manifest_read

from ._common import project_for_command, report_lines


class Command(BaseCommand):
    help = (
        "Import every radiograph under PATH into a project (created if new), one transaction per file. "
        "Patient, visit and side come from the file name {patient}[_{timepoint}]-{LH|RH|LF|RF}.{ext}, "
        "a manifest CSV (file, patient, timepoint, laterality, body_part) or the DICOM header. "
        "The same file twice is one radiograph. Exits with status 1 if any file failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="folder to import; nothing outside it is read")
        parser.add_argument("--project", required=True, help="project slug; created if it does not exist")
        parser.add_argument("--scheme", help="scoring scheme of a new project (default svdh)")
        parser.add_argument("--manifest", type=Path, help="CSV: file, patient, timepoint, laterality, body_part")
        parser.add_argument("--timepoint", default="baseline", help="visit of files that name none (default baseline)")
        parser.add_argument("--allow-colour", action="store_true", help="import colour photographs as grey instead of refusing them")
        parser.add_argument("--mapping-out", type=Path, help="CSV to write pseudonym <-> real DICOM Patient ID (kept outside MEDIA_ROOT)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the report as JSON")

    def handle(self, *args, path: Path, project: str, scheme: str | None, manifest: Path | None, timepoint: str,
               allow_colour: bool, mapping_out: Path | None, as_json: bool, **options):
        if not path.is_dir():
            raise CommandError(f"{path} is not a folder.")
        if _inside(path, Path(settings.MEDIA_ROOT)):
            raise CommandError(f"{path} is inside MEDIA_ROOT, whose files are already radiographs.")
        if not TIMEPOINT_PATTERN.match(timepoint):
            raise CommandError(f"--timepoint '{timepoint}' must be 1-32 letters, digits, dots, hyphens or underscores.")
        if mapping_out is not None and _inside(mapping_out, Path(settings.MEDIA_ROOT)):
            raise CommandError("--mapping-out must not be inside MEDIA_ROOT: the mapping re-identifies patients.")
        problem = pseudonym_key_problem()
        if problem is not None and folder_has_dicom(path):
            raise CommandError(f"{problem} Nothing was imported.")
        rows = None
        if manifest is not None:
            try:
                rows = manifest_read(manifest.read_text(encoding="utf-8-sig"))
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"Cannot read the manifest {manifest}: {exc}") from None
            except ManifestError as exc:
                raise CommandError("The manifest is refused; nothing was imported.\n" + "\n".join(exc.errors)) from None
        target = project_for_command(project, scheme)

        mapping: dict[str, str] | None = {} if mapping_out is not None else None
        report = radiograph_folder_import(
            project=target,
            root=path,
            manifest=rows,
            ignore=[manifest] if manifest is not None else [],
            default_timepoint=timepoint,
            allow_colour=allow_colour,
            mapping=mapping,
        )
        if mapping_out is not None:
            written = _mapping_write(mapping_out, mapping or {})
            report.notes.append(f"Pseudonym mapping: {written} patient(s) in {mapping_out}.")
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        else:
            self.stdout.write("\n".join(report_lines(report)))
        failed = report.counts()["failed"]
        if failed:
            raise CommandError(f"{failed} file(s) failed; the others were imported or skipped as reported.")


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _mapping_write(path: Path, mapping: dict[str, str]) -> int:
    """Merge with an existing mapping file, so a re-run never drops earlier patients."""
    merged: dict[str, str] = {}
    if path.exists():
        with open(path, newline="", encoding="utf-8") as handle:
            merged.update({row["pseudonym"]: row["patient_id"] for row in csv.DictReader(handle)})
    merged.update(mapping)
    # Owner-only from the first byte: the file re-identifies patients.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["pseudonym", "patient_id"])
        writer.writerows(sorted(merged.items()))
    return len(merged)
