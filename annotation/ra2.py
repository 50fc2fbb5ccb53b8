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
# A scheme's export totals: (column, dimensions summed). RA2-DREAM's three unless the scheme says.
TotalSpec = tuple[tuple[str, tuple[str, ...]], ...]
RA2_TOTALS: TotalSpec = (
    ("Overall_Tol", ("erosion", "jsn")), ("Overall_erosion", ("erosion",)), ("Overall_narrowing", ("jsn",)),
)


def total_spec(rows: Sequence[Mapping]) -> TotalSpec:
    """A scheme's `totals` data ([{"column", "dimensions"}]) as a spec; empty -> RA2's three."""
    return tuple((row["column"], tuple(row["dimensions"])) for row in rows) or RA2_TOTALS

ScoreKey = tuple[str, str, str]  # (Patient_ID, side such as "LH", area code such as "pip_E__2")


def side_code(*, body_part: str, laterality: str) -> str:
    """'LH', 'RH', 'LF' or 'RF': the inverse of `SIDES`."""
    return f"{laterality}{'F' if body_part == 'foot' else 'H'}"


@dataclass(frozen=True)
class AreaSpec:
    body_part: str
    code: str
    dimension: str  # "erosion" or "jsn"
    max_grade: int  # highest level; cells hold levels, the sheet holds level x step
    step: float = 1.0
    weight: int = 1  # times the area counts in the totals

    def grade_text(self, level: int) -> str:
        """The grade as the sheet writes it: 2.5 for level 5 of a half-step area, 3 for a whole one."""
        return format_grade(level * self.step)


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


def header_for(areas: Sequence[AreaSpec], spec: TotalSpec = RA2_TOTALS) -> list[str]:
    return [PATIENT_COLUMN, *(name for name, _ in spec), *(column.name for column in columns_for(areas))]


def format_grade(value: float) -> str | int:
    """Whole grades as integers (as RA2 sheets have them), half steps as 2.5."""
    return int(value) if float(value).is_integer() else str(round(value, 2))


def totals(
    cells: Mapping[tuple[str, str], int], columns: Sequence[Column], spec: TotalSpec = RA2_TOTALS
) -> dict[str, float] | None:
    """The totals of one patient's cells ((side, code) -> level) in grade units, or None if any is missing."""
    by_dimension: dict[str, float] = {}
    for column in columns:
        value = cells.get((column.side, column.area.code))
        if value is None:
            return None
        dimension = column.area.dimension
        by_dimension[dimension] = by_dimension.get(dimension, 0) + value * column.area.step * column.area.weight
    return {name: sum(by_dimension.get(d, 0) for d in dimensions) for name, dimensions in spec}


@dataclass
class SheetRow:
    patient: str
    line: int
    cells: dict[tuple[str, str], int] = field(default_factory=dict)  # (side, code) -> grade
    totals: dict[str, float | None] = field(default_factory=dict)  # as written in the sheet
    errors: list[str] = field(default_factory=list)  # bad cells; those cells are left out
    blank: list[str] = field(default_factory=list)  # column names with an empty cell

    def side_cells(self, side: str) -> dict[str, int]:
        return {code: value for (cell_side, code), value in self.cells.items() if cell_side == side}

    def total_mismatches(self, columns: Sequence[Column], spec: TotalSpec = RA2_TOTALS) -> list[str]:
        """Each written total that differs from the sum of the row's cells."""
        computed = totals(self.cells, columns, spec)
        if computed is None:
            return []
        return [
            f"{name} is {format_grade(self.totals[name])} but the joints sum to {format_grade(computed[name])}"
            for name, _ in spec
            if self.totals.get(name) is not None and abs(self.totals[name] - computed[name]) > 1e-9
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


def sheet_read(text: str, areas: Sequence[AreaSpec], spec: TotalSpec = RA2_TOTALS) -> Sheet:
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
        unknown_columns=[name for name in header if name not in by_name and name not in (PATIENT_COLUMN, *(n for n, _ in spec))],
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
        for name, _ in spec:
            if record.get(name, "") != "":
                row.totals[name] = _number(record[name])
                if row.totals[name] is None:
                    row.errors.append(f"{name} is '{record[name]}'; expected a number")
        for column in present:
            raw = record.get(column.name, "")
            if raw == "":
                row.blank.append(column.name)
                continue
            value = _level(raw, column.area.step)
            if value is None or not 0 <= value <= column.area.max_grade:
                expected = (
                    f"a whole number 0-{column.area.max_grade}" if column.area.step == 1
                    else f"0-{column.area.grade_text(column.area.max_grade)} in steps of {format_grade(column.area.step)}"
                )
                row.errors.append(f"{column.name} is '{raw}'; expected {expected}")
                continue
            row.cells[(column.side, column.area.code)] = value
        sheet.rows.append(row)
    return sheet


def sheet_write(
    scores: Mapping[ScoreKey, int], areas: Sequence[AreaSpec], patients: Iterable[str] | None = None,
    spec: TotalSpec = RA2_TOTALS,
) -> str:
    """The sheet for `scores`; one row per patient (default: every patient with a score)."""
    columns = columns_for(areas)
    chosen = sorted(set(patients) if patients is not None else {patient for patient, _, _ in scores})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header_for(areas, spec))
    for patient in chosen:
        cells = {
            (column.side, column.area.code): scores[(patient, column.side, column.area.code)]
            for column in columns
            if (patient, column.side, column.area.code) in scores
        }
        summed = totals(cells, columns, spec)
        writer.writerow(
            [patient]
            + [format_grade(summed[name]) if summed else "" for name, _ in spec]
            + [
                column.area.grade_text(cells[(column.side, column.area.code)]) if (column.side, column.area.code) in cells else ""
                for column in columns
            ]
        )
    return buffer.getvalue()


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number else None  # NaN is not a total


def _level(text: str, step: float) -> int | None:
    """The level of a written grade: '2.5' at step 0.5 -> 5; a grade between steps -> None."""
    number = _number(text)
    if number is None:
        return None
    level = number / step
    return int(round(level)) if abs(level - round(level)) < 1e-9 else None
