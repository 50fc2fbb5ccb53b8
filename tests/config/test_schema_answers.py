"""The OpenAPI schema documents the refusals each operation can answer, and what the data can be."""
from __future__ import annotations

from django.urls import reverse
from rest_framework.test import APIClient

from tests.conftest import client_for


def _schema() -> dict:
    return APIClient().get(reverse("api-schema") + "?format=json").json()


def test_every_operation_documents_its_error_answers(db):
    schema = _schema()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            where = f"{method.upper()} {path}"
            assert {"401", "403"} <= codes, where
            if "{" in path:
                assert "404" in codes, where
            if operation.get("requestBody"):
                assert "400" in codes, where
    grades = schema["paths"]["/api/assignments/{assignment_id}/grades/"]["put"]["responses"]
    assert grades["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_an_automatic_consensus_run_has_no_requester_and_the_schema_says_so(db):
    assert _schema()["components"]["schemas"]["ConsensusRun"]["properties"]["requested_by"]["nullable"] is True


def test_an_empty_grade_list_is_outside_the_schema_as_it_is_refused(world):
    bounds = _schema()["components"]["schemas"]["GradeBulkSave"]["properties"]["grades"]
    response = client_for(world.users["reader_a"]).put(
        reverse("api-grade-bulk-save", args=[world.a_own.pk]), {"grades": []}, format="json"
    )
    assert (bounds["minItems"], bounds["maxItems"]) == (1, 200)
    assert response.status_code == 400 and "grades" in response.json()


def test_an_upload_without_files_is_outside_the_schema_as_it_is_refused(world):
    upload = _schema()["components"]["schemas"]["RadiographUpload"]["properties"]["files"]
    response = client_for(world.users["lead"]).post(reverse("api-radiograph-upload", args=[world.alpha.pk]), {}, format="multipart")
    assert upload["minItems"] == 1
    assert response.status_code == 400 and "files" in response.json()


def test_an_unmatched_api_url_answers_json_404(db):
    response = client_for(None).get("/api/assignments/not-a-number/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
