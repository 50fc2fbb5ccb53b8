"""The loop follows its events in order: submit -> consensus stored -> retraining queued, and the
version it queues learns the consensus posteriors of the radiographs whose reads made it due.

Personas: the demo's simulated readers (reader1-3) read the seeded project; nobody else.
"""
from __future__ import annotations

import pytest

from annotation import services as annotation_services
from annotation.models import Assignment, JointArea, Radiograph
from annotation.services import GradeInput
from consensus.models import ConsensusLabel, ConsensusRun
from consensus.tasks import consensus_recompute_task
from modeling import services, tasks
from modeling.demo import demo_seed
from modeling.ml import train as ml_train
from modeling.models import LearningPolicy, ModelVersion

from .test_training_services import SMALL, TINY


@pytest.fixture
def seeded(schemes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return demo_seed(slug="loop", patients=3, read_radiographs=4, seed=11, config=SMALL).project


@pytest.mark.django_db
def test_reads_queue_a_version_only_once_their_consensus_is_stored_and_it_learns_those_posteriors(
    seeded, monkeypatch, django_capture_on_commit_callbacks
):
    project = seeded
    # A version made before the new reads, and a policy that retrains after two more read hands.
    earlier = services.model_version_request(project=project, epochs=1, config=TINY, enqueue=False).model_version
    ModelVersion.objects.filter(pk=earlier.pk).update(status=ModelVersion.Status.READY)
    LearningPolicy.objects.create(project=project, retrain_after=2, training_epochs=1, training_config=TINY)
    # Celery is eager in tests, which would run the debounced recompute inside the submission. The
    # request is kept here instead and run below, as the worker runs it after the quiet time.
    requested: list[dict] = []
    monkeypatch.setattr(consensus_recompute_task, "apply_async", lambda kwargs, countdown: requested.append(kwargs))
    queued: list[int] = []
    monkeypatch.setattr(tasks.model_train_task, "delay", lambda run_id: queued.append(run_id))

    new = list(project.radiographs.exclude(status=Radiograph.Status.READ).order_by("pk"))
    areas = list(JointArea.objects.filter(scheme=project.scheme, body_part="hand").order_by("pk"))
    assert len(new) == 2
    for radiograph in new:
        for k, assignment in enumerate(Assignment.objects.filter(radiograph=radiograph).select_related("reader").order_by("pk")):
            items = [GradeInput(area=area, value=(i + k) % 2, version=0) for i, area in enumerate(areas)]
            with django_capture_on_commit_callbacks(execute=True):
                annotation_services.grade_bulk_save(assignment=assignment, user=assignment.reader, items=items)
                annotation_services.assignment_submit(assignment=assignment, seconds_spent=60)

    # Every read is in and a recompute is requested, but no consensus covers the reads yet: nothing trains.
    assert len(requested) == 6 and queued == []
    assert ModelVersion.objects.filter(project=project).count() == 1
    before = set(ConsensusRun.objects.filter(project=project).values_list("pk", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        consensus_recompute_task.apply(kwargs=requested[-1])
    stored = ConsensusRun.objects.filter(project=project).exclude(pk__in=before)
    assert sorted(stored.values_list("dimension", flat=True)) == ["erosion", "jsn"]
    (run_id,) = queued
    version = ModelVersion.objects.get(training_runs__pk=run_id)
    assert (version.number, version.status, version.auto_promote) == (2, ModelVersion.Status.TRAINING, True)

    # Train it and look at the samples the trainer was given (the real trainer runs).
    trained_on: list[dict] = []
    real_main = ml_train.main

    def main_recording_samples(cfg, samples=None, **kwargs):
        trained_on.extend(samples)
        return real_main(cfg, samples=samples, **kwargs)

    monkeypatch.setattr(ml_train, "main", main_recording_samples)
    version = services.model_version_train(run_id=run_id)
    assert version.label_source == ModelVersion.LabelSource.CONSENSUS
    assert sorted(version.consensus_run_ids) == sorted(stored.values_list("pk", flat=True))
    codes = {area.pk: area.code for area in areas}
    for radiograph in new:
        (sample,) = [
            s for s in trained_on if s["patient_id"] == str(radiograph.visit.patient_id) and s["laterality"] == radiograph.laterality
        ]
        posteriors = {
            codes[area_id]: posterior
            for area_id, posterior in ConsensusLabel.objects.filter(run__in=stored, radiograph=radiograph).values_list("area_id", "posterior")
        }
        assert len(posteriors) == len(areas)
        assert sample["targets"] == posteriors
        # Posteriors, not the readers' vote shares (two of three readers agree on every area).
        assert any(abs(p[0] - 2 / 3) > 1e-3 and abs(p[0] - 1 / 3) > 1e-3 for p in posteriors.values())
