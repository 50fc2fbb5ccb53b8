"""Genant-modified Sharp and Larsen as data: sites and scales, half steps, weighted totals, fusion, export, model heads.

Nothing here is code per scheme: the same services, consensus and model run on rows loaded from
`annotation/data/schemes.json`. Personas: one lead reads nothing; reader_a and reader_b read.
"""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from django.db.models import F, Sum
from django.urls import reverse

from annotation import ra2, services
from annotation.exports import ra2_sheet_export
from annotation.ingestion import area_specs
from annotation.models import JointArea
from consensus import exports
from consensus import services as consensus_services
from consensus.selectors import scale_list
from modeling.ml.data import scheme_from_entry
from modeling.ml.inference import build_model, predict_hand
from modeling.ml.phantoms import PhantomConfig, generate_patient

from ..conftest import client_for, make_radiograph, make_user
from ..consensus.conftest import areas_of, submit_grades


def _max_total(key: str, dimension: str | None = None) -> float:
    areas = JointArea.objects.filter(scheme__key=key, body_part="hand")
    if dimension:
        areas = areas.filter(dimension=dimension)
    return float(areas.aggregate(total=Sum(F("max_grade") * F("grade_step") * F("total_weight")))["total"])


def test_genant_has_14_half_step_erosion_sites_and_13_jsn_sites_per_hand(schemes) -> None:
    erosion = JointArea.objects.filter(scheme__key="genant", dimension="erosion")
    jsn = JointArea.objects.filter(scheme__key="genant", dimension="jsn")
    assert erosion.count() == 14 and jsn.count() == 13
    assert {(a.max_grade, float(a.grade_step)) for a in erosion} == {(7, 0.5)}  # 0, 0.5, ..., 3.5
    assert {(a.max_grade, float(a.grade_step)) for a in jsn} == {(4, 1.0)}
    assert (_max_total("genant", "erosion"), _max_total("genant", "jsn"), _max_total("genant")) == (49.0, 52.0, 101.0)


def test_larsen_grades_ten_joints_and_a_wrist_that_counts_five_times(schemes) -> None:
    areas = JointArea.objects.filter(scheme__key="larsen")
    assert areas.count() == 11 and set(areas.values_list("dimension", flat=True)) == {"erosion"}
    assert areas.get(code="wrist_E__unit").total_weight == 5
    assert _max_total("larsen") == 75.0
    assert areas.first().scheme.dimension_labels == {"erosion": "Larsen grade", "total": "Larsen total"}


@pytest.fixture
def genant_read(schemes):
    """Both hands of one Genant patient read by reader_a and reader_b, who differ by a half on one site."""
    project = services.project_create(name="Genant hands", slug="genant-hands", scheme_key="genant", readers_per_radiograph=2)
    radiograph = make_radiograph(project, "GEN-001", laterality="R")
    left = make_radiograph(project, "GEN-001", laterality="L")
    areas = areas_of(project)
    first = {a.code: (k % (a.max_grade + 1)) for k, a in enumerate(areas)}
    second = first | {"pip_E__2": first["pip_E__2"] + 1}
    readers = [make_user("reader_a"), make_user("reader_b")]
    for reader in readers:
        services.membership_set(user=reader, project=project, role="reader")
    for hand in (radiograph, left):
        submit_grades(hand, readers[0], first)
        submit_grades(hand, readers[1], second)
    return project, radiograph, first


def test_a_genant_project_fuses_with_the_ordinal_default_and_exports_half_grades(genant_read) -> None:
    project, radiograph, first = genant_read
    scales = [(s.dimension, s.max_grade) for s in scale_list(project=project)]
    assert scales == [("erosion", 7), ("jsn", 4)]
    for dimension in ("erosion", "jsn"):
        run = consensus_services.consensus_compute(project=project, dimension=dimension, compare_with=())
        assert run.status == "ok", run.error
        assert all(len(label.posterior) == (8 if dimension == "erosion" else 5) for label in run.labels.all())
    (row,) = list(csv.DictReader(io.StringIO(exports.consensus_ra2_csv(project=project))))
    # Both readers agree on MCP 1 (level 5 = 2.5) and on every JSN site.
    assert first["mcp_E__1"] == 5 and row["RH_mcp_E__1"] == "2.5"
    assert row["RH_mcp_J__1"] == str(first["mcp_J__1"]) and row["LH_mcp_E__1"] == "2.5"
    erosion = sum(float(v) for k, v in row.items() if "_E__" in k and v)
    narrowing = sum(float(v) for k, v in row.items() if "_J__" in k and v)
    assert float(row["Overall_erosion"]) == erosion and float(row["Overall_narrowing"]) == narrowing
    assert float(row["Overall_Tol"]) == erosion + narrowing
    reports = exports.agreement_reports(project=project)
    assert [(r.scale.dimension, r.scale.max_grade) for r in reports] == [("erosion", 7), ("jsn", 4)]
    assert all(len(r.readers[0].confusion) == r.scale.max_grade + 1 for r in reports)


