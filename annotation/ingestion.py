"""Writes for ingestion: radiograph files from a folder or an upload, and RA2-DREAM score sheets.

Each file is stored in its own transaction, and a file written to the media folder is removed again
when its transaction fails, so a refused or failed file leaves neither a row nor a file behind.
Decoding, checks and de-identification are pure (`imaging`, `sources`); this module does the ORM.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from . import ra2, services
from .imaging import IMAGE_SUFFIXES, ImageRefused, date_shift, looks_like_dicom
from .models import Assignment, JointArea, Membership, Project, Radiograph, Scheme, Visit
from .services import GradeInput
from .sources import (
    PATIENT_PATTERN,
    FileTarget,
    ManifestRow,
    PreparedFile,
    TargetMissing,
    file_prepare,
    max_file_bytes,
    target_from_filename,
)

logger = logging.getLogger(__name__)

IMPORTED, SKIPPED, FAILED = "imported", "skipped", "failed"


@dataclass
class FileOutcome:
    file: str  # as the operator named it: relative to the imported folder, or the uploaded name
    status: str  # imported, skipped or failed
    reason: str = ""
    radiograph: int | None = None
    patient: str | None = None
    timepoint: str | None = None
    side: str | None = None  # LH, RH, LF or RF
    warnings: list[str] = field(default_factory=list)


@dataclass
class ReadingOutcome:
    """What became of one reader's grades for one radiograph of a score sheet."""

    patient: str
    side: str
    status: str  # submitted, unchanged, incomplete, conflict or not_imported
    reason: str = ""
    radiograph: int | None = None


