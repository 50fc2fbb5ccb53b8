"""Submitting a patient visit: every radiograph's last grades saved and every read submitted in one
request, all or nothing, with each refusal naming the radiograph and the area.

Personas: `visit_reader` reads all three radiographs of visit V-001 (both hands, the right foot);
`hand_reader` reads only its right hand.
"""
from __future__ import annotations

import pytest
from django.urls import reverse

from annotation import services
from annotation.models import Assignment, Grade, JointArea, Membership, Project
from annotation.services import GradeInput

from ..conftest import client_for, make_user, png_bytes


def _add(project, laterality: str, body_part: str, seed: int, pseudonym: str = "V-001"):
    return services.radiograph_add(
        project=project, pseudonym=pseudonym, laterality=laterality, body_part=body_part,
        image_bytes=png_bytes(seed=seed), image_suffix="png", width=64, height=80,
    ).radiograph


@pytest.fixture
def visit(schemes):
    project = services.project_create(
        name="By visit", slug="by-visit", readers_per_radiograph=2, reading_unit=Project.ReadingUnit.VISIT
    )
    reader, other = make_user("visit_reader"), make_user("hand_reader")
    for user in (reader, other):
        services.membership_set(user=user, project=project, role=Membership.Role.READER)
    right, left, foot = _add(project, "R", "hand", 901), _add(project, "L", "hand", 902), _add(project, "R", "foot", 903)
    later = _add(project, "R", "hand", 904, pseudonym="V-002")
    reads = {}
    for name, radiograph in [("RH", right), ("LH", left), ("RF", foot), ("later", later)]:
        (reads[name],) = services.assignments_create(radiograph=radiograph, readers=[reader])
    (others,) = services.assignments_create(radiograph=right, readers=[other])
    return project, reader, other, reads, others


