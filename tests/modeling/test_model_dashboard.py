"""The lead's model page and API: versions, a lead's promotion, suggestion analytics; the model row
on the agreement dashboard.

Personas: `analyst_1` and `analyst_2` read the assisted project built by `rows` (shared with the
analytics tests); `model_lead` leads it; `outsider` belongs to no project.
"""
from __future__ import annotations

import pytest
from django.urls import reverse

from annotation import services as annotation_services
from annotation.models import Membership
from modeling import selectors
from modeling.models import ModelVersion

from ..conftest import make_user
from .test_suggestion_analytics import rows  # noqa: F401 - the shared fixture


@pytest.fixture
def lead(rows):  # noqa: F811
    project, _ = rows
    user = make_user("model_lead")
    annotation_services.membership_set(user=user, project=project, role=Membership.Role.LEAD)
    return user


def _reader(project):
    return project.memberships.filter(role=Membership.Role.READER).first().user


@pytest.mark.django_db
def test_a_lead_who_is_not_staff_sees_versions_and_the_suggestion_analytics(rows, lead, client):  # noqa: F811
    project, version = rows
    ModelVersion.objects.create(
        project=project, number=2, status=ModelVersion.Status.READY,
        metrics={"hands": {"train": 40}, "val": {"localisation_accuracy": 0.97, "erosion": {"weighted_accuracy": 0.612}, "jsn": {"weighted_accuracy": 0.7}},
                 "promotion": {"promoted": False, "reason": "does not beat v1; waiting for a lead", "candidate_score": 0.61, "active_score": 0.64, "compared_on": 7}},
    )
    assert not lead.is_staff
    client.force_login(lead)
    page = client.get(reverse("model-dashboard", args=[project.pk])).content.decode()
    assert "version 1 serves suggestions" in page
    # 6 accepted, 2 edited, 1 typed in, of 9 graded areas with a suggestion served to the reader.
    assert '<th scope="row">accepted</th><td>6</td>' in page and "67%" in page and "22%" in page and "11%" in page
    assert "does not beat v1; waiting for a lead" in page and "0.610 against 0.640 on 7 radiographs" in page
    assert "Promote v2" in page and "Promote v1" not in page  # only a ready version can be promoted
    assert "0.61</td>" in page and "40 hands" in page
    # Against the other readers: wrong on 6 grades, kept 4 times; right on 2, kept both times.
    # Against gold (pip_E__5): wrong twice, kept twice. The counts stand beside every share.
    assert "<strong>4 of 6</strong> (67%)" in page and "2 of 2 (100%)" in page and "<strong>2 of 2</strong> (100%)" in page
    assert "1 graded area read by one reader only" in page
    # Only version 2's suggestions: it made none.
    page = client.get(reverse("model-dashboard", args=[project.pk]), {"version": 2}).content.decode()
    assert "No submitted grade had a suggestion on screen yet from version 2" in page
    # A version that does not exist shows every version's suggestions, not an error page.
    page = client.get(reverse("model-dashboard", args=[project.pk]), {"version": "nine"}).content.decode()
    assert '<th scope="row">accepted</th><td>6</td>' in page


@pytest.mark.django_db
def test_readers_get_403_and_outsiders_404_on_the_page_and_the_api(rows, client):  # noqa: F811
    project, _ = rows
    urls = [reverse("model-dashboard", args=[project.pk]), reverse("api-model-analytics", args=[project.pk]),
            reverse("api-model-versions", args=[project.pk])]
    client.force_login(_reader(project))
    assert [client.get(url).status_code for url in urls] == [403, 403, 403]
    assert client.post(reverse("model-version-promote", args=[project.pk, 1])).status_code == 403
    client.force_login(make_user("outsider"))
    assert [client.get(url).status_code for url in urls] == [404, 404, 404]
    client.logout()
    assert client.get(urls[0]).status_code == 302  # to the login page


