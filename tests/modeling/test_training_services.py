"""Train, promote and predict through the services, on a tiny network and tiny phantoms."""
from __future__ import annotations

import pytest

from annotation.models import Landmark, Radiograph
from modeling import promotion, selectors, services
from modeling.samples import training_samples
from modeling.demo import demo_seed
from modeling.ml.phantoms import PhantomConfig
from modeling.models import ModelVersion, Suggestion, TrainingRun

SMALL = PhantomConfig(width=192, height=240)
TINY = {
    "landmark": {"input_size": [80, 64], "widths": [8, 16]},
    "grading": {"crop_size": 24, "widths": [8, 16], "hidden": 16, "embed_dim": 4},
    "num_threads": 1,
    # Three patients are too few to split; every hand trains (patient ids differ between databases).
    "val_fraction": 0.0,
    "test_fraction": 0.0,
}


@pytest.fixture
def seeded(schemes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return demo_seed(slug="tiny", patients=3, read_radiographs=4, seed=11, config=SMALL).project


@pytest.mark.django_db
def test_training_records_epochs_and_a_checkpoint_then_promotion_writes_suggestions(seeded, django_capture_on_commit_callbacks):
    run = services.model_version_request(project=seeded, epochs=2, config=TINY, enqueue=False)
    version = services.model_version_train(run_id=run.pk)
    run.refresh_from_db()
    assert version.status == ModelVersion.Status.READY, run.error
    assert (run.status, run.progress, [row["epoch"] for row in run.epoch_log]) == (TrainingRun.Status.SUCCEEDED, 1.0, [1, 2])
    # Seeding submitted reads, which recomputed the consensus: the model learns from it.
    assert version.label_source == ModelVersion.LabelSource.CONSENSUS and len(version.consensus_run_ids) == 2
    assert version.checkpoint.name.endswith("v1.pt") and version.checkpoint.size > 1000

    with django_capture_on_commit_callbacks(execute=True):
        promotion.model_version_promote(version=version)
    still_read = Radiograph.objects.filter(project=seeded).exclude(status=Radiograph.Status.READ)
    assert still_read.count() == 2
    for radiograph in still_read:
        _, suggestions = selectors.suggestions_for_radiograph(radiograph=radiograph)
        assert len(suggestions) == 31  # every hand area of svdh
        erosion = suggestions["pip_E__2"]
        assert len(erosion["distribution"]) == 6 and abs(sum(erosion["distribution"]) - 1) < 1e-6
        assert erosion["label"] == max(range(6), key=lambda g: erosion["distribution"][g])
        assert Landmark.objects.filter(radiograph=radiograph, source=Landmark.Source.MODEL).count() == 22
    # Radiographs already read by everyone need no suggestion.
    assert not Suggestion.objects.filter(radiograph__status=Radiograph.Status.READ).exists()


@pytest.mark.django_db
def test_failed_training_keeps_the_active_version_serving(seeded, django_capture_on_commit_callbacks):
    good = services.model_version_train(run_id=services.model_version_request(project=seeded, epochs=1, config=TINY, enqueue=False).pk)
    with django_capture_on_commit_callbacks(execute=True):
        promotion.model_version_promote(version=good)
    broken = services.model_version_request(project=seeded, epochs=1, config={**TINY, "grading": {"crop_size": -5}}, enqueue=False)
    failed = services.model_version_train(run_id=broken.pk)
    broken.refresh_from_db()
    assert failed.status == ModelVersion.Status.FAILED
    assert broken.status == TrainingRun.Status.FAILED and broken.error
    assert selectors.model_version_active(project=seeded) == good
    with pytest.raises(promotion.NotPromotable):
        promotion.model_version_promote(version=failed)


@pytest.mark.django_db
def test_suggestion_off_projects_show_no_model_values(seeded, django_capture_on_commit_callbacks):
    version = services.model_version_train(run_id=services.model_version_request(project=seeded, epochs=1, config=TINY, enqueue=False).pk)
    with django_capture_on_commit_callbacks(execute=True):
        promotion.model_version_promote(version=version)
    radiograph = Radiograph.objects.filter(project=seeded).exclude(status=Radiograph.Status.READ).first()
    assert selectors.suggestions_for_radiograph(radiograph=radiograph)[1]
    seeded.suggestions = "off"
    seeded.save()
    radiograph.refresh_from_db()
    assert selectors.suggestions_for_radiograph(radiograph=radiograph) == (None, {})


@pytest.mark.django_db
def test_promotion_swaps_the_active_version(seeded, django_capture_on_commit_callbacks):
    first = services.model_version_train(run_id=services.model_version_request(project=seeded, epochs=1, config=TINY, enqueue=False).pk)
    second = services.model_version_train(run_id=services.model_version_request(project=seeded, epochs=1, config=TINY, enqueue=False).pk)
    with django_capture_on_commit_callbacks(execute=True):
        promotion.model_version_promote(version=first)
        promotion.model_version_promote(version=second)
    first.refresh_from_db()
    assert (first.status, selectors.model_version_active(project=seeded)) == (ModelVersion.Status.READY, second)


@pytest.mark.django_db
def test_workspace_endpoint_serves_the_active_versions_suggestions(seeded, django_capture_on_commit_callbacks):
    from django.urls import reverse

    from annotation.models import Assignment

    from ..conftest import client_for

    assignment = Assignment.objects.filter(radiograph__project=seeded).exclude(radiograph__status=Radiograph.Status.READ).first()
    client = client_for(assignment.reader)
    url = reverse("api-assignment-suggestions", args=[assignment.pk])
    assert client.get(url).json() == {"model_version": None, "suggestions": {}}
    version = services.model_version_train(run_id=services.model_version_request(project=seeded, epochs=1, config=TINY, enqueue=False).pk)
    with django_capture_on_commit_callbacks(execute=True):
        promotion.model_version_promote(version=version)
    body = client.get(url).json()
    stored = {s.area.code: s.label for s in Suggestion.objects.filter(radiograph=assignment.radiograph, model_version=version)}
    assert body["model_version"] == "v1"
    assert {code: item["label"] for code, item in body["suggestions"].items()} == stored


@pytest.mark.django_db
def test_training_learns_the_consensus_once_it_exists(seeded):
    from consensus.models import ConsensusRun
    from consensus.services import consensus_compute

    runs = [consensus_compute(project=seeded, dimension=dimension) for dimension in ("erosion", "jsn")]
    assert all(run.status == ConsensusRun.Status.OK for run in runs)
    samples, source, run_ids = training_samples(project=seeded)
    assert (source, run_ids) == (ModelVersion.LabelSource.CONSENSUS, [runs[0].pk, runs[1].pk])
    label = runs[0].labels.select_related("area").first()
    sample = next(s for s in samples if s["targets"] and label.area.code in s["targets"] and
                  s["patient_id"] == str(label.radiograph.visit.patient_id) and s["laterality"] == label.radiograph.laterality)
    assert sample["targets"][label.area.code] == label.posterior


@pytest.mark.django_db
def test_heatmap_is_a_transparent_overlay_for_the_selected_area_only_for_readers_of_the_film(seeded, django_capture_on_commit_callbacks):
    import io

    import numpy as np
    from django.urls import reverse
    from PIL import Image

    from annotation.models import Assignment

    from ..conftest import client_for, make_user

    version = services.model_version_train(run_id=services.model_version_request(project=seeded, epochs=1, config=TINY, enqueue=False).pk)
    with django_capture_on_commit_callbacks(execute=True):
        promotion.model_version_promote(version=version)
    assignment = Assignment.objects.filter(radiograph__project=seeded).exclude(radiograph__status=Radiograph.Status.READ).first()
    url = reverse("api-radiograph-heatmap", args=[assignment.radiograph_id, "mcp_J__2"])
    suggestions = client_for(assignment.reader).get(reverse("api-assignment-suggestions", args=[assignment.pk])).json()["suggestions"]
    assert suggestions["mcp_J__2"]["heatmap_url"] == url

    response = client_for(assignment.reader).get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    overlay = np.asarray(Image.open(io.BytesIO(response.content)))
    assert overlay.shape[2] == 4
    covered = (overlay[..., 3] > 0).mean()
    # Only the joint's crop is coloured, never the whole film.
    assert 0 < covered < 0.25
    assert client_for(make_user("stranger")).get(url).status_code == 404
    assert client_for(assignment.reader).get(reverse("api-radiograph-heatmap", args=[assignment.radiograph_id, "nope"])).status_code == 404


def test_admin_summarises_a_versions_test_metrics():
    from modeling.admin import ModelVersionAdmin

    version = ModelVersion(metrics={"test": {"localisation_accuracy": 0.99, "erosion": {"weighted_accuracy": 0.79, "within_one": 0.995},
                                             "jsn": {"weighted_accuracy": 0.978, "within_one": 0.997}}})
    assert ModelVersionAdmin.summary(None, version) == (
        "localisation 0.99, erosion WA 0.79 / within-one 0.99, jsn WA 0.98 / within-one 1.00"
    )
