"""The server, not the page, decides whether a grade accepted, edited or ignored a suggestion.

Personas (tests/conftest.py `world`): `reader_a` reads radiograph r1 of project alpha.
"""
from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import Grade, Project, ServedSuggestion

from ..conftest import client_for

SUGGESTED = {"pip_E__2": 3, "pip_E__3": 1}


def suggest_fixed(*, radiograph):
    """A stand-in model: the same two erosion suggestions for every radiograph."""
    return {
        "model_version": "v7",
        "suggestions": {code: {"label": label, "distribution": [1.0 if g == label else 0.0 for g in range(6)]} for code, label in SUGGESTED.items()},
    }


@pytest.fixture
def assisted(world, settings):
    settings.SUGGESTION_PROVIDER = "tests.annotation.test_grade_source.suggest_fixed"
    Project.objects.filter(pk=world.alpha.pk).update(suggestions=Project.Suggestions.ASSISTED)
    return client_for(world.users["reader_a"])


def put(client, assignment, grades):
    return client.put(reverse("api-grade-bulk-save", args=[assignment.pk]), {"grades": grades}, format="json")


def test_fetching_suggestions_records_what_was_served_to_that_read(world, assisted):
    response = assisted.get(reverse("api-assignment-suggestions", args=[world.a_own.pk]))
    assert response.status_code == 200 and response.json()["model_version"] == "v7"
    served = dict(ServedSuggestion.objects.filter(assignment=world.a_own).values_list("area__code", "label"))
    assert served == SUGGESTED
    # Nobody else's read is touched.
    assert not ServedSuggestion.objects.exclude(assignment=world.a_own).exists()


def suggest_from_a_newer_model(*, radiograph):
    return {"model_version": "v8", "suggestions": {"pip_E__2": {"label": 0, "distribution": [1.0] + [0.0] * 5}}}


def test_a_newer_suggestion_replaces_the_one_served_before_for_that_area(world, assisted, settings):
    assisted.get(reverse("api-assignment-suggestions", args=[world.a_own.pk]))
    settings.SUGGESTION_PROVIDER = "tests.annotation.test_grade_source.suggest_from_a_newer_model"
    assisted.get(reverse("api-assignment-suggestions", args=[world.a_own.pk]))
    served = {
        code: (label, version)
        for code, label, version in ServedSuggestion.objects.filter(assignment=world.a_own).values_list(
            "area__code", "label", "model_version"
        )
    }
    assert served == {"pip_E__2": (0, "v8"), "pip_E__3": (1, "v7")}


def test_a_forged_source_is_replaced_by_the_servers_decision(world, assisted):
    assisted.get(reverse("api-assignment-suggestions", args=[world.a_own.pk]))
    response = put(assisted, world.a_own, [
        {"area": "pip_E__2", "value": 1, "version": 0, "source": "accepted"},  # suggestion was 3: edited
        {"area": "pip_E__3", "value": 1, "version": 0, "source": "manual"},    # suggestion was 1: accepted
        {"area": "pip_E__4", "value": 2, "version": 0, "source": "accepted"},  # nothing served: manual
    ])
    assert response.status_code == 200, response.json()
    stored = dict(Grade.objects.filter(assignment=world.a_own).values_list("area__code", "source"))
    assert stored == {"pip_E__2": "edited", "pip_E__3": "accepted", "pip_E__4": "manual"}
    assert {g["area"]: g["source"] for g in response.json()["grades"]} == stored


def test_a_grade_typed_before_the_suggestion_arrived_stays_manual_until_saved_again(world, assisted):
    put(assisted, world.a_own, [{"area": "pip_E__2", "value": 3, "version": 0, "source": "accepted"}])
    assert Grade.objects.get(assignment=world.a_own, area__code="pip_E__2").source == "manual"
    assisted.get(reverse("api-assignment-suggestions", args=[world.a_own.pk]))
    put(assisted, world.a_own, [{"area": "pip_E__2", "value": 2, "version": 1, "source": "manual"}])
    assert Grade.objects.get(assignment=world.a_own, area__code="pip_E__2").source == "edited"


def test_a_project_with_suggestions_off_stores_every_claimed_acceptance_as_manual(world, settings):
    settings.SUGGESTION_PROVIDER = "tests.annotation.test_grade_source.suggest_fixed"
    client = client_for(world.users["reader_a"])
    body = client.get(reverse("api-assignment-suggestions", args=[world.a_own.pk])).json()
    assert body == {"model_version": None, "suggestions": {}}
    put(client, world.a_own, [{"area": "pip_E__2", "value": 3, "version": 0, "source": "accepted"}])
    assert Grade.objects.get(assignment=world.a_own, area__code="pip_E__2").source == "manual"
    assert not ServedSuggestion.objects.exists()


def test_a_submitted_read_records_no_suggestion_served_afterwards(world, assisted):
    from annotation import services

    services.assignment_submit(assignment=world.a_own)
    assisted.get(reverse("api-assignment-suggestions", args=[world.a_own.pk]))
    assert not ServedSuggestion.objects.filter(assignment=world.a_own).exists()
