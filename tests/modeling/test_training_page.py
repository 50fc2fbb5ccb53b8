"""The training page: who may use it, starting a version with options, the progress endpoint,
cancel and retry, and the admin's computed records being read-only."""
from __future__ import annotations

import threading
import time

import pytest
from django.urls import reverse

from modeling import services
from modeling.demo import demo_seed
from modeling.models import ModelVersion, Suggestion, TrainingRun
from modeling.training_progress import training_run_eta

from ..conftest import make_user
from .test_training_services import SMALL, TINY


@pytest.fixture
def seeded(schemes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return demo_seed(slug="page", patients=3, read_radiographs=4, seed=11, config=SMALL).project


def _login(client, username: str):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username=username))
    return client


@pytest.mark.django_db
def test_leads_and_staff_see_the_training_page_readers_get_403_and_outsiders_404(client, seeded):
    url = reverse("training-page", args=[seeded.pk])
    assert _login(client, "lead").get(url).status_code == 200
    assert _login(client, "admin").get(url).status_code == 200
    assert _login(client, "reader1").get(url).status_code == 403
    client.force_login(make_user("outsider"))
    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_starting_a_version_stores_its_options_and_queues_it(client, seeded, django_capture_on_commit_callbacks):
    lead = _login(client, "lead")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = lead.post(
            reverse("training-start", args=[seeded.pk]),
            {"epochs": "7", "device": "cpu", "time_budget_min": "1.5", "labels": "votes"},
        )
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"?run={run.pk}")
    assert (run.epochs, run.device, run.time_budget_s, run.labels, run.requested_by.username) == (7, "cpu", 90.0, "votes", "lead")
    assert run.model_version.number == 1 and run.status == TrainingRun.Status.QUEUED and len(queued) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field, value",
    [("epochs", "0"), ("epochs", "many"), ("device", "tpu"), ("labels", "truth"), ("time_budget_min", "-3")],
)
def test_bad_options_get_400_naming_the_field_and_start_nothing(client, seeded, field, value):
    form = {"epochs": "3", "device": "cpu", "time_budget_min": "", "labels": "consensus", field: value}
    response = _login(client, "lead").post(reverse("training-start", args=[seeded.pk]), form)
    assert response.status_code == 400
    assert f"Training not started: {field}" in response.content.decode()
    assert not TrainingRun.objects.exists() and not ModelVersion.objects.exists()


@pytest.mark.django_db
def test_vote_share_labels_train_on_votes_even_when_a_consensus_exists(seeded):
    run = services.model_version_request(project=seeded, epochs=1, config=TINY, labels="votes", enqueue=False)
    version = services.model_version_train(run_id=run.pk)
    assert (version.status, version.label_source, version.consensus_run_ids) == (ModelVersion.Status.READY, "grades", [])


@pytest.mark.django_db
def test_progress_json_reports_epochs_curves_and_held_out_figures_after_training(client, seeded):
    run = services.model_version_request(project=seeded, epochs=2, config=TINY, enqueue=False)
    services.model_version_train(run_id=run.pk)
    payload = _login(client, "lead").get(reverse("training-run-progress", args=[seeded.pk, run.pk])).json()
    assert (payload["status"], payload["percent"], payload["epoch"], payload["epochs"], payload["active"]) == ("succeeded", 100, 2, 2, False)
    assert payload["curves"]["epochs"] == [1, 2] and len(payload["curves"]["loss"]["grading_train_loss"]) == 2
    assert all(v is not None for v in payload["curves"]["loss"]["landmark_train_loss"])
    # TINY keeps no patient apart: the page says so instead of showing a number.
    assert payload["held_out"]["held_out"] is False and payload["held_out"]["note"].startswith("No held-out figures yet")
    page = client.get(reverse("training-page", args=[seeded.pk]) + f"?run={run.pk}").content.decode()
    assert "No held-out figures yet" in page and 'aria-valuenow="100"' in page