@pytest.mark.django_db
def test_a_lead_promotes_a_waiting_version_and_the_serving_one_steps_back(rows, lead, client):  # noqa: F811
    project, serving = rows
    waiting = ModelVersion.objects.create(project=project, number=2, status=ModelVersion.Status.READY)
    client.force_login(lead)
    response = client.post(reverse("model-version-promote", args=[project.pk, 2]), follow=True)
    assert "Version 2 now serves" in response.content.decode()
    waiting.refresh_from_db()
    serving.refresh_from_db()
    assert (waiting.status, serving.status) == (ModelVersion.Status.ACTIVE, ModelVersion.Status.READY)
    assert waiting.promoted_at is not None


@pytest.mark.django_db
def test_the_promote_api_refuses_a_version_still_training_with_409_and_an_unknown_one_with_404(rows, lead, client):  # noqa: F811
    project, serving = rows
    ModelVersion.objects.create(project=project, number=2, status=ModelVersion.Status.TRAINING)
    client.force_login(lead)
    response = client.post(reverse("api-model-version-promote", args=[project.pk, 2]))
    assert response.status_code == 409 and "version 2 is training" in response.json()["detail"]
    assert client.post(reverse("api-model-version-promote", args=[project.pk, 9])).status_code == 404
    serving.refresh_from_db()
    assert serving.status == ModelVersion.Status.ACTIVE
    ModelVersion.objects.filter(number=2).update(status=ModelVersion.Status.READY)
    body = client.post(reverse("api-model-version-promote", args=[project.pk, 2])).json()
    assert body["number"] == 2 and body["status"] == "active"


@pytest.mark.django_db
def test_the_analytics_api_names_a_bad_version_parameter(rows, lead, client):  # noqa: F811
    project, _ = rows
    client.force_login(lead)
    url = reverse("api-model-analytics", args=[project.pk])
    body = client.get(url).json()
    assert (body["accepted"], body["edited"], body["manual"]) == (6, 2, 1)
    assert body["edit_distances"] == {"1": 1, "2": 1}
    others = body["against_other_readers"]
    assert (others["wrong"], others["wrong_kept"]) == (6, 4) and others["wrong_kept_rate"] == pytest.approx(4 / 6)
    assert body["against_gold"]["wrong_kept"] == 2 and body["single_reader_areas"] == 1
    for bad, message in (("7", "no model version 7"), ("seven", "valid integer")):
        response = client.get(url, {"version": bad})
        assert response.status_code == 400 and message in str(response.json()["version"])
    versions = client.get(reverse("api-model-versions", args=[project.pk])).json()
    assert [(v["number"], v["status"]) for v in versions] == [(1, "active")]


@pytest.mark.django_db
def test_the_agreement_dashboard_shows_the_serving_model_as_a_marked_row(rows, lead, client):  # noqa: F811
    project, version = rows
    labels = selectors.model_reader_labels(project=project)
    assert list(labels) == ["model v1"] and len(labels["model v1"]) == 5
    client.force_login(lead)
    page = client.get(reverse("consensus-dashboard", args=[project.pk])).content.decode()
    assert '<tr class="cs-model"><th scope="row">model v1</th>' in page
    assert "never enters the consensus" in page
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.READY)
    page = client.get(reverse("consensus-dashboard", args=[project.pk])).content.decode()
    assert "cs-model" not in page and "No model version serves suggestions in this project yet." in page


@pytest.mark.django_db
def test_promoting_asks_for_confirmation_and_a_replaced_version_no_longer_reads_as_promoted(rows, lead, client):  # noqa: F811
    project, serving = rows
    ModelVersion.objects.filter(pk=serving.pk).update(metrics={"promotion": {"promoted": True, "reason": "no version was serving"}})
    ModelVersion.objects.create(project=project, number=2, status=ModelVersion.Status.READY)
    client.force_login(lead)
    page = client.get(reverse("model-dashboard", args=[project.pk])).content.decode()
    assert "serving: promoted automatically (no version was serving)" in page
    assert "return confirm('Promote version 2? It replaces the serving version" in page

    client.post(reverse("model-version-promote", args=[project.pk, 2]))
    page = client.get(reverse("model-dashboard", args=[project.pk])).content.decode()
    assert "no longer serving: v2 replaced it" in page
    assert "no version was serving" not in page