def _all_grades(assignment, value_of=lambda area: area.max_grade // 2) -> list[dict]:
    radiograph = assignment.radiograph
    areas = JointArea.objects.filter(scheme=radiograph.project.scheme, body_part=radiograph.body_part)
    return [{"area": area.code, "value": value_of(area), "version": 0} for area in areas]


def _post(user, visit_id: int, reads: list[dict], seconds: int = 0):
    return client_for(user).post(
        reverse("api-visit-submit", args=[visit_id]), {"reads": reads, "seconds_spent": seconds}, format="json"
    )


@pytest.mark.django_db
def test_a_whole_visit_is_saved_and_submitted_in_one_request_with_the_source_decided_by_the_server(visit):
    project, reader, _, reads, _ = visit
    body = [{"assignment": reads[name].pk, "grades": _all_grades(reads[name])} for name in ("RH", "LH", "RF")]
    body[0]["grades"][0]["source"] = "accepted"  # forged: no suggestion was served in this project
    response = _post(reader, reads["RH"].radiograph.visit_id, body, seconds=301)
    assert response.status_code == 200, response.json()
    by_read = {name: Grade.objects.filter(assignment=reads[name]) for name in ("RH", "LH", "RF", "later")}
    # 31 hand areas each, 12 foot areas (MTP IP and 1-5, erosion and JSN), nothing on the other visit.
    assert [by_read[name].count() for name in ("RH", "LH", "RF", "later")] == [31, 31, 12, 0]
    assert set(Grade.objects.filter(assignment__reader=reader).values_list("source", flat=True)) == {"manual"}
    assert by_read["RF"].get(area__code="mtp_E__1").value == 5  # foot erosion goes to 10
    submitted = {name: Assignment.objects.get(pk=reads[name].pk) for name in reads}
    assert [submitted[name].status for name in ("RH", "LH", "RF", "later")] == ["submitted"] * 3 + ["pending"]
    # The visit's 301 s are split between its three reads.
    assert sorted(submitted[name].seconds_spent for name in ("RH", "LH", "RF")) == [100, 100, 101]
    assert sorted(response.json()["grades"]) == sorted(str(reads[name].pk) for name in ("RH", "LH", "RF"))


@pytest.mark.django_db
def test_a_bad_value_on_one_radiograph_is_refused_naming_it_and_the_area_and_saves_nothing(visit):
    _, reader, _, reads, _ = visit
    body = [{"assignment": reads[name].pk, "grades": _all_grades(reads[name])} for name in ("RH", "LH", "RF")]
    body[1]["grades"] = [dict(item, value=9) if item["area"] == "mcp_E__3" else item for item in body[1]["grades"]]
    response = _post(reader, reads["RH"].radiograph.visit_id, body)
    assert response.status_code == 400
    message = response.json()["reads"][0]
    assert f"Left hand (radiograph {reads['LH'].radiograph_id}), mcp_E__3" in message and "got 9" in message
    assert not Grade.objects.filter(assignment__reader=reader).exists()
    assert not Assignment.objects.filter(reader=reader, status="submitted").exists()


@pytest.mark.django_db
def test_an_ungraded_area_refuses_the_visit_naming_the_radiograph_and_saves_nothing(visit):
    _, reader, _, reads, _ = visit
    foot = _all_grades(reads["RF"])
    body = [
        {"assignment": reads["RH"].pk, "grades": _all_grades(reads["RH"])},
        {"assignment": reads["LH"].pk, "grades": _all_grades(reads["LH"])},
        {"assignment": reads["RF"].pk, "grades": [item for item in foot if item["area"] != "mtp_J__5"]},
    ]
    response = _post(reader, reads["RH"].radiograph.visit_id, body)
    assert response.status_code == 400
    assert response.json()["grades"] == [f"Right foot (radiograph {reads['RF'].radiograph_id}): 1 area(s) not graded yet: mtp_J__5"]
    assert not Grade.objects.filter(assignment__reader=reader).exists()


@pytest.mark.django_db
def test_a_stale_version_on_one_radiograph_refuses_the_whole_visit_with_its_conflict_named(visit):
    _, reader, _, reads, _ = visit
    area = JointArea.objects.get(scheme=reads["LH"].radiograph.project.scheme, body_part="hand", code="pip_J__4")
    # Saved from another tab after this page last saw the cell.
    services.grade_bulk_save(assignment=reads["LH"], user=reader, items=[GradeInput(area=area, value=3, version=0)])
    body = [{"assignment": reads[name].pk, "grades": _all_grades(reads[name])} for name in ("RH", "LH", "RF")]
    response = _post(reader, reads["RH"].radiograph.visit_id, body)
    assert response.status_code == 409
    assert response.json()["conflicts"] == [
        {"assignment": reads["LH"].pk, "area": "pip_J__4", "your_version": 0, "your_value": 2, "current_version": 1, "current_value": 3}
    ]
    # Only the grade saved before remains; nothing of the request, nothing submitted.
    assert list(Grade.objects.filter(assignment__reader=reader).values_list("area__code", "value")) == [("pip_J__4", 3)]
    assert not Assignment.objects.filter(reader=reader, status="submitted").exists()


@pytest.mark.django_db
def test_a_reader_submits_only_their_own_radiographs_of_a_visit(visit):
    _, reader, other, reads, others = visit
    visit_id = reads["RH"].radiograph.visit_id
    # The other reader's visit holds only their right hand: the first reader's reads are not theirs.
    response = _post(other, visit_id, [{"assignment": reads["LH"].pk, "grades": _all_grades(reads["LH"])}])
    assert response.status_code == 400
    assert response.json()["reads"] == [f"Assignment {reads['LH'].pk} is not one of your radiographs of this visit."]
    # A radiograph of another visit cannot ride along either.
    response = _post(reader, visit_id, [{"assignment": reads["later"].pk, "grades": _all_grades(reads["later"])}])
    assert response.status_code == 400 and "not one of your radiographs of this visit" in response.json()["reads"][0]
    # A visit with none of my radiographs does not exist for me.
    outsider = make_user("visit_outsider")
    assert _post(outsider, visit_id, []).status_code == 404
    assert not Grade.objects.exists()


@pytest.mark.django_db
def test_a_submitted_visit_cannot_be_submitted_again(visit):
    _, reader, _, reads, _ = visit
    visit_id = reads["RH"].radiograph.visit_id
    body = [{"assignment": reads[name].pk, "grades": _all_grades(reads[name])} for name in ("RH", "LH", "RF")]
    assert _post(reader, visit_id, body).status_code == 200
    again = _post(reader, visit_id, [])
    assert again.status_code == 400 and again.json() == {"assignment": ["This visit is already submitted; its grades are final."]}
