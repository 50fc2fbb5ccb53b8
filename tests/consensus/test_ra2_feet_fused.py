"""Feet through the whole RA2-DREAM path: three readers' sheets with LF/RF columns import, are
fused by the default aggregator, and the consensus exports back with the full SvdH totals."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image

from annotation import ra2
from annotation.models import Project, Radiograph
from annotation.schemes import scheme_definitions
from consensus import exports, services
from consensus.aggregation import DEFAULT_AGGREGATOR
from modeling.ml.foot_phantoms import generate_whole_patient, side_code
from modeling.ml.phantoms import PhantomConfig
from scoring.readers import make_reader_panel

SMALL = PhantomConfig(width=160, height=200)
PATIENTS = ("FEET01", "FEET02", "FEET03")
READERS = ("reader_one", "reader_two", "reader_three")


def _scheme():
    (scheme,) = [item for item in scheme_definitions() if item["key"] == "svdh"]
    return scheme


@pytest.fixture
def feet_study(tmp_path):
    """Images of three whole patients, the truth per RA2 column and three readers' sheets."""
    scheme = _scheme()
    specs = [ra2.AreaSpec(a["body_part"], a["code"], a["dimension"], a["max_grade"]) for a in scheme["areas"]]
    landmark = {(a["body_part"], a["code"]): a["landmark"] for a in scheme["areas"]}
    columns = ra2.columns_for(specs)
    folder = tmp_path / "images"
    folder.mkdir()
    truth: dict[str, dict[str, int]] = {}
    for index, patient in enumerate(PATIENTS):
        films = {side_code(f): f for f in generate_whole_patient(40 + index, SMALL, severity=2.5)}
        for side, film in films.items():
            pixels = (film.image >> 8).astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
            (folder / f"{patient}-{side}.jpg").write_bytes(buffer.getvalue())
        truth[patient] = {
            c.name: films[c.side].grades[c.area.dimension][landmark[(c.area.body_part, c.area.code)]] for c in columns
        }
    rng = np.random.default_rng(5)
    hands = make_reader_panel(3, n=3)
    feet = make_reader_panel(3, n=3, dimensions={"erosion": 10, "jsn": 4})
    sheets = {}
    for r, reader in enumerate(READERS):
        given = {patient: {} for patient in PATIENTS}
        for patient in PATIENTS:
            for part, panel in (("hand", hands), ("foot", feet)):
                for dim in ("erosion", "jsn"):
                    chosen = [c for c in columns if c.area.body_part == part and c.area.dimension == dim]
                    values = panel[r].grade(np.array([truth[patient][c.name] for c in chosen]), dim, rng)
                    given[patient].update({c.name: int(v) for c, v in zip(chosen, values)})
        sheets[reader] = ra2.sheet_write(
            {(p, c.side, c.area.code): given[p][c.name] for p in PATIENTS for c in columns}, specs
        )
    return folder, truth, sheets, columns


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.django_db
def test_an_ra2_sheet_with_feet_imports_fuses_and_exports_back_with_the_full_svdh_totals(schemes, tmp_path, feet_study):
    folder, truth, sheets, columns = feet_study
    for reader, sheet in sheets.items():
        path = tmp_path / f"{reader}.csv"
        path.write_text(sheet)
        out = io.StringIO()
        call_command("import_ra2", "--csv", str(path), "--images", str(folder), "--project", "feet", "--reader", reader,
                     "--json", stdout=out)
        assert json.loads(out.getvalue())["reading_counts"] in ({"submitted": 12}, {"submitted": 12, "unchanged": 0})
    project = Project.objects.get(slug="feet")
    assert Radiograph.objects.filter(project=project, body_part="foot").count() == 6
    assert all(r.submitted_reads == 3 for r in Radiograph.objects.filter(project=project))

    for dimension in ("erosion", "jsn"):
        run = services.consensus_compute(project=project, dimension=dimension, compare_with=())
        assert run.aggregator == DEFAULT_AGGREGATOR
        # One fit per scale: the foot's erosion 0-10 apart from the hand's 0-5.
        assert {p["body_part"] for p in run.parts} == {"hand", "foot"}

    exported = _rows(exports.consensus_ra2_csv(project=project))
    assert [row["Patient_ID"] for row in exported] == list(PATIENTS)
    given = {reader: {row["Patient_ID"]: row for row in _rows(sheet)} for reader, sheet in sheets.items()}
    foot_erosion_total = 0
    for row in exported:
        cells = {c.name: int(row[c.name]) for c in columns}
        erosion = sum(v for c, v in zip(columns, cells.values()) if c.area.dimension == "erosion")
        narrowing = sum(v for c, v in zip(columns, cells.values()) if c.area.dimension == "jsn")
        # The totals are the full SvdH score: both hands and both feet, within 0-448.
        assert (int(row["Overall_erosion"]), int(row["Overall_narrowing"])) == (erosion, narrowing)
        assert int(row["Overall_Tol"]) == erosion + narrowing <= 448
        foot = [c for c in columns if c.area.body_part == "foot"]
        assert all(0 <= cells[c.name] <= c.area.max_grade for c in foot)
        foot_erosion_total += sum(cells[c.name] for c in foot if c.area.dimension == "erosion")
        # Where the three readers agree, the consensus says the same, on the 0-10 scale too.
        for c in foot:
            votes = {int(given[reader][row["Patient_ID"]][c.name]) for reader in READERS}
            if len(votes) == 1:
                assert cells[c.name] == votes.pop()
    assert foot_erosion_total > 0
