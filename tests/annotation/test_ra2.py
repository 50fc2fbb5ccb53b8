"""The RA2-DREAM layout: columns, totals, import as readers' submitted readings, export round trip."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation import exports, ra2
from annotation.models import Assignment, Grade, Membership, Project, Radiograph
from annotation.schemes import scheme_definitions

from .ingest_samples import jpeg_bytes, phantom_pair, to_8bit


def _specs(key: str = "svdh") -> list[ra2.AreaSpec]:
    (scheme,) = [item for item in scheme_definitions() if item["key"] == key]
    return [ra2.AreaSpec(a["body_part"], a["code"], a["dimension"], a["max_grade"]) for a in scheme["areas"]]


# Pure layout ------------------------------------------------------------------------------------


def test_columns_follow_the_documented_order():
    header = ra2.header_for(_specs())
    assert header[:8] == ["Patient_ID", "Overall_Tol", "Overall_erosion", "Overall_narrowing",
                          "LH_mcp_E__ip", "LH_pip_E__2", "LH_pip_E__3", "LH_pip_E__4"]
    assert header[19:22] == ["LH_wrist_E__ulna", "LH_pip_J__2", "LH_pip_J__3"]
    assert header[34] == "LH_wrist_J__radcar" and header[35] == "RH_mcp_E__ip"
    assert header[66:] == [f"LF_mtp_{d}__{j}" for d in "EJ" for j in ["ip", "1", "2", "3", "4", "5"]] + [
        f"RF_mtp_{d}__{j}" for d in "EJ" for j in ["ip", "1", "2", "3", "4", "5"]
    ]
    assert len(header) == 4 + 2 * 31 + 2 * 12


def test_a_column_names_a_side_and_a_scheme_area():
    columns = {column.name: column for column in ra2.columns_for(_specs())}
    assert (columns["LH_pip_E__2"].side, columns["LH_pip_E__2"].area.code) == ("LH", "pip_E__2")
    assert (columns["RF_mtp_J__ip"].side, columns["RF_mtp_J__ip"].area.max_grade) == ("RF", 4)
    assert columns["LF_mtp_E__1"].area.max_grade == 10
    assert "LH_mcp_J__ip" not in columns  # svdh grades the thumb IP for erosion only


def test_totals_sum_erosion_and_narrowing_and_mismatches_are_named():
    specs = _specs()
    header = ra2.header_for(specs)
    values = {name: 0 for name in header[4:]}
    values.update({"LH_pip_E__2": 3, "RF_mtp_E__5": 10, "RH_wrist_J__radcar": 2})
    text = ",".join(header) + "\n" + ",".join(["X1", "15", "12", "2"] + [str(values[n]) for n in header[4:]]) + "\n"

    (row,) = ra2.sheet_read(text, specs).rows

    assert ra2.totals(row.cells, ra2.columns_for(specs)) == {"Overall_Tol": 15, "Overall_erosion": 13, "Overall_narrowing": 2}
    assert row.total_mismatches(ra2.columns_for(specs)) == ["Overall_erosion is 12 but the joints sum to 13"]


def test_reading_accepts_any_column_order_and_whole_numbers_written_as_decimals():
    specs = _specs()
    text = "LH_pip_E__2,Patient_ID,LF_mtp_E__1,LH_mcp_J__1,Extra\n2.0,A1,10,5,x\n"

    sheet = ra2.sheet_read(text, specs)

    (row,) = sheet.rows
    assert row.cells == {("LH", "pip_E__2"): 2, ("LF", "mtp_E__1"): 10}
    assert row.errors == ["LH_mcp_J__1 is '5'; expected a whole number 0-4"]
    assert sheet.unknown_columns == ["Extra"]
    assert len(sheet.missing_columns) == 86 - 3


# Import and export ------------------------------------------------------------------------------

PATIENTS = ["UAB001", "UAB002", "UAB003"]


def _grades(seed: int) -> dict[str, dict[str, int]]:
    rng = np.random.default_rng(seed)
    columns = ra2.columns_for(_specs())
    return {patient: {c.name: int(rng.integers(0, c.area.max_grade + 1)) for c in columns} for patient in PATIENTS}


def _sheet(grades: dict[str, dict[str, int]], *, totals_override: dict | None = None, drop: tuple = (), replace: dict | None = None) -> str:
    """A sheet as RA2 writes it: the same column order the exporter documents."""
    specs = _specs()
    columns = ra2.columns_for(specs)
    header = [name for name in ra2.header_for(specs) if name not in drop]
    lines = [",".join(header)]
    for patient, cells in grades.items():
        erosion = sum(cells[c.name] for c in columns if c.area.dimension == "erosion")
        narrowing = sum(cells[c.name] for c in columns if c.area.dimension == "jsn")
        record = {"Patient_ID": patient, "Overall_Tol": erosion + narrowing, "Overall_erosion": erosion,
                  "Overall_narrowing": narrowing, **cells}
        record.update((totals_override or {}).get(patient, {}))
        record.update((replace or {}).get(patient, {}))
        lines.append(",".join(str(record[name]) for name in header))
    return "\n".join(lines) + "\n"


@pytest.fixture
def ra2_images(tmp_path):
    """{Patient_ID}-{side}.jpg for every patient and side, except UAB003's left foot."""
    folder = tmp_path / "images"
    folder.mkdir()
    for index, patient in enumerate(PATIENTS, start=1):
        left, right = (to_8bit(pixels) for pixels in phantom_pair(index))
        sides = {"LH": left, "RH": right, "LF": np.rot90(left, 2), "RF": np.rot90(right, 2)}
        for side, pixels in sides.items():
            if (patient, side) != ("UAB003", "LF"):
                (folder / f"{patient}-{side}.jpg").write_bytes(jpeg_bytes(np.ascontiguousarray(pixels)))
    return folder