def test_a_genant_sheet_reads_half_grades_back_and_refuses_quarter_steps(schemes) -> None:
    project = services.project_create(name="Genant sheet", slug="genant-sheet", scheme_key="genant")
    specs = area_specs(scheme=project.scheme)
    spec = ra2.total_spec(project.scheme.totals)
    text = "Patient_ID,Overall_erosion,RH_mcp_E__1,RH_mcp_E__2,RH_mcp_J__1\nP1,9,2.5,3.25,4\n"
    sheet = ra2.sheet_read(text, specs, spec)
    (row,) = sheet.rows
    assert row.cells[("RH", "mcp_E__1")] == 5 and row.cells[("RH", "mcp_J__1")] == 4
    assert row.errors == ["RH_mcp_E__2 is '3.25'; expected 0-3.5 in steps of 0.5"]
    assert ("RH", "mcp_E__2") not in row.cells


def test_a_larsen_sheet_counts_the_wrist_five_times_in_its_own_total_column(schemes) -> None:
    project = services.project_create(name="Larsen", slug="larsen-hands", scheme_key="larsen", readers_per_radiograph=1)
    reader = make_user("reader_a")
    services.membership_set(user=reader, project=project, role="reader")
    values = {a.code: 1 for a in areas_of(project)} | {"wrist_E__unit": 3}
    for laterality in "LR":
        submit_grades(make_radiograph(project, "LAR-001", laterality=laterality), reader, values)
    text = ra2_sheet_export(project=project, source="reader:reader_a")
    header, line = text.strip().splitlines()
    assert header.split(",")[:2] == ["Patient_ID", "Larsen_total"] and "Overall_Tol" not in header
    assert line.split(",")[:2] == ["LAR-001", str(2 * (10 * 1 + 3 * 5))]
    run = consensus_services.consensus_compute(project=project, dimension="erosion", compare_with=())
    assert run.labels.count() == 22


def test_area_api_tells_clients_the_step_and_weight_of_each_site(schemes) -> None:
    project = services.project_create(name="Genant api", slug="genant-api", scheme_key="genant", readers_per_radiograph=1)
    radiograph = make_radiograph(project, "GEN-API", laterality="R")
    reader = make_user("reader_a")
    services.membership_set(user=reader, project=project, role="reader")
    (assignment,) = services.assignments_create(radiograph=radiograph, readers=[reader])
    client = client_for(reader)
    response = client.put(
        reverse("api-grade-bulk-save", args=[assignment.pk]), {"grades": [{"area": "pip_E__2", "value": 8, "version": 0}]}, format="json"
    )
    assert response.status_code == 400
    assert "graded 0-7 in levels (grades 0-3.5 in steps of 0.5); got 8" in " ".join(response.json()["grades"]["0"]["value"])
    areas = client.get(reverse("api-assignment-detail", args=[assignment.pk])).json()["areas"]
    pip2 = next(area for area in areas if area["code"] == "pip_E__2")
    jsn = next(area for area in areas if area["code"] == "pip_J__2")
    assert (pip2["max_grade"], float(pip2["grade_step"]), pip2["total_weight"]) == (7, 0.5, 1)
    assert (jsn["max_grade"], float(jsn["grade_step"])) == (4, 1.0)


@pytest.mark.parametrize("key, heads", [("genant", {"erosion": 8, "jsn": 5}), ("larsen", {"erosion": 6})])
def test_the_model_builds_its_heads_from_any_scheme_and_grades_every_site(key, heads) -> None:
    entry = next(s for s in json.loads(open("annotation/data/schemes.json").read())["schemes"] if s["key"] == key)
    scheme = scheme_from_entry(entry)
    model = build_model(scheme)
    assert {name: head.out_features for name, head in model.grading_net.heads.items()} == heads
    _, right = generate_patient(3, PhantomConfig(width=320, height=400))
    prediction = predict_hand(model, right.image, right.laterality)
    codes = sorted(a["code"] for a in prediction.areas)
    assert codes == sorted(a["code"] for a in scheme["areas"])
    for area in prediction.areas:
        assert len(area["distribution"]) == heads[area["dimension"]]
        assert abs(float(np.sum(area["distribution"])) - 1) < 1e-5


def test_icc_of_films_with_identical_totals_has_no_interval_instead_of_dividing_by_zero() -> None:
    from scoring.reliability import icc_2_1

    # Two films, two readers: every film totals the same, the second reader half a grade higher.
    result = icc_2_1(np.array([[3.0, 3.5], [3.0, 3.5]]))
    assert result.icc == 0.0
    assert np.isnan(result.ci_low) and np.isnan(result.ci_high)
