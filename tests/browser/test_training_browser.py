"""Staff start a training from the training page and watch it to the end, with a real Celery
worker (PostgreSQL, Redis) doing the training, in real Chromium."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from modeling.demo import DEMO_PASSWORDS, demo_seed
from modeling.models import LearningPolicy, ModelVersion, TrainingRun
from tests.integration.conftest import celery_worker_process, real_services  # noqa: F401 - fixtures

from ..modeling.test_training_services import SMALL, TINY
from .conftest import log_in, screenshot, url

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_staff_start_a_training_from_the_page_and_watch_the_bar_reach_done(new_page, live_server, schemes, celery_worker_process):  # noqa: F811
    project = demo_seed(slug="train-page", patients=3, read_radiographs=4, seed=12, config=SMALL).project
    # The network comes from the project's learning policy: a tiny one, so the test takes seconds.
    LearningPolicy.objects.create(project=project, training_config=TINY)
    page = new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server, "admin", DEMO_PASSWORDS["admin"])

    # The admin links to the page.
    page.goto(url(live_server, "admin:modeling_projectmodel_changelist"))
    page.get_by_role("link", name="training page").click()
    expect(page).to_have_url(url(live_server, "training-page", project.pk))

    page.get_by_label("Epochs").fill("12")
    page.get_by_label("Device").select_option("cpu")
    page.get_by_role("radio", name="Readers' vote shares", exact=True).check()
    page.get_by_role("button", name="Start training").click()

    bar = page.get_by_role("progressbar", name="Training progress")
    expect(bar).to_be_visible()
    run = TrainingRun.objects.get()
    assert (run.epochs, run.labels, run.device) == (12, "votes", "cpu")
    seen = set()
    shot = False
    for _ in range(600):
        value = bar.get_attribute("aria-valuenow")
        if value is not None:
            seen.add(int(value))
        if not shot and 0 < int(value or 0) < 100:
            # The run's row in the list says what the bar says (read in one go: both change together).
            bar_value, row_text = page.evaluate(
                "id => [document.querySelector('[role=progressbar]').getAttribute('aria-valuenow'),"
                " document.querySelector(`[data-run-status=\"${id}\"]`).textContent]", run.pk,
            )
            assert row_text.strip() in (f"Running {bar_value}%", "Succeeded"), (bar_value, row_text)
            screenshot(page, "training-page-running")
            shot = True
        if page.get_by_role("heading", name="Version 1 · Succeeded").count():
            break
        page.wait_for_timeout(100)
    expect(page.get_by_role("heading", name="Version 1 · Succeeded")).to_be_visible()
    expect(bar).to_have_attribute("aria-valuenow", "100")
    assert min(seen) < 100 and 100 in seen, seen  # the bar started below done and reached it

    run.refresh_from_db()
    version = ModelVersion.objects.get()
    assert run.status == TrainingRun.Status.SUCCEEDED and version.status == ModelVersion.Status.READY
    assert version.label_source == ModelVersion.LabelSource.GRADES
    epochs_run = len(run.epoch_log)
    # One point per epoch on each curve of the loss plot, drawn as inline SVG.
    expect(page.locator('[data-plot="loss"] path[data-series="grading_train_loss"]')).to_have_count(1)
    expect(page.locator('[data-plot="loss"] circle')).to_have_count(epochs_run * len([k for k in ("landmark_train_loss", "landmark_val_loss", "grading_train_loss", "grading_val_loss") if k in run.epoch_log[0]]))
    expect(page.get_by_text("No held-out figures yet")).to_be_visible()
    expect(page.get_by_text(f"epoch {epochs_run} of 12")).to_be_visible()
    screenshot(page, "training-page-done")
    assert not errors
