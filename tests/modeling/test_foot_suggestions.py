"""Feet through the platform: a version trains a foot model beside the hand model, and a foot
radiograph still being read gets 0-10 erosion suggestions, model landmarks and its own worklist score."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from annotation.models import JointArea, Landmark, Radiograph
from modeling import promotion, selectors, services
from modeling.demo import demo_seed
from modeling.heatmaps import OVERLAY_SCALE, heatmap_png
from modeling.ml import acquisition
from modeling.ml.body_parts import checkpoint_body_parts, part_checkpoint
from modeling.models import ModelVersion, TrainingRun
from modeling.ranking import learning_policy_get, radiograph_scores
from modeling.training_progress import training_run_payload

from .test_training_services import SMALL, TINY


@pytest.fixture
def whole_patients(schemes, django_capture_on_commit_callbacks):
    # Three patients, two hands and two feet each; four hands and four feet read by three readers.
    with django_capture_on_commit_callbacks(execute=True):
        return demo_seed(slug="feet", patients=3, read_radiographs=4, read_feet=4, seed=5, config=SMALL, feet=True).project


@pytest.mark.django_db
def test_foot_radiograph_gets_erosion_0_to_10_suggestions_landmarks_and_its_own_worklist_score(
    whole_patients, django_capture_on_commit_callbacks
):
    run = services.model_version_request(project=whole_patients, epochs=2, config=TINY, enqueue=False)
    version = services.model_version_train(run_id=run.pk)
    run.refresh_from_db()
    assert version.status == ModelVersion.Status.READY, run.error
    # Both parts trained two epochs each; the progress runs on across them and ends full.
    assert [(row["body_part"], row["epoch"]) for row in run.epoch_log] == [("hand", 1), ("hand", 2), ("foot", 1), ("foot", 2)]
    assert (run.status, run.progress) == (TrainingRun.Status.SUCCEEDED, 1.0)
    # The training page counts the epochs of the part training last and draws the hands' curves.
    payload = training_run_payload(run=run)
    assert (payload["epoch"], payload["epochs"], payload["body_part"], payload["curves"]["epochs"]) == (2, 2, "foot", [1, 2])
    ckpt = selectors.model_version_checkpoint(version=version)
    assert checkpoint_body_parts(ckpt) == ["hand", "foot"]
    assert part_checkpoint(ckpt, "foot")["scheme"]["landmarks"] == ["mtp_ip", "mtp1", "mtp2", "mtp3", "mtp4", "mtp5"]
    assert set(version.metrics["body_parts"]) == {"hand", "foot"}

    with django_capture_on_commit_callbacks(execute=True):
        promotion.model_version_promote(version=version)
    feet = list(Radiograph.objects.filter(project=whole_patients, body_part="foot").exclude(status=Radiograph.Status.READ))
    hands = list(Radiograph.objects.filter(project=whole_patients, body_part="hand").exclude(status=Radiograph.Status.READ))
    assert len(feet) == 2 and len(hands) == 2
    for foot in feet:
        _, suggestions = selectors.suggestions_for_radiograph(radiograph=foot)
        assert sorted(suggestions) == sorted(
            [f"mtp_E__{c}" for c in ("ip", "1", "2", "3", "4", "5")] + [f"mtp_J__{c}" for c in ("ip", "1", "2", "3", "4", "5")]
        )
        erosion = suggestions["mtp_E__5"]
        assert len(erosion["distribution"]) == 11 and abs(sum(erosion["distribution"]) - 1) < 1e-6
        assert 0 <= erosion["label"] <= 10
        assert erosion["label"] == max(range(11), key=lambda g: erosion["distribution"][g])
        assert len(suggestions["mtp_J__5"]["distribution"]) == 5
        model_points = Landmark.objects.filter(radiograph=foot, source=Landmark.Source.MODEL)
        assert sorted(model_points.values_list("joint__name", flat=True)) == ["mtp1", "mtp2", "mtp3", "mtp4", "mtp5", "mtp_ip"]
        assert all(0 <= p.x < foot.width and 0 <= p.y < foot.height for p in model_points)
    # Hands keep theirs, from the hand model.
    assert len(selectors.suggestions_for_radiograph(radiograph=hands[0])[1]) == 31

    # The worklist scores a foot from its own suggestions, not with the median fallback.
    policy = learning_policy_get(project=whole_patients)
    scores, _ = radiograph_scores(version=version, radiographs=feet + hands, strategy="entropy",
                                  top_k=policy.top_k_areas, rare_weight=policy.rare_grade_weight)
    for foot in feet:
        distributions = list(version.suggestions.filter(radiograph=foot).order_by("area_id").values_list("distribution", flat=True))
        probs, n_grades = acquisition.pad_distributions(distributions)
        expected = acquisition.item_scores("entropy", probs[None], n_grades=n_grades, top_k=policy.top_k_areas,
                                           rare_weight=policy.rare_grade_weight, rng=None)[0]
        assert scores[foot.pk] == pytest.approx(float(expected))

    # The explanation map of a foot area comes from the foot model, over the whole foot film.
    area = JointArea.objects.get(scheme=whole_patients.scheme, body_part="foot", code="mtp_E__5")
    png = Image.open(io.BytesIO(heatmap_png(version=version, radiograph=feet[0], area=area)))
    assert png.mode == "RGBA" and png.size == (int(feet[0].width * OVERLAY_SCALE), int(feet[0].height * OVERLAY_SCALE))
    assert png.getchannel("A").getextrema()[1] > 0


@pytest.mark.django_db
def test_a_version_configured_for_hands_only_leaves_feet_at_the_median_worklist_score(whole_patients, django_capture_on_commit_callbacks):
    run = services.model_version_request(project=whole_patients, epochs=1, config={**TINY, "body_parts": ["hand"]}, enqueue=False)
    version = services.model_version_train(run_id=run.pk)
    run.refresh_from_db()
    assert version.status == ModelVersion.Status.READY, run.error
    assert checkpoint_body_parts(selectors.model_version_checkpoint(version=version)) == ["hand"]
    with django_capture_on_commit_callbacks(execute=True):
        promotion.model_version_promote(version=version)
    feet = list(Radiograph.objects.filter(project=whole_patients, body_part="foot").exclude(status=Radiograph.Status.READ))
    hands = list(Radiograph.objects.filter(project=whole_patients, body_part="hand").exclude(status=Radiograph.Status.READ))
    assert not version.suggestions.filter(radiograph__in=feet).exists()
    scores, _ = radiograph_scores(version=version, radiographs=feet + hands, strategy="entropy", top_k=3, rare_weight=1.0)
    median = float(np.median([scores[h.pk] for h in hands]))
    assert all(scores[f.pk] == pytest.approx(median) for f in feet)
