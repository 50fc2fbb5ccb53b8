"""/healthz and /livez: what a load balancer and the compose healthchecks see, and the favicon."""
from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from PIL import Image


@pytest.mark.django_db
def test_readiness_reports_database_broker_and_storage_and_no_secret(settings):
    response = Client().get("/healthz")
    body = response.content.decode()
    answer = json.loads(body)
    assert response.status_code == 200 and answer["status"] == "ok"
    assert {name: check["ok"] for name, check in answer["checks"].items()} == {"database": True, "broker": True, "storage": True}
    assert response["Cache-Control"] == "no-store"
    for secret in [settings.SECRET_KEY, settings.CELERY_BROKER_URL, str(settings.MEDIA_ROOT)]:
        assert secret not in body


@pytest.mark.django_db
def test_health_answers_any_host_over_plain_http_while_pages_check_the_host(settings):
    # A container healthcheck calls gunicorn by its loopback address, which is not a served host name.
    settings.ALLOWED_HOSTS = ["scores.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    client = Client(HTTP_HOST="10.0.0.7:8000")
    assert client.get("/healthz").status_code == 200
    assert client.get("/livez").json() == {"status": "ok"}
    assert client.get("/login/").status_code == 400
    assert Client(HTTP_HOST="scores.example.org").get("/login/").status_code == 301  # to HTTPS


@pytest.mark.django_db
def test_unwritable_media_storage_makes_the_service_unready_and_says_which_part(settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = blocker / "media"
    response = Client().get("/healthz")
    answer = response.json()
    assert response.status_code == 503 and answer["status"] == "unavailable"
    assert answer["checks"]["storage"]["ok"] is False and answer["checks"]["storage"]["error"] == "PermissionError"
    assert answer["checks"]["database"]["ok"] and answer["checks"]["broker"]["ok"]
    assert str(blocker) not in response.content.decode()
    with pytest.raises(CommandError, match="not ready: storage"):
        call_command("healthz", stdout=io.StringIO())


def test_liveness_does_not_touch_the_database():
    # No django_db mark: a query here would fail the test.
    assert Client().get("/livez").json() == {"status": "ok"}


@pytest.mark.django_db
def test_favicon_is_served_for_pages_that_name_none():
    response = Client().get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == "/static/frontend/favicon.ico"
    from django.contrib.staticfiles import finders

    icon = Image.open(finders.find("frontend/favicon.ico"))
    assert icon.format == "ICO" and (32, 32) in icon.info["sizes"]
    page = Client().get("/login/").content.decode()
    assert 'rel="icon" href="/static/frontend/favicon.svg"' in page