@pytest.mark.django_db
def test_eta_is_the_mean_epoch_times_the_epochs_left():
    run = TrainingRun(status=TrainingRun.Status.RUNNING, epochs=10, epoch_log=[{"epoch": 1, "seconds": 4.0}, {"epoch": 2, "seconds": 6.0}])
    assert training_run_eta(run=run) == 40.0
    assert training_run_eta(run=TrainingRun(status=TrainingRun.Status.RUNNING, epochs=10, epoch_log=[])) is None


@pytest.mark.django_db
def test_a_failed_run_shows_its_error_in_words_and_can_be_retried_with_the_same_options(client, seeded, django_capture_on_commit_callbacks):
    run = services.model_version_request(project=seeded, epochs=3, device="cuda", labels="votes", time_budget_s=60, enqueue=False)
    services.model_version_train(run_id=run.pk)
    run.refresh_from_db()
    lead = _login(client, "lead")
    payload = lead.get(reverse("training-run-progress", args=[seeded.pk, run.pk])).json()
    assert payload["status"] == "failed" and payload["error"] == "RuntimeError: device 'cuda' requested but CUDA is not available"
    assert "Traceback" not in payload["error"]

    with django_capture_on_commit_callbacks(execute=False):
        response = lead.post(reverse("training-run-retry", args=[seeded.pk, run.pk]))
    retry = TrainingRun.objects.exclude(pk=run.pk).get()
    assert response["Location"].endswith(f"?run={retry.pk}")
    assert (retry.model_version_id, retry.epochs, retry.device, retry.labels, retry.time_budget_s) == (run.model_version_id, 3, "cuda", "votes", 60)
    assert ModelVersion.objects.get(pk=run.model_version_id).status == ModelVersion.Status.TRAINING


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_a_running_training_between_epochs_and_keeps_no_checkpoint(schemes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        project = demo_seed(slug="cancel", patients=3, read_radiographs=4, seed=11, config=SMALL).project
    run = services.model_version_request(project=project, epochs=200, config=TINY, enqueue=False)
    worker = threading.Thread(target=services.model_version_train, kwargs={"run_id": run.pk})
    worker.start()
    deadline = time.monotonic() + 120
    while not TrainingRun.objects.get(pk=run.pk).epoch_log and time.monotonic() < deadline:
        time.sleep(0.1)
    services.training_run_cancel(run=run)
    worker.join(timeout=120)
    from django.db import connections

    connections.close_all()
    run.refresh_from_db()
    version = ModelVersion.objects.get(pk=run.model_version_id)
    assert not worker.is_alive()
    assert run.status == TrainingRun.Status.CANCELLED and 1 <= len(run.epoch_log) < 200
    assert version.status == ModelVersion.Status.CANCELLED and not version.checkpoint
    with pytest.raises(services.NotCancellable):
        services.training_run_cancel(run=run)


@pytest.mark.django_db
def test_a_run_cancelled_while_queued_never_trains(seeded):
    run = services.model_version_request(project=seeded, epochs=2, config=TINY, enqueue=False)
    services.training_run_cancel(run=run)
    version = services.model_version_train(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.epoch_log, run.started_at, version.status) == ("cancelled", [], None, "cancelled")


@pytest.mark.django_db
def test_the_admin_shows_computed_records_read_only_and_links_to_the_training_page(client, seeded):
    run = services.model_version_request(project=seeded, epochs=1, config=TINY, enqueue=False)
    services.model_version_train(run_id=run.pk)
    admin = _login(client, "admin")
    for model in ("trainingrun", "modelversion", "suggestion", "prediction"):
        add = reverse(f"admin:modeling_{model}_add")
        assert admin.get(add).status_code == 403, model
        assert f'href="{add}"' not in admin.get(reverse(f"admin:modeling_{model}_changelist")).content.decode(), model
    page = admin.get(reverse("admin:modeling_trainingrun_change", args=[run.pk])).content.decode()
    assert 'name="_save"' not in page and "deletelink" not in page
    assert reverse("training-page", args=[seeded.pk]) + f"?run={run.pk}" in page
    assert admin.post(reverse("admin:modeling_trainingrun_delete", args=[run.pk]), {"post": "yes"}).status_code == 403
    assert TrainingRun.objects.filter(pk=run.pk).exists() and not Suggestion.objects.exists()