@dataclass
class IngestionReport:
    files: list[FileOutcome] = field(default_factory=list)
    readings: list[ReadingOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {status: 0 for status in (IMPORTED, SKIPPED, FAILED)}
        for outcome in self.files:
            counts[outcome.status] += 1
        return counts

    def reading_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.readings:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return counts

    def as_dict(self) -> dict:
        body: dict = {**self.counts(), "files": [asdict(outcome) for outcome in self.files]}
        if self.readings:
            body["readings"] = [asdict(outcome) for outcome in self.readings]
            body["reading_counts"] = self.reading_counts()
        body["notes"] = list(self.notes)
        return body


def ingestion_key() -> str:
    # A dedicated PSEUDONYM_KEY keeps pseudonyms and date shifts stable when SECRET_KEY is rotated.
    return getattr(settings, "PSEUDONYM_KEY", "") or settings.SECRET_KEY


MIN_PSEUDONYM_KEY_BYTES = 32


def pseudonym_key_problem() -> str | None:
    """Why the configured key must not pseudonymise DICOM patients, or None when it may.

    A pseudonym is HMAC(key, Patient ID): with the key committed in the repository, or one short
    enough to guess, anyone holding a list of IDs can match pseudonyms back to patients.
    """
    if getattr(settings, "ALLOW_DEMO_PSEUDONYM_KEY", False):
        return None
    key = ingestion_key()
    if key in getattr(settings, "COMMITTED_DEMO_KEYS", ()):
        return (
            "DICOM import is refused: the pseudonym key is the demo key committed in the repository, so "
            "pseudonyms could be reversed. Set PSEUDONYM_KEY (at least 32 bytes, kept secret and never changed)."
        )
    if len(key.encode()) < MIN_PSEUDONYM_KEY_BYTES:
        return (
            f"DICOM import is refused: PSEUDONYM_KEY is {len(key.encode())} bytes; at least "
            f"{MIN_PSEUDONYM_KEY_BYTES} are needed so pseudonyms cannot be reversed by guessing the key."
        )
    return None


def folder_has_dicom(root: Path) -> bool:
    """Whether any file under `root` is DICOM, by suffix or by the Part 10 marker."""
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                with open(path, "rb") as handle:
                    head = handle.read(132)
            except OSError:
                continue
            if looks_like_dicom(head, name=path.name):
                return True
    return False


def dicom_key_check(*, name: str, data: bytes) -> None:
    """Refuse a DICOM file while the pseudonym key is unsafe; other formats carry no Patient ID."""
    if looks_like_dicom(data, name=name):
        problem = pseudonym_key_problem()
        if problem is not None:
            raise ImageRefused(problem)


def project_ensure(*, slug: str, scheme_key: str = "svdh") -> tuple[Project, bool]:
    """The project with this slug, created with `scheme_key` if it does not exist yet."""
    project = Project.objects.filter(slug=slug).select_related("scheme").first()
    if project is not None:
        return project, False
    return services.project_create(name=slug, slug=slug, scheme_key=scheme_key), True


# ---------------------------------------------------------------------------------------------
# One prepared file
# ---------------------------------------------------------------------------------------------


def radiograph_ingest(*, project: Project, prepared: PreparedFile, mapping: dict[str, str] | None = None) -> FileOutcome:
    """Store one decoded file in its own transaction; the same pixels twice are one radiograph.

    `mapping`, when given, receives pseudonym -> real Patient ID for DICOM files: the operator
    asked for it to be written somewhere of their choosing; it is never stored here.
    """
    decoded, target = prepared.decoded, prepared.target
    outcome = FileOutcome(
        file=prepared.name,
        status=IMPORTED,
        patient=target.patient,
        timepoint=target.timepoint,
        side=ra2.side_code(body_part=target.body_part, laterality=target.laterality),
        warnings=list(decoded.warnings),
    )
    if mapping is not None and decoded.identity.patient_id:
        mapping[target.patient] = decoded.identity.patient_id
    # By pixels rather than by file bytes, so that a re-encoded copy of the same image is a duplicate.
    existing = _radiograph_with_pixels(project, decoded.pixel_sha256)
    if existing is not None:
        return _duplicate(outcome, existing)

    acquired_on = (
        date_shift(decoded.identity.study_date, pseudonym=target.patient, key=ingestion_key())
        if decoded.identity.study_date
        else None
    )
    stored: list[tuple] = []
    try:
        with transaction.atomic():
            added = services.radiograph_add(
                project=project,
                pseudonym=target.patient,
                laterality=target.laterality,
                image_bytes=decoded.png,
                image_suffix="png",
                width=decoded.width,
                height=decoded.height,
                timepoint=target.timepoint,
                body_part=target.body_part,
                metadata=decoded.metadata,
            )
            if not added.created:
                return _duplicate(outcome, added.radiograph)
            stored.append((added.radiograph.image.storage, added.radiograph.image.name))
            if acquired_on is not None:
                _visit_date_set(added.radiograph.visit, acquired_on, outcome)
    except IntegrityError:
        _files_delete(stored)
        # A concurrent import of the same pixels won the unique constraint.
        existing = _radiograph_with_pixels(project, decoded.pixel_sha256)
        if existing is None:
            raise
        return _duplicate(outcome, existing)
    except BaseException:
        _files_delete(stored)
        raise
    outcome.radiograph = added.radiograph.pk
    return outcome


@dataclass(frozen=True)
class CheckedUpload:
    """An uploaded file and where it goes. It is decoded once to check it and once more to store
    it, and never kept decoded in between: a request of twenty large images then holds one
    image's pixels at a time, not twenty."""

    name: str
    upload: Any  # Django's UploadedFile: in memory when small, a temporary file otherwise
    declared: FileTarget
    default_timepoint: str
    allow_colour: bool

    def prepare(self) -> PreparedFile:
        """Decode, check and place the file; raises `ImageRefused` or `TargetMissing`."""
        self.upload.seek(0)
        data = self.upload.read()
        dicom_key_check(name=self.name, data=data)
        return file_prepare(
            name=self.name,
            data=data,
            declared=self.declared,
            max_pixels=settings.MAX_IMAGE_PIXELS,
            key=ingestion_key(),
            default_timepoint=self.default_timepoint,
            allow_colour=self.allow_colour,
        )


def radiographs_ingest(*, project: Project, files: Sequence[CheckedUpload]) -> IngestionReport:
    """Store uploaded files, already checked by the serializer, one at a time, one transaction each."""
    report = IngestionReport()
    for item in files:
        try:
            prepared = item.prepare()
        except (ImageRefused, TargetMissing) as refusal:  # the same bytes passed the check; kept for safety
            report.files.append(FileOutcome(file=item.name, status=FAILED, reason=str(refusal)))
            continue
        report.files.append(radiograph_ingest(project=project, prepared=prepared))
        del prepared  # before the next decode, not after it
    _log(project, report)
    return report


def _radiograph_with_pixels(project: Project, pixel_sha256: str) -> Radiograph | None:
    return (
        Radiograph.objects.filter(project=project, metadata__pixel_sha256=pixel_sha256)
        .select_related("visit__patient")
        .first()
    )


def _duplicate(outcome: FileOutcome, existing: Radiograph) -> FileOutcome:
    stored_side = ra2.side_code(body_part=existing.body_part, laterality=existing.laterality)
    where = f"{existing.visit.patient.pseudonym}/{existing.visit.timepoint} {stored_side}"
    outcome.status, outcome.radiograph = SKIPPED, existing.pk
    outcome.reason = f"Already imported as radiograph #{existing.pk} ({where})."
    if (outcome.patient, outcome.timepoint, outcome.side) != (
        existing.visit.patient.pseudonym,
        existing.visit.timepoint,
        stored_side,
    ):
        outcome.reason += f" This file was named for {outcome.patient}/{outcome.timepoint} {outcome.side}; the stored one is kept."
    outcome.warnings = []
    return outcome


def _visit_date_set(visit: Visit, acquired_on, outcome: FileOutcome) -> None:
    if visit.acquired_on is None:
        visit.acquired_on = acquired_on
        visit.save(update_fields=["acquired_on"])
    elif visit.acquired_on != acquired_on:
        outcome.warnings.append("The visit already has another (shifted) acquisition date; it was kept.")


def _files_delete(stored: list[tuple]) -> None:
    for storage, name in stored:
        storage.delete(name)


def _log(project: Project, report: IngestionReport) -> None:
    # Counts only: file names may carry what a name should not, and never reach a log.
    logger.info("Ingestion into project %s: %s", project.slug, report.counts())


# ---------------------------------------------------------------------------------------------
# A folder
# ---------------------------------------------------------------------------------------------


def radiograph_folder_import(
    *,
    project: Project,
    root: Path,
    manifest: dict[str, ManifestRow] | None = None,
    ignore: Collection[Path] = (),
    default_timepoint: str = "baseline",
    allow_colour: bool = False,
    mapping: dict[str, str] | None = None,
) -> IngestionReport:
    """Import every image under `root` (or every file the manifest lists), one transaction each.

    Nothing outside `root` is read: a link that leads out of it is reported, not followed.
    """
    root = root.resolve(strict=True)
    # The media folder itself is never imported: its files are already radiographs.
    ignored = {path.resolve() for path in ignore} | {Path(settings.MEDIA_ROOT).resolve()}
    report = IngestionReport()
    walked = list(_walk(root, report, ignored))
    if manifest is None:
        for path, name in walked:
            declared = target_from_filename(name) or FileTarget()
            report.files.append(
                _file_import(project, root, path, name, declared, default_timepoint, allow_colour, mapping)
            )
    else:
        for name, row in manifest.items():
            declared = row.target.over(target_from_filename(name) or FileTarget())
            outcome = _file_import(project, root, root / name, name, declared, default_timepoint, allow_colour, mapping)
            if outcome.status == FAILED and outcome.reason == _NOT_FOUND:
                outcome.reason = f"Listed in the manifest (line {row.line}) but not found."
            report.files.append(outcome)
        report.files.extend(
            FileOutcome(file=name, status=SKIPPED, reason="Not listed in the manifest.")
            for _, name in walked
            if name not in manifest
        )
    _log(project, report)
    return report


_NOT_FOUND = "Not found."
_OUTSIDE = "The path leads outside the imported folder (a link or '..'); it was not read."


def _walk(root: Path, report: IngestionReport, ignored: set[Path]):
    """(path, name relative to root) of every candidate file; reports what it passes over."""
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(folder)
        for dirname in sorted(dirnames):
            path = here / dirname
            name = path.relative_to(root).as_posix()
            if path.is_symlink():
                inside = path.resolve().is_relative_to(root)
                report.files.append(
                    FileOutcome(file=name + "/", status=SKIPPED if inside else FAILED,
                                reason="A link to a folder; links are not followed." if inside else _OUTSIDE)
                )
            elif dirname.startswith("."):
                report.files.append(FileOutcome(file=name + "/", status=SKIPPED, reason="Hidden folder; not searched."))
            elif path.resolve() in ignored:
                report.files.append(FileOutcome(file=name + "/", status=SKIPPED, reason="The media folder; not searched."))
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and not (here / d).is_symlink() and (here / d).resolve() not in ignored
        )
        for filename in sorted(filenames):
            path = here / filename
            name = path.relative_to(root).as_posix()
            if path.resolve() in ignored:
                continue
            if filename.startswith("."):
                report.files.append(FileOutcome(file=name, status=SKIPPED, reason="Hidden file."))
                continue
            suffix = path.suffix.lower()
            if suffix and suffix not in IMAGE_SUFFIXES:
                report.files.append(
                    FileOutcome(file=name, status=SKIPPED, reason=f"Not an image file type ({suffix}).")
                )
                continue
            yield path, name


