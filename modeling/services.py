"""Training, promotion and batch inference of model versions: rows in, `modeling.ml` calls, rows out."""
from __future__ import annotations

import time
import traceback
from collections import defaultdict
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from PIL import Image

from annotation.models import Assignment, Grade, Joint, JointArea, Landmark, Project, Radiograph

from .models import ModelVersion, Prediction, Suggestion, TrainingRun

# A running training whose last epoch is older than this was killed with its worker.
STALE_AFTER = timedelta(hours=2)


class NothingToTrainOn(Exception):
    """The project has no radiograph with both landmarks and submitted grades."""


def scheme_for(project: Project, body_part: str = "hand") -> dict[str, Any]:
    """The project's scheme in the shape `modeling.ml` stores in its checkpoints."""
    from modeling.ml.data import scheme_from_entry

    joints = Joint.objects.filter(scheme=project.scheme, body_part=body_part).order_by("order")
    areas = JointArea.objects.filter(scheme=project.scheme, body_part=body_part).select_related("joint").order_by("dimension", "order")
    entry = {
        "key": project.scheme.key,
        "landmarks": [{"body_part": body_part, "name": joint.name} for joint in joints],
        "areas": [
            {"body_part": body_part, "landmark": a.joint.name, "dimension": a.dimension, "max_grade": a.max_grade, "code": a.code}
            for a in areas
        ],
    }
    return scheme_from_entry(entry, body_part)


def radiograph_pixels(radiograph: Radiograph) -> np.ndarray:
    with radiograph.image.open("rb") as handle:
        image = Image.open(handle)
        image.load()
    return np.asarray(image)


def _grade_vote_shares(project: Project) -> dict[int, dict[str, list[float]]]:
    """Soft targets from submitted grades: the share of readers who gave each grade."""
    counts: dict[int, dict[str, np.ndarray]] = defaultdict(dict)
    rows = Grade.objects.filter(
        assignment__radiograph__project=project, assignment__status=Assignment.Status.SUBMITTED
    ).values_list("assignment__radiograph_id", "area__code", "area__max_grade", "value")
    for radiograph_id, code, max_grade, value in rows:
        votes = counts[radiograph_id].setdefault(code, np.zeros(max_grade + 1))
        votes[value] += 1
    return {rid: {code: (v / v.sum()).tolist() for code, v in areas.items()} for rid, areas in counts.items()}


def training_samples(*, project: Project) -> tuple[list[dict], str]:
    """Samples for `modeling.ml.train.main` and the label source they were built from."""
    targets = _grade_vote_shares(project)
    if not targets:
        raise NothingToTrainOn(f"project {project.slug} has no submitted grades yet")
    source = ModelVersion.LabelSource.GRADES
    # Every hand with known landmarks teaches localisation; only graded ones teach grading.
    radiographs = Radiograph.objects.filter(project=project, body_part="hand").select_related("visit")
    human_points: dict[int, dict[str, tuple[float, float]]] = defaultdict(dict)
    # Imported points and readers' corrections are known positions; the model's own are not.
    for rid, name, x, y in Landmark.objects.filter(radiograph__in=radiographs).exclude(
        source=Landmark.Source.MODEL
    ).values_list("radiograph_id", "joint__name", "x", "y"):
        human_points[rid][name] = (x, y)
    samples = []
    for radiograph in radiographs:
        if len(human_points[radiograph.pk]) < 2:
            continue
        samples.append(
            {
                "image": radiograph_pixels(radiograph),
                "laterality": radiograph.laterality,
                "landmarks": human_points[radiograph.pk],
                "patient_id": str(radiograph.visit.patient_id),
                "targets": targets.get(radiograph.pk, {}),
            }
        )
    if not samples:
        raise NothingToTrainOn(f"project {project.slug} has no radiograph with landmarks and submitted grades")
    return samples, source


@transaction.atomic
def model_version_request(
    *,
    project: Project,
    epochs: int = 30,
    device: str = "cpu",
    config: dict | None = None,
    auto_promote: bool = False,
    requested_by: AbstractBaseUser | None = None,
    enqueue: bool = True,
) -> TrainingRun:
    """Create a version in training and enqueue its training on the `training` queue.

    `enqueue=False` leaves the run for the caller to train in its own process (the command line).
    """
    from .tasks import model_train_task

    number = (ModelVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
    version = ModelVersion.objects.create(
        project=project, number=number, config=config or {}, auto_promote=auto_promote, created_by=requested_by
    )
    run = TrainingRun.objects.create(model_version=version, epochs=epochs, device=device)
    if enqueue:
        transaction.on_commit(lambda: model_train_task.delay(run.pk))
    return run


@transaction.atomic
def training_run_retry(*, run: TrainingRun) -> TrainingRun:
    """A failed run is retried as a new run of the same version."""
    from .tasks import model_train_task

    version = ModelVersion.objects.select_for_update().get(pk=run.model_version_id)
    version.status = ModelVersion.Status.TRAINING
    version.save(update_fields=["status"])
    retry = TrainingRun.objects.create(model_version=version, epochs=run.epochs, device=run.device)
    transaction.on_commit(lambda: model_train_task.delay(retry.pk))
    return retry


def training_runs_fail_stale(*, now=None) -> int:
    """Mark runs whose worker died (no heartbeat for STALE_AFTER) as failed, so they can be retried."""
    now = now or timezone.now()
    stale = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER)
    count = 0
    for run in stale:
        _run_fail(run, "The worker stopped sending progress (killed or lost); retry the run.")
        count += 1
    return count


