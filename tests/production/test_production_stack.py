"""The production configuration end to end: a reader grades a hand in Chromium over HTTPS through
Caddy, gunicorn runs with DJANGO_ENV=production and WhiteNoise, media live in an S3 store, a Celery
worker computes the consensus; the grade is checked in PostgreSQL and the pixels in the bucket."""
from __future__ import annotations

import hashlib
import io
import json
import re
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from annotation import services
from annotation.models import Assignment, Grade, Membership, Radiograph
from consensus.models import ConsensusRun, ConsensusSettings
from tests.browser.conftest import VIEWPORT, screenshot, wait_until_ready
from tests.conftest import make_user
from tests.integration.test_celery_worker import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser]

# Erosion cells come first on the form (16 in svdh), then JSN (15), each in table order.
EROSION_KEYS = "0123450123450123"
JSN_KEYS = "012340123401234"


def _phantom_png() -> bytes:
    from modeling.ml.phantoms import PhantomConfig, generate_patient

    _, right = generate_patient(5, PhantomConfig(width=512, height=640))
    buffer = io.BytesIO()
    Image.fromarray(right.image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _plain_get(url: str) -> tuple[int, dict, bytes]:
    """One request that follows no redirect and trusts the proxy's internal CA blindly."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(url, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_reader_grades_a_hand_over_https_and_it_lands_in_postgres_and_the_object_store(
    production_stack, browser, schemes, transactional_db, settings
):
    stack = production_stack
    # The server checks passwords with the production hashers, not the tests' fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    project = services.project_create(name="Production hands", slug="production", readers_per_radiograph=1, blinded=True)
    ConsensusSettings.objects.update_or_create(project=project, defaults={"delay_seconds": 0})
    lead, reader = make_user("prod_lead"), make_user("prod_reader")
    services.membership_set(user=lead, project=project, role=Membership.Role.LEAD)
    services.membership_set(user=reader, project=project, role=Membership.Role.READER)
    token = Token.objects.create(user=lead)

    # The lead uploads a 16-bit radiograph through the API, over the proxy: gunicorn stores it.
    upload = _phantom_png()
    api = browser.new_context(ignore_https_errors=True)
    answer = api.request.post(
        stack.base_url + reverse("api-radiograph-upload", args=[project.pk]),
        headers={"Authorization": f"Token {token.key}"},
        multipart={"files": {"name": "PROD001-RH.png", "mimeType": "image/png", "buffer": upload}},
    )
    assert answer.status == 201, answer.text()
    api.close()
    radiograph = Radiograph.objects.get(project=project)
    (assignment,) = services.assignments_create(radiograph=radiograph, readers=[reader])

    # The reader works in Chromium over HTTPS with the production cookie settings.
    context = browser.new_context(viewport=VIEWPORT, ignore_https_errors=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    responses: list = []
    page.on("response", lambda response: responses.append((response.url, response.status)))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(stack.base_url + reverse("login"))
    page.get_by_label("Username").fill("prod_reader")
    page.get_by_label("Password").fill("pw-prod_reader")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(stack.base_url + reverse("home"))
    cookies = {cookie["name"]: cookie for cookie in context.cookies()}
    assert cookies["sessionid"]["secure"] and cookies["sessionid"]["httpOnly"]
    assert cookies["csrftoken"]["secure"]

    page.goto(stack.base_url + reverse("workspace", args=[assignment.pk]))
    wait_until_ready(page)
    statics = [(link, status) for link, status in responses if "/static/" in link]
    assert [status for _, status in statics if status != 200] == [], statics
    # Hashed names from WhiteNoise's manifest: the page's own CSS and its JavaScript modules.
    assert any(re.search(r"/static/frontend/app\.[0-9a-f]{12}\.css$", link) for link, _ in statics), statics
    assert any(re.search(r"/static/frontend/workspace/\w+\.[0-9a-f]{12}\.js$", link) for link, _ in statics), statics
    assert any("/rendition/display/" in link and status == 200 for link, status in responses)

    for key in EROSION_KEYS + JSN_KEYS:
        page.keyboard.press(key)
    expect(page.get_by_role("status", name="Save state")).to_have_text("Saved")
    screenshot(page, "production-workspace-graded")
    page.keyboard.press("Control+Enter")
    assert wait_for(lambda: Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.SUBMITTED, timeout=30)
    assert errors == []
    context.close()

    # PostgreSQL has every grade, in form order.
    order = list(Grade.objects.filter(assignment=assignment).order_by("area__dimension", "area__order").values_list("area__code", "value"))
    erosion = [value for code, value in order if "_E__" in code]
    jsn = [value for code, value in order if "_J__" in code]
    assert sorted(erosion) == sorted(map(int, EROSION_KEYS)) and sorted(jsn) == sorted(map(int, JSN_KEYS))
    assert sum(erosion) == sum(map(int, EROSION_KEYS)) and len(order) == 31

    # The object store has the radiograph's pixels and the rendition the browser was shown;
    # the web server's local disk has nothing.
    s3 = stack.s3()
    stored = s3.get_object(Bucket=stack.bucket, Key=radiograph.image.name)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == radiograph.checksum
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored))), np.asarray(Image.open(io.BytesIO(upload))))
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=stack.bucket)["Contents"]}
    assert f"renditions/{project.pk}/{radiograph.checksum}-display.jpg" in keys
    assert not stack.media_root.exists() or not any(path.is_file() for path in stack.media_root.rglob("*"))

    # The worker (production settings, Redis) computed the consensus the submission asked for.
    assert wait_for(lambda: ConsensusRun.objects.filter(project=project, status=ConsensusRun.Status.OK).count() == 2, timeout=60), (
        list(ConsensusRun.objects.filter(project=project).values("dimension", "status", "error")), stack.log_tails())


def test_production_redirects_to_https_sends_hsts_and_keeps_radiographs_private(production_stack, schemes, transactional_db):
    stack = production_stack
    # Plain HTTP at the proxy is redirected to HTTPS, and so is gunicorn reached without the proxy.
    status, headers, _ = _plain_get(stack.http_url + "/login/")
    assert status in (301, 308) and headers["Location"].startswith("https://localhost")
    status, headers, _ = _plain_get(stack.gunicorn_url.replace("127.0.0.1", "localhost") + "/login/")
    assert status == 301 and headers["Location"] == "https://localhost:16001/login/"

    status, headers, body = _plain_get(stack.base_url + "/login/")
    assert status == 200 and "max-age=31536000; includeSubDomains; preload" == headers["Strict-Transport-Security"]
    # The files that answered 404 before WhiteNoise; a hashed name is cached for good.
    for path in ["/static/admin/css/base.css", "/static/frontend/app.css"]:
        status, headers, body = _plain_get(stack.base_url + path)
        assert status == 200 and len(body) > 1000, path
    manifest = json.loads((Path(stack.env["STATIC_ROOT"]) / "staticfiles.json").read_text())
    status, headers, body = _plain_get(stack.base_url + "/static/" + manifest["paths"]["admin/css/base.css"])
    assert status == 200 and b"body" in body and "max-age=315360000" in headers["Cache-Control"]
    status, _, body = _plain_get(stack.base_url + "/static/" + manifest["paths"]["drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"])
    assert status == 200 and b"SwaggerUIBundle" in body

    # Readiness straight from gunicorn, as the compose healthcheck asks it: no Host check, no redirect.
    status, _, body = _plain_get(stack.gunicorn_url + "/healthz")
    answer = json.loads(body)
    assert status == 200 and {name: check["ok"] for name, check in answer["checks"].items()} == {"database": True, "broker": True, "storage": True}
    for secret in [stack.env["SECRET_KEY"], stack.env["S3_SECRET_ACCESS_KEY"], stack.bucket, "postgres://"]:
        assert secret not in body.decode()

    # The bucket grants nothing to an anonymous client: radiographs are reachable only through the API.
    project = services.project_create(name="Private", slug="private")
    from tests.conftest import png_bytes

    radiograph_bytes = png_bytes(seed=3)
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import ClientError

    name = f"radiographs/{project.pk}/probe.png"
    stack.s3().put_object(Bucket=stack.bucket, Key=name, Body=radiograph_bytes)
    anonymous = boto3.client("s3", endpoint_url=stack.s3_endpoint, region_name="us-east-1", config=Config(signature_version=UNSIGNED))
    with pytest.raises(ClientError) as refused:
        anonymous.get_object(Bucket=stack.bucket, Key=name)
    assert refused.value.response["Error"]["Code"] in {"AccessDenied", "403"}
