"""Browser tests: Playwright drives Debian's Chromium (/usr/bin/chromium) against a live server.

Without Chromium they are skipped with the reason; with REQUIRE_SERVICES=1 (as in CI) they fail
instead, so a machine that should run them cannot silently pass. One browser serves the whole
package; each test gets a fresh context (cookies, localStorage) and saves a screenshot under
test-artifacts/screenshots/.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from django.urls import reverse
from PIL import Image

from annotation import services
from annotation.models import Joint, Landmark, Membership

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}
# Submitting runs the on-commit tasks in the request here (Celery is eager in tests), which takes
# seconds on a small machine; assertions wait longer than Playwright's 5 s default.
EXPECT_TIMEOUT_MS = 20_000


@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():
        reason = f"browser tests need Chromium at {CHROMIUM} (Debian package 'chromium')"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)

    # Playwright's synchronous API keeps an event loop in this thread; the ORM calls the tests make
    # between page actions are still plain synchronous calls, so Django's guard is relaxed here.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(browser, live_server, transactional_db):
    """Opens pages in fresh browser contexts (one per reader) that are closed after the test."""
    contexts = []
    in_flight: set = set()

    def open_page(locale: str = "en-US"):
        context = browser.new_context(viewport=VIEWPORT, locale=locale, accept_downloads=True)
        context.set_default_timeout(15_000)
        context.on("request", lambda request: in_flight.add(request))
        context.on("requestfinished", lambda request: in_flight.discard(request))
        context.on("requestfailed", lambda request: in_flight.discard(request))
        contexts.append(context)
        return context.new_page()

    yield open_page
    # A page may still be saving when a test ends; the live server would then write to a database
    # that the next test is flushing. Let the requests in flight finish before the contexts close.
    pages = [page for context in contexts for page in context.pages]
    for _ in range(100):  # at most 10 s
        if not in_flight or not pages:
            break
        pages[0].wait_for_timeout(100)  # lets Playwright deliver the requests' finished events
    for context in contexts:
        context.close()


def url(live_server, name: str, *args) -> str:
    return live_server.url + reverse(name, args=args)


def log_in(page, live_server, username: str, password: str) -> None:
    page.goto(url(live_server, "login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(url(live_server, "home"))


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def wait_until_ready(page) -> None:
    page.locator("#workspace[data-state=ready][data-image=painted]").wait_for()


def add_phantom_patient(project, pseudonym: str, seed: int, width: int, height: int) -> list:
    """Both hands of one phantom patient as 16-bit PNG radiographs with imported landmarks; right first."""
    from modeling.ml.phantoms import PhantomConfig, generate_patient

    left, right = generate_patient(seed, PhantomConfig(width=width, height=height))
    joints = {joint.name: joint for joint in Joint.objects.filter(scheme=project.scheme, body_part="hand")}
    radiographs = []
    for phantom in (right, left):
        buffer = io.BytesIO()
        Image.fromarray(phantom.image).save(buffer, format="PNG", compress_level=1)
        added = services.radiograph_add(
            project=project, pseudonym=pseudonym, laterality=phantom.laterality, image_bytes=buffer.getvalue(),
            image_suffix="png", width=phantom.width, height=phantom.height,
            metadata={"source": "phantom", "phantom_truth": {dim: dict(g) for dim, g in phantom.grades.items()}},
        )
        Landmark.objects.bulk_create(
            Landmark(radiograph=added.radiograph, joint=joints[name], x=x, y=y, source=Landmark.Source.IMPORT)
            for name, (x, y) in phantom.landmarks.items()
            if name in joints
        )
        radiographs.append(added.radiograph)
    return radiographs


def reader_in(project, username: str):
    from tests.conftest import make_user

    user = make_user(username)
    services.membership_set(user=user, project=project, role=Membership.Role.READER)
    return user


def record_metrics(metrics: dict) -> Path:
    """Measured figures go to a file as well as the terminal, whatever pytest's capture settings."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "workspace-metrics.json"
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing.update(metrics)
    path.write_text(json.dumps(existing, indent=1, sort_keys=True))
    return path
