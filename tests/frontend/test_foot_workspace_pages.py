"""The workspace on a foot film: the paper form's rows, foot totals, and the visit's full SvdH total.

Persona (tests/conftest.py): reader_a reads alpha; here one patient's four films (both hands and
both feet) are assigned to reader_a alone.
"""
from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from annotation import services
from annotation.models import JointArea
from annotation.services import GradeInput
from tests.conftest import png_bytes


def _film(project, laterality: str, body_part: str, seed: int):
    return services.radiograph_add(
        project=project, pseudonym="ALPHA-FEET-001", laterality=laterality, body_part=body_part,
        image_bytes=png_bytes(seed=900 + seed), image_suffix="png", width=64, height=80,
    ).radiograph


def _grade_all(assignment, user, value_of) -> int:
    areas = JointArea.objects.filter(scheme=assignment.radiograph.project.scheme, body_part=assignment.radiograph.body_part)
    items = [GradeInput(area=a, value=min(a.max_grade, value_of(a)), version=0) for a in areas]
    services.grade_bulk_save(assignment=assignment, user=user, items=items)
    return sum(item.value for item in items)


@pytest.fixture
def visit(world):
    reader = world.users["reader_a"]
    films = {f"{lat}{part[0].upper()}": _film(world.alpha, lat, part, i)
             for i, (lat, part) in enumerate([("L", "hand"), ("R", "hand"), ("L", "foot"), ("R", "foot")])}
    assignments = {side: services.assignments_create(radiograph=film, readers=[reader])[0] for side, film in films.items()}
    return world, reader, assignments


def _config(page: str) -> dict:
    start = page.index('<script id="workspace-config" type="application/json">') + len('<script id="workspace-config" type="application/json">')
    return json.loads(page[start:page.index("</script>", start)])


def test_the_foot_workspace_lists_mtp_1_to_5_then_hallux_ip_with_erosion_to_10_and_a_foot_total(client, visit):
    world, reader, assignments = visit
    client.force_login(reader)
    page = client.get(reverse("workspace", args=[assignments["RF"].pk])).content.decode()
    rows = [row for row in _config(page)["rows"] if not row.get("group_heading")]
    assert [row["joint"] for row in rows] == ["mtp1", "mtp2", "mtp3", "mtp4", "mtp5", "mtp_ip"]
    assert {row["erosion"]["max_grade"] for row in rows} == {10} and {row["jsn"]["max_grade"] for row in rows} == {4}
    assert "Foot total" in page and "Hand total" not in page
    assert "of 448" in page


def test_csv_of_a_foot_gives_the_foot_total_and_the_visit_total_once_every_film_is_graded(client, visit):
    world, reader, assignments = visit
    client.force_login(reader)
    expected = 0
    for side in ("LH", "RH", "LF"):
        expected += _grade_all(assignments[side], reader, lambda a: 1 + a.order % 3)
    url = reverse("workspace-csv", args=[assignments["RF"].pk])
    rows = {row["joint"]: row for row in csv.DictReader(io.StringIO(client.get(url).content.decode()))}
    # Three of four films graded: no visit total yet, a partial sum would read as a full score.
    assert rows["svdh_visit_total"]["erosion"] == "" and rows["svdh_max"]["erosion"] == "448"

    foot = _grade_all(assignments["RF"], reader, lambda a: 10 if a.code == "mtp_E__5" else 2)
    rows = {row["joint"]: row for row in csv.DictReader(io.StringIO(client.get(url).content.decode()))}
    assert rows["MTP 5"]["erosion"] == "10" and rows["svdh_total"]["erosion"] == str(foot)
    assert rows["svdh_visit_total"]["erosion"] == str(expected + foot)
    assert rows["svdh_visit_total"]["image"] == "visit"
    page = client.get(reverse("workspace-print", args=[assignments["RF"].pk])).content.decode()
    assert "Foot total" in page and f"<td colspan=\"2\">{expected + foot}</td>" in page
