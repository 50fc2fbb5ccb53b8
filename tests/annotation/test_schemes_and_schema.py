from __future__ import annotations

import pytest
from django.db.models import Sum
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Joint, JointArea


@pytest.mark.django_db
def test_svdh_scheme_matches_the_ra2_dream_layout():
    areas = JointArea.objects.filter(scheme__key="svdh")
    count = lambda **kw: areas.filter(**kw).count()  # noqa: E731
    assert count(body_part="hand", dimension="erosion") == 16
    assert count(body_part="hand", dimension="jsn") == 15
    assert count(body_part="foot", dimension="erosion") == 6
    assert count(body_part="foot", dimension="jsn") == 6
    # Both hands and both feet: 160 + 120 + 120 + 48.
    assert 2 * areas.aggregate(total=Sum("max_grade"))["total"] == 448
    assert areas.get(code="mtp_E__3").max_grade == 10
    assert Joint.objects.filter(scheme__key="svdh", body_part="hand").count() == 22
    assert areas.get(code="mcp_J__2").joint == areas.get(code="mcp_E__2").joint


@pytest.mark.django_db
def test_prototype_scheme_has_dip_and_cmc1_erosion_only():
    areas = JointArea.objects.filter(scheme__key="prototype")
    assert set(areas.filter(group="dip").values_list("code", flat=True)) == {f"dip_{d}__{i}" for d in "EJ" for i in range(2, 6)}
    assert areas.filter(joint__name="cmc1").get().dimension == "erosion"
    assert areas.count() == 29


@pytest.mark.django_db
def test_openapi_schema_documents_the_reader_api():
    client = APIClient()
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert "/api/assignments/{assignment_id}/grades/" in schema["paths"]
    assert "put" in schema["paths"]["/api/assignments/{assignment_id}/grades/"]
    assert client.get(reverse("api-docs")).status_code == 200


@pytest.mark.django_db
def test_every_page_carries_the_research_use_disclaimer(client):
    assert "Research use only" in client.get(reverse("login")).content.decode()


@pytest.mark.django_db
def test_token_authentication_works_for_scripts(world):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=world.users["reader_a"])
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert [p["slug"] for p in client.get(reverse("api-project-list")).json()] == ["alpha"]


@pytest.mark.django_db
def test_openapi_schema_validates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert "/api/projects/{project_id}/worklist/next/" in (tmp_path / "schema.yml").read_text()
