"""Where an incoming file's patient, visit, side and body part come from: its name or a manifest.

Filename pattern (case of the side code and suffix does not matter):

    {patient}[_{timepoint}]-{LH|RH|LF|RF}.{png|jpg|jpeg|tif|tiff|dcm|dicom}

`patient` is letters, digits, dots and hyphens (no underscore: the last underscore starts the
timepoint); `timepoint` is letters, digits and dots. RA2-DREAM's `{Patient_ID}-{LH,RH,LF,RF}.jpg`
is a case of it. Examples: `UAB001-LH.jpg`, `P-017_m12-RF.dcm`.

Manifest: a CSV with a header naming some of `file, patient, timepoint, laterality, body_part`
(`file` is required; a path relative to the imported folder). Blank cells fall back to the
filename pattern, then to the DICOM header. `laterality` is L, R, left, right, or a side code
LH/RH/LF/RF (which also sets the body part); `body_part` is hand or foot.

Pure: no ORM, no file system. Body part defaults to hand, timepoint to the importer's default.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, fields, replace
from pathlib import PurePosixPath

from .imaging import DecodedImage, image_decode, pseudonym_for
from .ra2 import SIDES

MANIFEST_COLUMNS = ("file", "patient", "timepoint", "laterality", "body_part")

FILENAME_PATTERN = re.compile(
    r"^(?P<patient>[A-Za-z0-9][A-Za-z0-9.\-]*?)(?:_(?P<timepoint>[A-Za-z0-9.]+))?"
    r"-(?P<view>LH|RH|LF|RF)\.(?P<suffix>png|jpe?g|tiff?|dcm|dicom)$",
    re.IGNORECASE,
)
PATIENT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
TIMEPOINT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,31}$")
_LATERALITY_WORDS = {"L": "L", "LEFT": "L", "R": "R", "RIGHT": "R"}


@dataclass(frozen=True)
class FileTarget:
    """What is known about where a file belongs; None where this source does not say."""

    patient: str | None = None
    timepoint: str | None = None
    laterality: str | None = None  # "L" or "R"
    body_part: str | None = None  # "hand" or "foot"

    def over(self, fallback: FileTarget) -> FileTarget:
        """This target, with the gaps filled from `fallback`."""
        return replace(
            self, **{f.name: getattr(self, f.name) or getattr(fallback, f.name) for f in fields(self)}
        )


def target_from_filename(name: str) -> FileTarget | None:
    """The target a file's name states by the pattern, or None if it does not follow it."""
    match = FILENAME_PATTERN.match(PurePosixPath(name.replace("\\", "/")).name)
    if match is None:
        return None
    body_part, laterality = SIDES[match["view"].upper()]
    return FileTarget(
        patient=match["patient"], timepoint=match["timepoint"], laterality=laterality, body_part=body_part
    )


@dataclass(frozen=True)
class ManifestRow:
    file: str  # as written, normalised to forward slashes without a leading "./"
    line: int
    target: FileTarget


