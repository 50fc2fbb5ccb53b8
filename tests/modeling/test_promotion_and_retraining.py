"""Automatic retraining after N fully read radiographs, and promotion only without regression.

Personas: the demo's simulated readers (reader1-3) read the seeded project; `retrain_1` and
`retrain_2` read the small project of the retraining tests. Nobody else is involved.
"""
from __future__ import annotations

import pytest

from annotation import services as annotation_services
from annotation.models import Assignment, Membership, Radiograph
from modeling import promotion, selectors, services, tasks
from modeling.demo import demo_seed
from modeling.ml.data import patient_split
from modeling.ml.phantoms import PhantomConfig
from modeling.models import LearningPolicy, ModelVersion

from ..conftest import make_radiograph, make_user
from .test_training_services import TINY

VAL_FRACTION = 0.4


@pytest.fixture
def seeded(schemes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return demo_seed(slug="promote", patients=4, read_radiographs=6, seed=13, config=PhantomConfig(width=192, height=240)).project


def split_seed(project) -> int:
    """A split seed that puts some read patients in validation and keeps others for training.

    Patient ids are database keys, which differ between test databases, so the seed is found here.
    """
    read = {str(r.visit.patient_id) for r in project.radiographs.filter(status=Radiograph.Status.READ).select_related("visit")}
    for seed in range(200):
        parts = {patient_split(p, seed, VAL_FRACTION, 0.0) for p in read}
        if parts == {"train", "val"}:
            return seed
    raise AssertionError("no split seed found")


def train(project, seed: int, auto_promote: bool = True) -> ModelVersion:
    config = {**TINY, "seed": seed, "val_fraction": VAL_FRACTION, "test_fraction": 0.0}
    run = services.model_version_request(project=project, epochs=1, config=config, auto_promote=auto_promote, enqueue=False)
    return services.model_version_train(run_id=run.pk)


@pytest.mark.django_db
def test_a_worse_version_waits_for_a_lead_and_a_better_one_is_promoted(seeded, monkeypatch, django_capture_on_commit_callbacks):
    seed = split_seed(seeded)
    score_of = {1: 0.5, 2: 0.4, 3: 0.6}
    judged: list[tuple[int, list[int]]] = []

    def fake_evaluate(*, version, radiographs):
        judged.append((version.number, [r.pk for r in radiographs]))
        return {"promotion_score": score_of[version.number]}

    monkeypatch.setattr(promotion, "model_version_evaluate_on", fake_evaluate)
    with django_capture_on_commit_callbacks(execute=True):
        first = train(seeded, seed)
    assert first.status == ModelVersion.Status.ACTIVE
    assert first.metrics["promotion"]["reason"] == "no version was serving" and judged == []

    with django_capture_on_commit_callbacks(execute=True):
        worse = train(seeded, seed)
    assert worse.status == ModelVersion.Status.READY
    decision = worse.metrics["promotion"]
    assert (decision["promoted"], decision["candidate_score"], decision["active_score"]) == (False, 0.4, 0.5)
    assert "waiting for a lead" in decision["reason"]
    assert selectors.model_version_active(project=seeded) == first
    # Both versions were judged on the same radiographs: exactly the validation patients' hands.
    (candidate_number, candidate_on), (active_number, active_on) = judged
    assert (candidate_number, active_number) == (2, 1) and candidate_on == active_on
    val_patients = {p for p in map(str, seeded.patients.values_list("pk", flat=True)) if patient_split(p, seed, VAL_FRACTION, 0.0) == "val"}
    expected = sorted(r.pk for r in seeded.radiographs.select_related("visit") if str(r.visit.patient_id) in val_patients)
    assert candidate_on == expected and decision["compared_on"] == len(expected) > 0

    with django_capture_on_commit_callbacks(execute=True):
        better = train(seeded, seed)
    assert better.status == ModelVersion.Status.ACTIVE
    assert better.metrics["promotion"]["promoted"] is True and better.metrics["promotion"]["active_version"] == 1
    first.refresh_from_db()
    assert first.status == ModelVersion.Status.READY


@pytest.mark.django_db
def test_the_margin_demands_a_clear_win_and_no_comparison_means_no_promotion(seeded, monkeypatch, django_capture_on_commit_callbacks):
    seed = split_seed(seeded)
    with django_capture_on_commit_callbacks(execute=True):
        first = train(seeded, seed)
    LearningPolicy.objects.update_or_create(project=seeded, defaults={"promotion_margin": 0.05})
    monkeypatch.setattr(promotion, "model_version_evaluate_on",
        lambda *, version, radiographs: {"promotion_score": {1: 0.5}.get(version.number, 0.53)},
    )
    slightly_better = train(seeded, seed)
    assert slightly_better.status == ModelVersion.Status.READY
    assert slightly_better.metrics["promotion"]["margin"] == 0.05

    # A version trained without validation patients cannot show that it is no worse.
    config = {**TINY, "seed": seed, "val_fraction": 0.0, "test_fraction": 0.0}
    run = services.model_version_request(project=seeded, epochs=1, config=config, auto_promote=True, enqueue=False)
    unvalidated = services.model_version_train(run_id=run.pk)
    assert unvalidated.status == ModelVersion.Status.READY
    assert unvalidated.metrics["promotion"]["compared_on"] == 0
    assert "no validation radiographs" in unvalidated.metrics["promotion"]["reason"]
    assert selectors.model_version_active(project=seeded) == first


@pytest.mark.django_db
def test_evaluating_a_version_on_chosen_radiographs_gives_the_promotion_score(seeded):
    seed = split_seed(seeded)
    version = train(seeded, seed, auto_promote=False)
    radiographs = list(seeded.radiographs.filter(status=Radiograph.Status.READ).select_related("visit"))
    report = promotion.model_version_evaluate_on(version=version, radiographs=radiographs)
    assert report["hands"] == len(radiographs) == 6
    assert 0.0 <= report["promotion_score"] <= 1.0
    assert report["promotion_score"] == pytest.approx((report["erosion"]["weighted_accuracy"] + report["jsn"]["weighted_accuracy"]) / 2)


@pytest.fixture
def small_project(schemes):
    project = annotation_services.project_create(name="Retrain", slug="retrain", readers_per_radiograph=2)
    readers = [make_user("retrain_1"), make_user("retrain_2")]
    for reader in readers:
        annotation_services.membership_set(user=reader, project=project, role=Membership.Role.READER)
    radiographs = [make_radiograph(project, f"RT-{i}") for i in range(5)]
    for radiograph in radiographs:
        annotation_services.assignments_create(radiograph=radiograph, readers=readers)
    return project, readers, radiographs


def read_fully(radiograph, readers, capture) -> None:
    for reader in readers:
        with capture(execute=True):
            annotation_services.assignment_submit(assignment=Assignment.objects.get(radiograph=radiograph, reader=reader), seconds_spent=30)


@pytest.mark.django_db
def test_a_version_is_queued_once_n_radiographs_are_fully_read_since_the_last(small_project, monkeypatch, django_capture_on_commit_callbacks):
    project, readers, radiographs = small_project
    queued: list[int] = []
    monkeypatch.setattr(tasks.model_train_task, "delay", lambda run_id: queued.append(run_id))
    LearningPolicy.objects.create(project=project, retrain_after=2, training_epochs=7)

    # One of two readers: not fully read yet.
    with django_capture_on_commit_callbacks(execute=True):
        annotation_services.assignment_submit(assignment=Assignment.objects.get(radiograph=radiographs[0], reader=readers[0]))
    assert not ModelVersion.objects.filter(project=project).exists()
    with django_capture_on_commit_callbacks(execute=True):
        annotation_services.assignment_submit(assignment=Assignment.objects.get(radiograph=radiographs[0], reader=readers[1]))
    assert not ModelVersion.objects.filter(project=project).exists()  # 1 of 2

    read_fully(radiographs[1], readers, django_capture_on_commit_callbacks)
    (version,) = ModelVersion.objects.filter(project=project)
    assert (version.auto_promote, version.training_runs.get().epochs, len(queued)) == (True, 7, 1)

    # While it trains, nothing more is queued.
    read_fully(radiographs[2], readers, django_capture_on_commit_callbacks)
    read_fully(radiographs[3], readers, django_capture_on_commit_callbacks)
    assert ModelVersion.objects.filter(project=project).count() == 1

    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.READY)
    assert selectors.radiographs_labelled_since(project=project, since=version.created_at) == 2
    assert services.model_version_retrain_if_due(project_id=project.pk) is not None
    assert ModelVersion.objects.filter(project=project).count() == 2


@pytest.mark.django_db
def test_extra_calibration_reads_do_not_count_a_radiograph_twice(small_project, django_capture_on_commit_callbacks):
    project, readers, radiographs = small_project
    read_fully(radiographs[0], readers, django_capture_on_commit_callbacks)
    cutoff = Assignment.objects.filter(radiograph=radiographs[0]).order_by("-submitted_at").first().submitted_at
    third = make_user("retrain_3")
    (extra,) = annotation_services.assignments_create(radiograph=radiographs[0], readers=[third])
    annotation_services.assignment_submit(assignment=extra)
    assert selectors.radiographs_labelled_since(project=project, since=cutoff) == 0
    assert selectors.radiographs_labelled_since(project=project, since=None) == 1


@pytest.mark.django_db
def test_without_a_policy_retraining_stays_manual(small_project, django_capture_on_commit_callbacks):
    project, readers, radiographs = small_project
    for radiograph in radiographs:
        read_fully(radiograph, readers, django_capture_on_commit_callbacks)
    assert services.model_version_retrain_if_due(project_id=project.pk) is None
    assert not ModelVersion.objects.filter(project=project).exists()
