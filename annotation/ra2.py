"""The RA2-DREAM score sheet: column names <-> (side, area code), totals, reading and writing.

Layout: `Patient_ID, Overall_Tol, Overall_erosion, Overall_narrowing`, then one column per scored
area and side, named `{side}_{area code}` (`LH_pip_E__2` is area `pip_E__2` of the left hand).
Written column order is fixed: sides LH, RH, LF, RF; within a side the scheme's area order
(`annotation/data/schemes.json`: erosion areas, then JSN areas). Rows are sorted by Patient_ID.
Reading accepts any column order. Totals are derived: `Overall_erosion` sums every `_E__` cell,
`Overall_narrowing` every `_J__` cell, `Overall_Tol` both; on export they are recomputed, and left
empty for a patient with any cell missing, because a partial sum would read as a full score.

Pure: no ORM. Images are named `{Patient_ID}-{LH,RH,LF,RF}.jpg`.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

# The side code of a radiograph (RA2-DREAM's image suffix) -> (body part, laterality). The one
# place the code is spelled: file names, manifests, exports and the dashboards all use it.
SIDES: dict[str, tuple[str, str]] = {"LH": ("hand", "L"), "RH": ("hand", "R"), "LF": ("foot", "L"), "RF": ("foot", "R")}
PATIENT_COLUMN = "Patient_ID"
TOTAL_COLUMNS = ("Overall_Tol", "Overall_erosion", "Overall_narrowing")

ScoreKey = tuple[str, str, str]  # (Patient_ID, side such as "LH", area code such as "pip_E__2")


def side_code(*, body_part: str, laterality: str) -> str:
    """'LH', 'RH', 'LF' or 'RF': the inverse of `SIDES`."""
    return f"{laterality}{'F' if body_part == 'foot' else 'H'}"


@dataclass(frozen=True)
class AreaSpec:
    body_part: str
    code: str
    dimension: str  # "erosion" or "jsn"
    max_grade: int


@dataclass(frozen=True)
class Column:
    name: str
    side: str
    area: AreaSpec


def columns_for(areas: Sequence[AreaSpec]) -> list[Column]:
    """Every per-joint column of a scheme, in the written order."""
    columns = []
    for side, (body_part, _) in SIDES.items():
        columns.extend(Column(f"{side}_{area.code}", side, area) for area in areas if area.body_part == body_part)
    return columns


def header_for(areas: Sequence[AreaSpec]) -> list[str]:
    return [PATIENT_COLUMN, *TOTAL_COLUMNS, *(column.name for column in columns_for(areas))]


def totals(cells: Mapping[tuple[str, str], int], columns: Sequence[Column]) -> dict[str, int] | None:
    """The three totals of one patient's cells ((side, code) -> grade), or None if any is missing."""
    erosion = narrowing = 0
    for column in columns:
        value = cells.get((column.side, column.area.code))
        if value is None:
            return None
        if column.area.dimension == "erosion":
            erosion += value
        else:
            narrowing += value
    return {"Overall_Tol": erosion + narrowing, "Overall_erosion": erosion, "Overall_narrowing": narrowing}


@dataclass
class SheetRow:
    patient: str
    line: int
    cells: dict[tuple[str, str], int] = field(default_factory=dict)  # (side, code) -> grade
    totals: dict[str, int | None] = field(default_factory=dict)  # as written in the sheet
    errors: list[str] = field(default_factory=list)  # bad cells; those cells are left out
    blank: list[str] = field(default_factory=list)  # column names with an empty cell

    def side_cells(self, side: str) -> dict[str, int]:
        return {code: value for (cell_side, code), value in self.cells.items() if cell_side == side}

    def total_mismatches(self, columns: Sequence[Column]) -> list[str]:
        """Each written total that differs from the sum of the row's cells."""
        computed = totals(self.cells, columns)
        if computed is None:
            return []
        return [
            f"{name} is {self.totals[name]} but the joints sum to {computed[name]}"
            for name in TOTAL_COLUMNS
            if self.totals.get(name) is not None and self.totals[name] != computed[name]
        ]


@dataclass
class Sheet:
    rows: list[SheetRow]
    columns: list[Column]  # the scheme's columns that the sheet has
    missing_columns: list[str]  # the scheme's columns that it lacks
    unknown_columns: list[str]  # columns that are neither totals nor the scheme's areas
    errors: list[str] = field(default_factory=list)  # rows left out entirely (e.g. duplicates)


class SheetError(Exception):
    """The file is not an RA2 score sheet at all."""


def sheet_read(text: str, areas: Sequence[AreaSpec]) -> Sheet:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise SheetError("The score sheet is empty.") from None
    if PATIENT_COLUMN not in header:
        raise SheetError(f"The score sheet has no '{PATIENT_COLUMN}' column.")
    by_name = {column.name: column for column in columns_for(areas)}
    present = [by_name[name] for name in header if name in by_name]
    sheet = Sheet(
        rows=[],
        columns=present,
        missing_columns=[name for name in by_name if name not in header],
        unknown_columns=[name for name in header if name not in by_name and name not in (PATIENT_COLUMN, *TOTAL_COLUMNS)],
    )
    seen: dict[str, int] = {}
    for line, values in enumerate(reader, start=2):
        if not any(value.strip() for value in values):
            continue
        record = dict(zip(header, (value.strip() for value in values)))
        patient = record.get(PATIENT_COLUMN, "")
        if not patient:
            sheet.errors.append(f"Line {line}: {PATIENT_COLUMN} is empty; the row is left out.")
            continue
        if patient in seen:
            sheet.errors.append(f"Line {line}: {PATIENT_COLUMN} {patient} is already on line {seen[patient]}; the row is left out.")
            continue
        seen[patient] = line
        row = SheetRow(patient=patient, line=line)
        for name in TOTAL_COLUMNS:
            if record.get(name, "") != "":
                row.totals[name] = _integer(record[name])
                if row.totals[name] is None:
                    row.errors.append(f"{name} is '{record[name]}'; expected a whole number")
        for column in present:
            raw = record.get(column.name, "")
            if raw == "":
                row.blank.append(column.name)
                continue
            value = _integer(raw)
            if value is None or not 0 <= value <= column.area.max_grade:
                row.errors.append(f"{column.name} is '{raw}'; expected a whole number 0-{column.area.max_grade}")
                continue
            row.cells[(column.side, column.area.code)] = value
        sheet.rows.append(row)
    return sheet


def sheet_write(scores: Mapping[ScoreKey, int], areas: Sequence[AreaSpec], patients: Iterable[str] | None = None) -> str:
    """The sheet for `scores`; one row per patient (default: every patient with a score)."""
    columns = columns_for(areas)
    chosen = sorted(set(patients) if patients is not None else {patient for patient, _, _ in scores})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header_for(areas))
    for patient in chosen:
        cells = {
            (column.side, column.area.code): scores[(patient, column.side, column.area.code)]
            for column in columns
            if (patient, column.side, column.area.code) in scores
        }
        summed = totals(cells, columns)
        writer.writerow(
            [patient]
            + [summed[name] if summed else "" for name in TOTAL_COLUMNS]
            + [cells.get((column.side, column.area.code), "") for column in columns]
        )
    return buffer.getvalue()


def _integer(text: str) -> int | None:
    """'3' or '3.0' -> 3; anything else (including '2.5' and 'NA') -> None."""
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None