def _file_import(
    project: Project,
    root: Path,
    path: Path,
    name: str,
    declared: FileTarget,
    default_timepoint: str,
    allow_colour: bool,
    mapping: dict[str, str] | None,
) -> FileOutcome:
    outcome = FileOutcome(file=name, status=FAILED, patient=declared.patient)
    real = path.resolve()
    if not real.is_relative_to(root):
        outcome.reason = _OUTSIDE
        return outcome
    if not real.exists():
        outcome.reason = _NOT_FOUND
        return outcome
    if not real.is_file():
        outcome.reason = "Not a regular file."
        return outcome
    size = real.stat().st_size
    if size == 0:
        outcome.reason = "The file is empty (0 bytes)."
        return outcome
    max_pixels = settings.MAX_IMAGE_PIXELS
    if size > max_file_bytes(max_pixels):
        outcome.reason = f"The file is too large ({size:,} bytes) for an image of at most {max_pixels:,} pixels."
        return outcome
    try:
        data = real.read_bytes()
        dicom_key_check(name=name, data=data)
        prepared = file_prepare(
            name=name,
            data=data,
            declared=declared,
            max_pixels=max_pixels,
            key=ingestion_key(),
            default_timepoint=default_timepoint,
            allow_colour=allow_colour,
        )
    except (ImageRefused, TargetMissing) as refusal:
        outcome.reason = str(refusal)
        return outcome
    except Exception as exc:
        return _unexpected(outcome, exc, "read")
    try:
        return radiograph_ingest(project=project, prepared=prepared, mapping=mapping)
    except Exception as exc:
        # The file's own transaction is rolled back and its stored file removed (radiograph_ingest);
        # the folder import reports it and goes on with the next file.
        return _unexpected(outcome, exc, "store")