class ManifestError(Exception):
    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def manifest_path(value: str) -> str:
    path = value.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def manifest_read(text: str) -> dict[str, ManifestRow]:
    """Rows by file; every problem of the whole manifest is collected before raising."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    if "file" not in header:
        raise ManifestError(["The manifest has no 'file' column (expected a header with: " + ", ".join(MANIFEST_COLUMNS) + ")."])
    unknown = [name for name in header if name not in MANIFEST_COLUMNS]
    if unknown:
        raise ManifestError([f"Unknown manifest column(s): {', '.join(unknown)}; expected: {', '.join(MANIFEST_COLUMNS)}."])
    reader.fieldnames = header
    rows: dict[str, ManifestRow] = {}
    first_line: dict[str, int] = {}
    errors: list[str] = []
    for line, raw in enumerate(reader, start=2):
        cells = {key: (value or "").strip() for key, value in raw.items() if key is not None}
        if not any(cells.values()):
            continue
        problems: list[str] = []
        target = _manifest_target(cells, problems)
        file = manifest_path(cells.get("file", ""))
        if not file:
            problems.append("'file' is empty")
        elif file in first_line:
            problems.append(f"'{file}' is already listed on line {first_line[file]}")
        else:
            first_line[file] = line
        if problems:
            errors.extend(f"Manifest line {line}: {problem}." for problem in problems)
            continue
        rows[file] = ManifestRow(file=file, line=line, target=target)
    if errors:
        raise ManifestError(errors)
    return rows


def _manifest_target(cells: dict[str, str], problems: list[str]) -> FileTarget:
    patient = cells.get("patient") or None
    if patient is not None and not PATIENT_PATTERN.match(patient):
        problems.append(f"patient '{patient}' must be 1-64 letters, digits, dots, hyphens or underscores")
    timepoint = cells.get("timepoint") or None
    if timepoint is not None and not TIMEPOINT_PATTERN.match(timepoint):
        problems.append(f"timepoint '{timepoint}' must be 1-32 letters, digits, dots, hyphens or underscores")
    body_part = (cells.get("body_part") or "").lower() or None
    if body_part is not None and body_part not in ("hand", "foot"):
        problems.append(f"body_part '{cells['body_part']}' must be hand or foot")
    laterality = None
    side = (cells.get("laterality") or "").upper()
    if side in SIDES:
        view_part, laterality = SIDES[side]
        if body_part is not None and body_part != view_part:
            problems.append(f"laterality '{side}' is a {view_part} but body_part says {body_part}")
        body_part = view_part
    elif side:
        laterality = _LATERALITY_WORDS.get(side)
        if laterality is None:
            problems.append(f"laterality '{cells['laterality']}' must be L, R, left, right, LH, RH, LF or RF")
    return FileTarget(patient=patient, timepoint=timepoint, laterality=laterality, body_part=body_part)


# ---------------------------------------------------------------------------------------------
# One file, ready to store
# ---------------------------------------------------------------------------------------------


class TargetMissing(Exception):
    """Neither the name, the manifest nor the header says where the file belongs."""


@dataclass(frozen=True)
class PreparedFile:
    """A decoded, de-identified file and the complete target it goes to."""

    name: str
    decoded: DecodedImage
    target: FileTarget  # every field set


def target_resolve(*, declared: FileTarget, decoded: DecodedImage, key: str, default_timepoint: str) -> FileTarget:
    """Manifest or filename first, then the DICOM header, then the defaults.

    A DICOM file without a declared patient gets the keyed pseudonym of its Patient ID. A declared
    patient equal to the real Patient ID is refused: it would put the identifier in the database.
    """
    real_id = decoded.identity.patient_id
    if declared.patient and real_id and declared.patient.strip().upper() == real_id.strip().upper():
        raise TargetMissing(
            "The patient given for this file is the DICOM Patient ID itself; give a pseudonym in the "
            "manifest, or leave the patient out and a keyed pseudonym is made from the header."
        )
    header = FileTarget(
        patient=pseudonym_for(real_id, key=key) if real_id else None,
        laterality=decoded.laterality,
        body_part=decoded.body_part,
    )
    target = declared.over(header).over(FileTarget(timepoint=default_timepoint, body_part="hand"))
    if not target.patient:
        raise TargetMissing(
            "No patient: name the file {patient}[_{timepoint}]-{LH|RH|LF|RF}.{ext} or list it in a manifest."
        )
    if not PATIENT_PATTERN.match(target.patient):
        raise TargetMissing(f"The patient '{target.patient[:80]}' must be 1-64 letters, digits, dots, hyphens or underscores.")
    if not TIMEPOINT_PATTERN.match(target.timepoint or ""):
        raise TargetMissing(f"The timepoint '{(target.timepoint or '')[:80]}' must be 1-32 letters, digits, dots, hyphens or underscores.")
    if not target.laterality:
        raise TargetMissing(
            "No side: name the file {patient}[_{timepoint}]-{LH|RH|LF|RF}.{ext}, list it in a manifest "
            "with a laterality, or send a DICOM file with Image Laterality."
        )
    return target


def file_prepare(
    *,
    name: str,
    data: bytes,
    declared: FileTarget,
    max_pixels: int,
    key: str,
    default_timepoint: str = "baseline",
    allow_colour: bool = False,
) -> PreparedFile:
    """Decode, check and place one file; raises `ImageRefused` or `TargetMissing`."""
    decoded = image_decode(data, name=name, max_pixels=max_pixels, allow_colour=allow_colour)
    target = target_resolve(declared=declared, decoded=decoded, key=key, default_timepoint=default_timepoint)
    return PreparedFile(name=name, decoded=decoded, target=target)


def max_file_bytes(max_pixels: int) -> int:
    """A file larger than this cannot hold an accepted image, even uncompressed RGB with headers."""
    return max_pixels * 4 + (1 << 20)
