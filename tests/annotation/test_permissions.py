"""Every API endpoint against every persona: status code, and no forbidden data in the body."""
from __future__ import annotations

import pytest
from django.urls import reverse

from annotation import services
from annotation.models import JointArea
from annotation.services import GradeInput

from ..conftest import client_for

PERSONAS = ["anonymous", "reader_a", "lead", "other_lead", "outsider", "staff"]

# What each persona must never receive, on any endpoint.
FORBIDDEN = {
    "anonymous": [b"Alpha Hands Study", b"ALPHA-PSEUDO", b"Beta Feet Study", b"BETA-PSEUDO"],
    "reader_a": [b"reader_b", b"ALPHA-PSEUDO-002", b"Beta Feet Study", b"BETA-PSEUDO"],
    "lead": [b"Beta Feet Study", b"BETA-PSEUDO"],
    "other_lead": [b"Alpha Hands Study", b"ALPHA-PSEUDO", b"reader_"],
    "outsider": [b"Alpha Hands Study", b"ALPHA-PSEUDO", b"Beta Feet Study", b"BETA-PSEUDO", b"reader_"],
    "staff": [],
}

# endpoint -> (method, url builder, body, expected status per persona)
ENDPOINTS = {
    "project list": ("get", lambda w: reverse("api-project-list"), None,
                     dict(anonymous=401, reader_a=200, lead=200, other_lead=200, outsider=200, staff=200)),
    "project detail": ("get", lambda w: reverse("api-project-detail", args=[w.alpha.pk]), None,
                       dict(anonymous=401, reader_a=200, lead=200, other_lead=404, outsider=404, staff=200)),
    "worklist": ("get", lambda w: reverse("api-worklist", args=[w.alpha.pk]), None,
                 dict(anonymous=401, reader_a=200, lead=200, other_lead=404, outsider=404, staff=200)),
    "worklist next": ("get", lambda w: reverse("api-worklist-next", args=[w.alpha.pk]), None,
                      dict(anonymous=401, reader_a=200, lead=204, other_lead=404, outsider=404, staff=204)),
    "project assignments": ("get", lambda w: reverse("api-project-assignments", args=[w.alpha.pk]), None,
                            dict(anonymous=401, reader_a=403, lead=200, other_lead=404, outsider=404, staff=200)),
    "own assignment": ("get", lambda w: reverse("api-assignment-detail", args=[w.a_own.pk]), None,
                       dict(anonymous=401, reader_a=200, lead=404, other_lead=404, outsider=404, staff=404)),
    "foreign assignment": ("get", lambda w: reverse("api-assignment-detail", args=[w.b_on_r1.pk]), None,
                           dict(anonymous=401, reader_a=404, lead=404, other_lead=404, outsider=404, staff=404)),
    "save own grades": ("put", lambda w: reverse("api-grade-bulk-save", args=[w.a_own.pk]),
                        {"grades": [{"area": "mcp_E__2", "value": 1, "version": 0}]},
                        dict(anonymous=401, reader_a=200, lead=404, other_lead=404, outsider=404, staff=404)),
    "save foreign grades": ("put", lambda w: reverse("api-grade-bulk-save", args=[w.b_on_r1.pk]),
                            {"grades": [{"area": "mcp_E__2", "value": 1, "version": 1}]},
                            dict(anonymous=401, reader_a=404, lead=404, other_lead=404, outsider=404, staff=404)),
    # Submitting reaches validation only for the owner: an incomplete table is a 400, not a 404.
    "submit own": ("post", lambda w: reverse("api-assignment-submit", args=[w.a_own.pk]), {},
                   dict(anonymous=401, reader_a=400, lead=404, other_lead=404, outsider=404, staff=404)),
    "submit foreign": ("post", lambda w: reverse("api-assignment-submit", args=[w.b_on_r1.pk]), {},
                       dict(anonymous=401, reader_a=404, lead=404, other_lead=404, outsider=404, staff=404)),
    "radiograph read by both": ("get", lambda w: reverse("api-radiograph-detail", args=[w.r1.pk]), None,
                                dict(anonymous=401, reader_a=200, lead=200, other_lead=404, outsider=404, staff=200)),
    "radiograph of reader_b only": ("get", lambda w: reverse("api-radiograph-detail", args=[w.r2.pk]), None,
                                    dict(anonymous=401, reader_a=404, lead=200, other_lead=404, outsider=404, staff=200)),
    "image of alpha": ("get", lambda w: reverse("api-radiograph-image", args=[w.r1.pk]), None,
                       dict(anonymous=401, reader_a=200, lead=200, other_lead=404, outsider=404, staff=200)),
    "image of beta": ("get", lambda w: reverse("api-radiograph-image", args=[w.b1.pk]), None,
                      dict(anonymous=401, reader_a=404, lead=404, other_lead=200, outsider=404, staff=200)),
}