def _unexpected(outcome: FileOutcome, exc: Exception, step: str) -> FileOutcome:
    # The type only, never the message or a traceback: either may quote the file's header.
    logger.error("Ingestion: a file could not be %s (%s)", "read" if step == "read" else "stored", type(exc).__name__)
    outcome.status = FAILED
    outcome.radiograph = None
    outcome.reason = f"The file could not be {'read' if step == 'read' else 'stored'} ({type(exc).__name__}); nothing of it was stored."
    return outcome


# ---------------------------------------------------------------------------------------------
# RA2-DREAM score sheets
# ---------------------------------------------------------------------------------------------


def area_specs(*, scheme: Scheme) -> list[ra2.AreaSpec]:
    """The scheme's scored areas in the data file's order, as the pure sheet code needs them."""
    return [
        ra2.AreaSpec(
            body_part=area.body_part, code=area.code, dimension=area.dimension, max_grade=area.max_grade,
            step=float(area.grade_step), weight=area.total_weight,
        )
        for area in JointArea.objects.filter(scheme=scheme).order_by("order")
    ]


def reader_ensure(*, project: Project, username: str) -> tuple[AbstractBaseUser, bool]:
    """The reader's account (created without a usable password) and a membership in the project.

    An existing membership is kept as it is, so importing a lead's grades never demotes the lead.
    """
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    Membership.objects.get_or_create(user=user, project=project, defaults={"role": Membership.Role.READER})
    return user, created