def _import(sheet: str, images, reader: str, tmp_path, project: str = "ra2") -> dict:
    path = tmp_path / f"{reader}.csv"
    path.write_text(sheet)
    out = io.StringIO()
    call_command("import_ra2", "--csv", str(path), "--images", str(images), "--project", project, "--reader", reader, "--json", stdout=out)
    return json.loads(out.getvalue())


def _export(source: str, tmp_path, project: str = "ra2") -> list[str]:
    path = tmp_path / f"export-{source}.csv"
    call_command("export_scores", "--project", project, "--format", "ra2", "--source", source, "--out", str(path), stdout=io.StringIO())
    return path.read_text().splitlines()


def test_two_readers_sheets_import_as_a_multi_reader_study_and_export_unchanged(schemes, tmp_path, ra2_images):
    first, second = _grades(1), _grades(2)
    wrong = {"UAB002": {"Overall_erosion": 999}}
    sheet_one, sheet_two = _sheet(first), _sheet(second, totals_override=wrong)

    report_one = _import(sheet_one, ra2_images, "reader_one", tmp_path)
    report_two = _import(sheet_two, ra2_images, "reader_two", tmp_path)

    # Images: 11 of 12 found; the second reader's import finds them already stored.
    assert (report_one["imported"], report_one["skipped"], report_one["failed"]) == (11, 0, 1)
    assert (report_two["imported"], report_two["skipped"], report_two["failed"]) == (0, 11, 1)
    assert [f["reason"] for f in report_one["files"] if f["status"] == "failed"] == ["Image not found."]
    assert report_one["reading_counts"] == {"submitted": 11, "not_imported": 1}
    assert {"patient": "UAB003", "side": "LF", "status": "not_imported", "reason": "12 grade(s) left out: the image is missing.",
            "radiograph": None} in report_one["readings"]
    true_erosion = sum(second["UAB002"][c.name] for c in ra2.columns_for(_specs()) if c.area.dimension == "erosion")
    assert f"Patient UAB002: Overall_erosion is 999 but the joints sum to {true_erosion}." in report_two["notes"]
    assert not any("Overall" in note for note in report_one["notes"])

    project = Project.objects.get(slug="ra2")
    users = get_user_model().objects.filter(username__in=["reader_one", "reader_two"])
    assert {u.username for u in users} == {"reader_one", "reader_two"} and not any(u.has_usable_password() for u in users)
    assert set(Membership.objects.filter(project=project).values_list("role", flat=True)) == {"reader"}
    hand = Radiograph.objects.get(visit__patient__pseudonym="UAB001", body_part="hand", laterality="L")
    assert hand.submitted_reads == 2
    assert hand.assignments.filter(status=Assignment.Status.SUBMITTED).count() == 2
    assert Grade.objects.get(assignment__reader__username="reader_two", assignment__radiograph=hand, area__code="pip_E__2").value == second["UAB001"]["LH_pip_E__2"]

    exported_one, exported_two = _export("reader_one", tmp_path), _export("reader_two", tmp_path)

    input_one, input_two = sheet_one.splitlines(), sheet_two.splitlines()
    assert exported_one[:3] == input_one[:3]  # header and the two complete patients, byte for byte
    assert exported_two[1] == input_two[1]
    header = input_one[0].split(",")
    row_two = dict(zip(header, exported_two[2].split(",")))
    assert row_two["Overall_erosion"] == str(true_erosion)  # totals are recomputed, never copied
    assert {k: v for k, v in row_two.items() if k != "Overall_erosion"} == {
        k: v for k, v in zip(header, input_two[2].split(",")) if k != "Overall_erosion"
    }
    # UAB003 lacks its left foot: those cells are empty, and so are the totals they would enter.
    row_three, given_three = dict(zip(header, exported_one[3].split(","))), dict(zip(header, input_one[3].split(",")))
    assert [row_three[k] for k in ("Overall_Tol", "Overall_erosion", "Overall_narrowing")] == ["", "", ""]
    assert all(row_three[k] == "" for k in header if k.startswith("LF_"))
    assert all(row_three[k] == given_three[k] for k in header[4:] if not k.startswith("LF_"))