def _run_fail(run: TrainingRun, error: str) -> None:
    with transaction.atomic():
        TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.FAILED, error=error, finished_at=timezone.now())
        ModelVersion.objects.filter(pk=run.model_version_id).update(status=ModelVersion.Status.FAILED)


def model_version_train(*, run_id: int) -> ModelVersion:
    """Train one version. Progress is written every epoch; failure leaves the active version serving."""
    from modeling.ml.train import TrainConfig, config_from_dict, main

    run = TrainingRun.objects.select_related("model_version__project").get(pk=run_id)
    version = run.model_version
    now = timezone.now()
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING, started_at=now, heartbeat_at=now)
    try:
        samples, label_source = training_samples(project=version.project)
        cfg = config_from_dict({**asdict(TrainConfig()), **version.config})
        cfg.scheme = scheme_for(version.project)
        cfg.device = run.device
        cfg.epochs = run.epochs
        cfg.out = None
        log: list[dict] = []

        def on_epoch(epoch: int, metrics: dict) -> None:
            log.append({k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool, dict))})
            TrainingRun.objects.filter(pk=run.pk).update(
                epoch_log=log, progress=min(1.0, epoch / cfg.epochs), heartbeat_at=timezone.now()
            )

        checkpoint = main(cfg, samples=samples, on_epoch=on_epoch)
    except Exception as error:  # noqa: BLE001 - any failure is recorded on the run, not raised into the worker
        _run_fail(run, f"{type(error).__name__}: {error}\n\n{traceback.format_exc(limit=8)}")
        version.refresh_from_db()
        return version

    import io

    import torch

    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        version.checkpoint.save(f"v{version.number}.pt", ContentFile(buffer.getvalue()), save=False)
        version.metrics = _json_safe(checkpoint["metrics"])
        version.config = _json_safe(checkpoint["config"])
        version.label_source = label_source
        version.status = ModelVersion.Status.READY
        version.trained_at = timezone.now()
        version.save()
        TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.SUCCEEDED, progress=1.0, finished_at=timezone.now())
        no_active = not ModelVersion.objects.filter(project=version.project, status=ModelVersion.Status.ACTIVE).exists()
        if version.auto_promote and no_active:
            model_version_promote(version=version)
    return version


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


class NotPromotable(Exception):
    pass


@transaction.atomic
def model_version_promote(*, version: ModelVersion) -> ModelVersion:
    """Make `version` the one that serves its project; the swap is atomic. Enqueues batch inference."""
    from .tasks import model_predict_task

    versions = ModelVersion.objects.select_for_update().filter(project_id=version.project_id)
    version = versions.get(pk=version.pk)
    if version.status not in (ModelVersion.Status.READY, ModelVersion.Status.ACTIVE):
        raise NotPromotable(f"version {version.number} is {version.status}; only a trained version can serve")
    versions.filter(status=ModelVersion.Status.ACTIVE).exclude(pk=version.pk).update(status=ModelVersion.Status.READY)
    version.status = ModelVersion.Status.ACTIVE
    version.promoted_at = timezone.now()
    version.save(update_fields=["status", "promoted_at"])
    transaction.on_commit(lambda: model_predict_task.delay(version.pk))
    return version


def suggestions_predict(*, model_version_id: int) -> int:
    """Suggestions and model landmarks for every hand radiograph of the project still being read."""
    import torch

    from modeling.ml.inference import load_model, predict_hand

    # One thread per inference process: two threads on a small CPU were several times slower.
    torch.set_num_threads(1)
    version = ModelVersion.objects.select_related("project").get(pk=model_version_id)
    with version.checkpoint.open("rb") as handle:
        import io

        import torch

        checkpoint = torch.load(io.BytesIO(handle.read()), map_location="cpu", weights_only=True)
    model = load_model(checkpoint)
    areas = {a.code: a for a in JointArea.objects.filter(scheme=version.project.scheme, body_part="hand")}
    joints = {j.name: j for j in Joint.objects.filter(scheme=version.project.scheme, body_part="hand")}
    radiographs = version.project.radiographs.filter(body_part="hand").exclude(status=Radiograph.Status.READ)
    done = 0
    for radiograph in radiographs:
        started = time.perf_counter()
        prediction = predict_hand(model, radiograph_pixels(radiograph), radiograph.laterality)
        seconds = time.perf_counter() - started
        with transaction.atomic():
            if not ModelVersion.objects.filter(pk=version.pk, status=ModelVersion.Status.ACTIVE).exists():
                break  # a newer promotion took over; its own inference writes the suggestions
            Suggestion.objects.filter(radiograph=radiograph, model_version=version).delete()
            Suggestion.objects.bulk_create(
                Suggestion(radiograph=radiograph, model_version=version, area=areas[a["code"]],
                           distribution=a["distribution"], label=a["label"])
                for a in prediction.areas
                if a["code"] in areas
            )
            Landmark.objects.filter(radiograph=radiograph, source=Landmark.Source.MODEL).delete()
            Landmark.objects.bulk_create(
                Landmark(radiograph=radiograph, joint=joints[name], x=x, y=y, confidence=conf, source=Landmark.Source.MODEL)
                for name, (x, y, conf) in prediction.landmarks.items()
                if name in joints
            )
            Prediction.objects.update_or_create(
                radiograph=radiograph, model_version=version,
                defaults={"landmarks": prediction.to_dict()["landmarks"], "seconds": seconds},
            )
        done += 1
    return done