def ra2_import(
    *,
    project: Project,
    csv_text: str,
    images_root: Path,
    reader_username: str,
    timepoint: str = "baseline",
    allow_colour: bool = False,
) -> IngestionReport:
    """Import an RA2-DREAM sheet and its images as one reader's submitted readings.

    Images are `{Patient_ID}-{LH,RH,LF,RF}.jpg` under `images_root`. Each side's grades are saved
    and submitted in one transaction when every area of the side is graded; otherwise they are
    saved and left unsubmitted. Missing images, columns and bad cells are reported, not fatal.
    Raises `ra2.SheetError` when the file is not a score sheet at all.
    """
    specs = area_specs(scheme=project.scheme)
    spec = ra2.total_spec(project.scheme.totals)
    sheet = ra2.sheet_read(csv_text, specs, spec)
    report = IngestionReport()
    if sheet.missing_columns:
        shown = ", ".join(sheet.missing_columns[:12]) + (" …" if len(sheet.missing_columns) > 12 else "")
        report.notes.append(f"{len(sheet.missing_columns)} column(s) of scheme {project.scheme.key} are missing: {shown}")
    if sheet.unknown_columns:
        report.notes.append(f"Column(s) not in scheme {project.scheme.key}, ignored: {', '.join(sheet.unknown_columns)}")
    report.notes.extend(sheet.errors)

    root = images_root.resolve(strict=True)
    reader, created = reader_ensure(project=project, username=reader_username)
    if created:
        report.notes.append(f"Reader account '{reader_username}' created without a password; set one in the admin to let them log in.")
    areas = {(area.body_part, area.code): area for area in JointArea.objects.filter(scheme=project.scheme)}
    images = _image_index(root)
    for row in sheet.rows:
        if not PATIENT_PATTERN.match(row.patient):
            report.notes.append(f"Line {row.line}: Patient_ID '{row.patient}' is not a usable pseudonym; the row is left out.")
            continue
        report.notes.extend(f"Patient {row.patient}: {message}." for message in row.total_mismatches(sheet.columns, spec))
        report.notes.extend(f"Patient {row.patient} (line {row.line}): {error}; that cell is left out." for error in row.errors)
        for side, (body_part, laterality) in ra2.SIDES.items():
            cells = row.side_cells(side)
            path = images.get(f"{row.patient}-{side}".upper())
            if path is None:
                report.files.append(
                    FileOutcome(file=f"{row.patient}-{side}.jpg", status=FAILED, reason="Image not found.",
                                patient=row.patient, timepoint=timepoint, side=side)
                )
                if cells:
                    report.readings.append(ReadingOutcome(row.patient, side, "not_imported", f"{len(cells)} grade(s) left out: the image is missing."))
                continue
            declared = FileTarget(patient=row.patient, timepoint=timepoint, laterality=laterality, body_part=body_part)
            outcome = _file_import(project, root, path, path.relative_to(root).as_posix(), declared, timepoint, allow_colour, None)
            report.files.append(outcome)
            if not cells:
                continue
            radiograph = (
                Radiograph.objects.select_related("visit__patient").filter(pk=outcome.radiograph).first()
                if outcome.radiograph
                else None
            )
            if radiograph is None:
                report.readings.append(ReadingOutcome(row.patient, side, "not_imported", f"Grades left out: {outcome.reason}"))
                continue
            stored = (radiograph.visit.patient.pseudonym, radiograph.visit.timepoint, radiograph.body_part, radiograph.laterality)
            if stored != (row.patient, timepoint, body_part, laterality):
                report.readings.append(
                    ReadingOutcome(row.patient, side, "not_imported",
                                   f"Grades left out: the image is radiograph #{radiograph.pk} of another patient or side.", radiograph.pk)
                )
                continue
            report.readings.append(_reading_import(radiograph=radiograph, reader=reader, cells=cells, areas=areas, side=side))
    _log(project, report)
    return report


def _image_index(root: Path) -> dict[str, Path]:
    """Images directly in `root` by upper-case stem; `.jpg` wins over other suffixes of one stem."""
    preference = {suffix: rank for rank, suffix in enumerate(IMAGE_SUFFIXES)}
    index: dict[str, Path] = {}
    for path in sorted(root.iterdir()):
        suffix = path.suffix.lower()
        if suffix not in preference or path.name.startswith("."):
            continue
        key = path.stem.upper()
        if key not in index or preference[suffix] < preference[index[key].suffix.lower()]:
            index[key] = path
    return index


def _reading_import(
    *, radiograph: Radiograph, reader: AbstractBaseUser, cells: dict[str, int], areas: dict, side: str
) -> ReadingOutcome:
    patient = radiograph.visit.patient.pseudonym
    expected = {code for body_part, code in areas if body_part == radiograph.body_part}
    with transaction.atomic():
        assignment, _ = Assignment.objects.get_or_create(reader=reader, radiograph=radiograph)
        current = {grade.area.code: grade for grade in assignment.grades.select_related("area")}
        if assignment.status == Assignment.Status.SUBMITTED:
            if {code: grade.value for code, grade in current.items()} == cells:
                return ReadingOutcome(patient, side, "unchanged", "Already submitted with the same grades.", radiograph.pk)
            return ReadingOutcome(
                patient, side, "conflict",
                "Already submitted with other grades; the submitted grades are kept.", radiograph.pk,
            )
        items = [
            GradeInput(
                area=areas[(radiograph.body_part, code)],
                value=value,
                version=current[code].version if code in current else 0,
            )
            for code, value in cells.items()
        ]
        services.grade_bulk_save(assignment=assignment, user=reader, items=items)
        missing = sorted(expected - set(cells) - set(current))
        if missing:
            return ReadingOutcome(
                patient, side, "incomplete",
                f"{len(missing)} area(s) have no grade ({', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}); saved, not submitted.",
                radiograph.pk,
            )
        services.assignment_submit(assignment=assignment)
    # The submit task recounts too; doing it now means the status is right before any worker runs.
    services.radiograph_progress_update(radiograph_id=radiograph.pk)
    return ReadingOutcome(patient, side, "submitted", "", radiograph.pk)