@pytest.fixture
def graded_world(world):
    # reader_b has graded r1, so a leak of reader_b's work would show in reader_a's bodies.
    area = JointArea.objects.get(scheme=world.alpha.scheme, body_part="hand", code="mcp_E__2")
    services.grade_bulk_save(assignment=world.b_on_r1, user=world.users["reader_b"], items=[GradeInput(area=area, value=3, version=0)])
    return world


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_permission_matrix(graded_world, endpoint, persona):
    method, url_for, body, expected = ENDPOINTS[endpoint]
    user = None if persona == "anonymous" else graded_world.users[persona]
    client = client_for(user)
    response = getattr(client, method)(url_for(graded_world), body, format="json") if body is not None else getattr(client, method)(url_for(graded_world))
    assert response.status_code == expected[persona], (endpoint, persona, response.status_code, _body(response)[:300])
    content = _body(response)
    for forbidden in FORBIDDEN[persona]:
        assert forbidden not in content, (endpoint, persona, forbidden)


def _body(response) -> bytes:
    if hasattr(response, "streaming_content"):
        return b"".join(response.streaming_content)
    return response.content


def test_project_list_shows_exactly_the_members_projects(graded_world):
    def slugs(persona):
        return sorted(p["slug"] for p in client_for(graded_world.users[persona]).get(reverse("api-project-list")).json())

    assert slugs("reader_a") == ["alpha"]
    assert slugs("lead") == ["alpha"]
    assert slugs("other_lead") == ["beta"]
    assert slugs("outsider") == []
    assert slugs("staff") == ["alpha", "beta"]


def test_reader_in_blinded_project_sees_only_own_grades(graded_world):
    client = client_for(graded_world.users["reader_a"])
    grades = client.get(reverse("api-radiograph-detail", args=[graded_world.r1.pk])).json()["grades"]
    assert grades == []
    lead_grades = client_for(graded_world.users["lead"]).get(reverse("api-radiograph-detail", args=[graded_world.r1.pk])).json()["grades"]
    assert [(g["reader"], g["area"], g["value"]) for g in lead_grades] == [("reader_b", "mcp_E__2", 3)]


def test_reader_in_unblinded_project_sees_co_readers_grades(graded_world):
    graded_world.alpha.blinded = False
    graded_world.alpha.save()
    grades = client_for(graded_world.users["reader_a"]).get(reverse("api-radiograph-detail", args=[graded_world.r1.pk])).json()["grades"]
    assert [(g["reader"], g["value"]) for g in grades] == [("reader_b", 3)]


def test_image_is_the_stored_file(graded_world):
    response = client_for(graded_world.users["reader_a"]).get(reverse("api-radiograph-image", args=[graded_world.r1.pk]))
    graded_world.r1.image.open("rb")
    assert _body(response) == graded_world.r1.image.read()


def test_removed_member_loses_access(graded_world):
    graded_world.alpha.memberships.filter(user=graded_world.users["reader_a"]).delete()
    client = client_for(graded_world.users["reader_a"])
    assert client.get(reverse("api-assignment-detail", args=[graded_world.a_own.pk])).status_code == 404
    assert client.get(reverse("api-radiograph-image", args=[graded_world.r1.pk])).status_code == 404