def test_importing_the_same_sheet_again_changes_nothing(schemes, tmp_path, ra2_images):
    sheet = _sheet(_grades(1))
    _import(sheet, ra2_images, "reader_one", tmp_path)
    grades_before = Grade.objects.count()

    again = _import(sheet, ra2_images, "reader_one", tmp_path)

    assert (again["imported"], again["skipped"]) == (0, 11)
    assert again["reading_counts"] == {"unchanged": 11, "not_imported": 1}
    assert Grade.objects.count() == grades_before


def test_a_different_sheet_for_a_submitted_reading_is_reported_and_the_reading_kept(schemes, tmp_path, ra2_images):
    grades = _grades(1)
    _import(_sheet(grades), ra2_images, "reader_one", tmp_path)
    changed = (grades["UAB001"]["LH_pip_E__2"] + 1) % 6

    again = _import(_sheet(grades, replace={"UAB001": {"LH_pip_E__2": changed}}), ra2_images, "reader_one", tmp_path)

    assert again["reading_counts"]["conflict"] == 1
    assert Grade.objects.get(
        assignment__reader__username="reader_one", assignment__radiograph__visit__patient__pseudonym="UAB001",
        assignment__radiograph__laterality="L", assignment__radiograph__body_part="hand", area__code="pip_E__2",
    ).value == grades["UAB001"]["LH_pip_E__2"]


def test_missing_columns_and_bad_cells_are_reported_and_leave_those_readings_unsubmitted(schemes, tmp_path, ra2_images):
    sheet = _sheet(_grades(1), drop=("RH_pip_E__5",), replace={"UAB001": {"LH_mcp_E__1": 7}})

    report = _import(sheet, ra2_images, "reader_one", tmp_path)

    assert "1 column(s) of scheme svdh are missing: RH_pip_E__5" in report["notes"]
    assert "Patient UAB001 (line 2): LH_mcp_E__1 is '7'; expected a whole number 0-5; that cell is left out." in report["notes"]
    by_key = {(r["patient"], r["side"]): r for r in report["readings"]}
    assert by_key[("UAB001", "LH")]["status"] == "incomplete"
    assert by_key[("UAB001", "LH")]["reason"] == "1 area(s) have no grade (mcp_E__1); saved, not submitted."
    assert all(by_key[(p, "RH")]["status"] == "incomplete" for p in PATIENTS)
    assert by_key[("UAB002", "LH")]["status"] == "submitted"
    # Unsubmitted work is not a score: the export leaves those cells empty.
    exported = _export("reader_one", tmp_path)
    header = exported[0].split(",")
    row = dict(zip(header, exported[1].split(",")))
    assert row["LH_pip_E__2"] == "" and row["RH_pip_E__2"] == "" and row["LF_mtp_E__1"] != ""


def test_export_from_a_consensus_that_does_not_exist_yet_is_a_clear_error(schemes, tmp_path, ra2_images, monkeypatch):
    _import(_sheet(_grades(1)), ra2_images, "reader_one", tmp_path)
    # Whatever another app may have registered, here no consensus source is installed.
    monkeypatch.setattr(exports, "_sources", {})

    with pytest.raises(CommandError, match="No consensus exists for project ra2 yet"):
        _export("consensus", tmp_path)


def test_a_registered_source_is_exported_in_the_same_layout(schemes, tmp_path, ra2_images, monkeypatch):
    _import(_sheet(_grades(1)), ra2_images, "reader_one", tmp_path)

    def fused(*, project, timepoint):
        return {("UAB001", "RH", "pip_J__3"): 4, ("UAB002", "LF", "mtp_E__ip"): 9}

    monkeypatch.setattr(exports, "_sources", {})
    exports.score_source_register(name="consensus", source=fused)

    exported = _export("consensus", tmp_path)

    header = exported[0].split(",")
    rows = [dict(zip(header, line.split(","))) for line in exported[1:]]
    assert [row["Patient_ID"] for row in rows] == ["UAB001", "UAB002"]
    assert rows[0]["RH_pip_J__3"] == "4" and rows[1]["LF_mtp_E__ip"] == "9" and rows[0]["Overall_Tol"] == ""


def test_export_of_someone_who_is_not_a_reader_of_the_project_is_refused(schemes, tmp_path, ra2_images):
    _import(_sheet(_grades(1)), ra2_images, "reader_one", tmp_path)
    get_user_model().objects.create_user(username="stranger")

    with pytest.raises(CommandError, match="'stranger' is not a reader of project ra2."):
        _export("stranger", tmp_path)
