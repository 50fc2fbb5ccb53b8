"""Pages of a project read by visit: a worklist row per visit, "start next" opening the visit form,
and the form's layout from the scheme (a section per body part the visit has radiographs of)."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse

from annotation import services
from annotation.models import Membership, Project

from ..conftest import make_user, png_bytes


def _add(project, pseudonym: str, laterality: str, body_part: str, seed: int):
    return services.radiograph_add(
        project=project, pseudonym=pseudonym, laterality=laterality, body_part=body_part,
        image_bytes=png_bytes(seed=seed), image_suffix="png", width=64, height=80,
    ).radiograph


@pytest.fixture
def by_visit(schemes):
    project = services.project_create(name="Visits", slug="visits", readers_per_radiograph=1, reading_unit=Project.ReadingUnit.VISIT)
    reader = make_user("form_reader")
    services.membership_set(user=reader, project=project, role=Membership.Role.READER)
    first = [_add(project, "P-016", "L", "hand", 801), _add(project, "P-016", "R", "hand", 802), _add(project, "P-016", "L", "foot", 803)]
    second = [_add(project, "P-029", "L", "hand", 804)]
    reads = {}
    # A re-ranking put P-016's left hand far behind P-029: the visit still comes as one row.
    for radiograph, priority in [(first[0], 19.0), (first[1], 0.0), (first[2], 3.0), (second[0], 1.0)]:
        (reads[(radiograph.visit.patient.pseudonym, radiograph.side)],) = services.assignments_create(
            radiograph=radiograph, readers=[reader], priority=priority
        )
    return project, reader, reads


def _config(response) -> dict:
    page = response.content.decode()
    marker = '<script id="visit-config" type="application/json">'
    start = page.index(marker) + len(marker)
    return json.loads(page[start:page.index("</script>", start)])


@pytest.mark.django_db
def test_the_worklist_of_a_project_read_by_visit_has_one_row_per_visit_opening_its_form(client, by_visit):
    project, reader, reads = by_visit
    client.force_login(reader)
    page = client.get(reverse("worklist", args=[project.pk])).content.decode()
    first_visit = reads[("P-016", "RH")].radiograph.visit_id
    second_visit = reads[("P-029", "LH")].radiograph.visit_id
    assert page.index(reverse("visit-workspace", args=[first_visit])) < page.index(reverse("visit-workspace", args=[second_visit]))
    assert page.count('href="/visit/') == 2 and reverse("workspace", args=[reads[("P-016", "RH")].pk]) not in page
    # Images in worklist order (the right hand led the re-ranking), graded out of 31 + 31 + 12 areas.
    assert "Right hand, Left foot, Left hand" in page and "0 / 74" in page
    response = client.get(reverse("worklist-next", args=[project.pk]))
    assert response.status_code == 302 and response.url == reverse("visit-workspace", args=[first_visit])


@pytest.mark.django_db
def test_the_visit_form_has_a_section_per_body_part_and_the_reads_right_before_left(client, by_visit):
    project, reader, reads = by_visit
    client.force_login(reader)
    visit_id = reads[("P-016", "RH")].radiograph.visit_id
    config = _config(client.get(reverse("visit-workspace", args=[visit_id])))
    assert [(read["body_part"], read["laterality"]) for read in config["reads"]] == [("hand", "R"), ("hand", "L"), ("foot", "L")]
    assert [section["body_part"] for section in config["sections"]] == ["hand", "foot"]
    foot_rows = [row["joint"] for row in config["sections"][1]["rows"] if not row.get("group_heading")]
    assert foot_rows == ["mtp1", "mtp2", "mtp3", "mtp4", "mtp5", "mtp_ip"]  # the paper form: MTP 1-5, then the hallux IP
    assert config["urls"]["submit"] == reverse("api-visit-submit", args=[visit_id])
    assert config["reads"][2]["urls"]["grades"] == reverse("api-grade-bulk-save", args=[reads[("P-016", "LF")].pk])


@pytest.mark.django_db
def test_a_visit_without_my_radiographs_is_not_found(client, by_visit):
    _, _, reads = by_visit
    client.force_login(make_user("stranger"))
    assert client.get(reverse("visit-workspace", args=[reads[("P-016", "RH")].radiograph.visit_id])).status_code == 404


@pytest.mark.django_db
def test_the_project_api_says_how_the_project_is_read(by_visit):
    from ..conftest import client_for

    project, reader, _ = by_visit
    assert client_for(reader).get(reverse("api-project-detail", args=[project.pk])).json()["reading_unit"] == "visit"


@pytest.mark.django_db
def test_the_visit_form_speaks_russian_in_the_template_the_sections_and_the_script(client, by_visit):
    _, reader, reads = by_visit
    client.force_login(reader)
    response = client.get(reverse("visit-workspace", args=[reads[("P-016", "RH")].radiograph.visit_id]), HTTP_ACCEPT_LANGUAGE="ru")
    page = response.content.decode()
    assert "Отправить визит" in page and "Другая сторона" in page
    assert [section["label"] for section in _config(response)["sections"]] == ["Кисти", "Стопы"]
    catalog = client.get(reverse("javascript-catalog"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "SvdH, \\u043a\\u0430\\u0436\\u0434\\u0430\\u044f %(part)s" in catalog or "SvdH, каждая %(part)s" in catalog
