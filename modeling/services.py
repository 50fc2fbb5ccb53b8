"""Writes of the modeling app: request, train and retry model versions, batch inference, and the
retraining policy (which follows stored consensus runs).

Samples come from `samples.py`, the serving decision from `promotion.py` and the worklist order
from `ranking.py`.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import asdict
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from annotation.models import Joint, JointArea, Landmark, Project, Radiograph
from scoring.jsonable import jsonable

from .models import LearningPolicy, ModelVersion, Prediction, Suggestion, TrainingRun
from .promotion import promotion_decide
from .ranking import worklist_rerank
from .samples import radiograph_pixels, scheme_for, training_samples
from .selectors import model_version_checkpoint

BODY_PARTS = ("hand", "foot")


# A running training whose last epoch is older than this was killed with its worker.
STALE_AFTER = timedelta(hours=2)


class TrainingCancelled(Exception):
    """Raised between epochs once a run was cancelled, to stop its training loop."""


class NotCancellable(Exception):
    pass


class NotRetryable(Exception):
    pass


def _enqueue_training(run: TrainingRun) -> None:
    """Send the run to the `training` queue once the transaction commits and keep the task id, so
    a cancel can revoke it while it still waits in the queue."""
    from .tasks import model_train_task

    def send() -> None:
        result = model_train_task.delay(run.pk)
        if getattr(result, "id", None):
            TrainingRun.objects.filter(pk=run.pk).update(task_id=str(result.id))

    transaction.on_commit(send)


@transaction.atomic
def model_version_request(
    *,
    project: Project,
    epochs: int = 30,
    device: str = "cpu",
    config: dict | None = None,
    labels: str = TrainingRun.Labels.CONSENSUS,
    time_budget_s: float | None = None,
    auto_promote: bool = False,
    requested_by: AbstractBaseUser | None = None,
    enqueue: bool = True,
) -> TrainingRun:
    """Create a version in training and enqueue its training on the `training` queue.

    `enqueue=False` leaves the run for the caller to train in its own process (the command line).
    """
    number = (ModelVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
    version = ModelVersion.objects.create(
        project=project, number=number, config=config or {}, auto_promote=auto_promote, created_by=requested_by
    )
    run = TrainingRun.objects.create(
        model_version=version, epochs=epochs, device=device, labels=labels, time_budget_s=time_budget_s,
        requested_by=requested_by,
    )
    if enqueue:
        _enqueue_training(run)
    return run


@transaction.atomic
def training_run_retry(*, run: TrainingRun, requested_by: AbstractBaseUser | None = None) -> TrainingRun:
    """A failed or cancelled run is retried as a new run of the same version, with the same options."""
    version = ModelVersion.objects.select_for_update().get(pk=run.model_version_id)
    if version.status not in (ModelVersion.Status.FAILED, ModelVersion.Status.CANCELLED):
        raise NotRetryable(f"version {version.number} is {version.get_status_display().lower()}; only a failed or cancelled training is retried")
    version.status = ModelVersion.Status.TRAINING
    version.save(update_fields=["status"])
    retry = TrainingRun.objects.create(
        model_version=version, epochs=run.epochs, device=run.device, labels=run.labels, time_budget_s=run.time_budget_s,
        requested_by=requested_by or run.requested_by,
    )
    _enqueue_training(retry)
    return retry


@transaction.atomic
def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """Stop a queued or running training: the queued task is revoked, a running loop stops after
    the epoch it is in (it checks the run's status between epochs). The active version keeps serving."""
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING):
        raise NotCancellable(f"the training is already {run.get_status_display().lower()}")
    run.status = TrainingRun.Status.CANCELLED
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "finished_at"])
    ModelVersion.objects.filter(pk=run.model_version_id, status=ModelVersion.Status.TRAINING).update(
        status=ModelVersion.Status.CANCELLED
    )
    if run.task_id:
        from celery import current_app

        task_id = run.task_id
        transaction.on_commit(lambda: current_app.control.revoke(task_id))
    return run


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


def _cancelled(run: TrainingRun) -> bool:
    return TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.CANCELLED).exists()


def training_progress(*, epoch: int, epochs: int, elapsed_s: float, time_budget_s: float | None) -> float:
    """Share of the training done: epochs run, or the time budget spent when that runs out first."""
    done = epoch / max(epochs, 1)
    if time_budget_s:
        done = max(done, elapsed_s / time_budget_s)
    return min(1.0, done)


def model_version_train(*, run_id: int) -> ModelVersion:
    """Train one version. Progress is written every epoch; failure leaves the active version serving."""
    from modeling.ml.body_parts import train_parts
    from modeling.ml.train import TrainConfig, config_from_dict

    run = TrainingRun.objects.select_related("model_version__project").get(pk=run_id)
    version = run.model_version
    now = timezone.now()
    started = TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.RUNNING, started_at=now, heartbeat_at=now
    )
    if not started and run.status != TrainingRun.Status.RUNNING:
        return version  # cancelled before a worker took it (or run twice): nothing to do
    try:
        # A version trains a model per body part; its config may name fewer ("body_parts": ["hand"]).
        parts = tuple(p for p in version.config.get("body_parts", BODY_PARTS) if p in BODY_PARTS)
        samples, label_source, run_ids = training_samples(project=version.project, labels=run.labels, body_parts=parts)
        cfg = config_from_dict({**asdict(TrainConfig()), **version.config})
        cfg.scheme = scheme_for(version.project)
        schemes = {part: scheme_for(version.project, part) for part in parts}
        cfg.device = run.device
        cfg.epochs = run.epochs
        if run.time_budget_s:
            cfg.time_budget_s = run.time_budget_s
        cfg.out = None
        log: list[dict] = []
        clock = time.monotonic()

        def on_epoch(epoch: int, metrics: dict) -> None:
            log.append({k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool, dict))})
            progress = training_progress(
                epoch=epoch, epochs=cfg.epochs, elapsed_s=time.monotonic() - clock, time_budget_s=cfg.time_budget_s
            )
            TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(
                epoch_log=jsonable(log), progress=progress, heartbeat_at=timezone.now()
            )
            if _cancelled(run):
                raise TrainingCancelled(f"cancelled after epoch {epoch}")

        if _cancelled(run):
            raise TrainingCancelled("cancelled before the first epoch")
        # One model per body part with samples (hands, feet), in one checkpoint.
        # A config may give each body part its own time budget ("part_time_budget_s": {"foot": 180}).
        checkpoint = train_parts(cfg, samples, schemes, on_epoch=on_epoch,
                                 time_budgets=version.config.get("part_time_budget_s"))
    except TrainingCancelled:
        version.refresh_from_db()
        return version
    except Exception as error:  # noqa: BLE001 - any failure is recorded on the run, not raised into the worker
        _run_fail(run, f"{type(error).__name__}: {error}\n\n{traceback.format_exc(limit=8)}")
        version.refresh_from_db()
        return version

    from modeling.ml.train import checkpoint_to_bytes

    with transaction.atomic():
        if TrainingRun.objects.select_for_update().get(pk=run.pk).status == TrainingRun.Status.CANCELLED:
            version.refresh_from_db()
            return version  # cancelled during the final evaluation
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        version.checkpoint.save(f"v{version.number}.pt", ContentFile(checkpoint_to_bytes(checkpoint)), save=False)
        version.metrics = jsonable(checkpoint["metrics"])
        version.config = jsonable(checkpoint["config"])
        version.label_source = label_source
        version.consensus_run_ids = run_ids
        version.status = ModelVersion.Status.READY
        version.trained_at = timezone.now()
        version.save()
        TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.SUCCEEDED, progress=1.0, finished_at=timezone.now())
    if version.auto_promote:
        # Outside the transaction: judging against the serving version runs both models.
        promotion_decide(version=version)
        version.refresh_from_db()
    return version


def suggestions_predict(*, model_version_id: int, only_missing: bool = False) -> int:
    """Suggestions and model landmarks for every radiograph of the project still being read whose
    body part the version has a model for (hands, feet), each by its own part's model; with
    `only_missing`, only for those of them that this version has not predicted yet."""
    from modeling.ml.body_parts import load_part_models
    from modeling.ml.inference import predict_hand, use_threads

    use_threads(1)
    version = ModelVersion.objects.select_related("project").get(pk=model_version_id)
    models = load_part_models(model_version_checkpoint(version=version))
    scheme = version.project.scheme
    areas = {(a.body_part, a.code): a for a in JointArea.objects.filter(scheme=scheme, body_part__in=list(models))}
    joints = {(j.body_part, j.name): j for j in Joint.objects.filter(scheme=scheme, body_part__in=list(models))}
    radiographs = version.project.radiographs.filter(body_part__in=list(models)).exclude(status=Radiograph.Status.READ)
    if only_missing:
        radiographs = radiographs.exclude(predictions__model_version=version)
    done = 0
    for radiograph in radiographs:
        part = radiograph.body_part
        started = time.perf_counter()
        prediction = predict_hand(models[part], radiograph_pixels(radiograph), radiograph.laterality)
        seconds = time.perf_counter() - started
        with transaction.atomic():
            if not ModelVersion.objects.filter(pk=version.pk, status=ModelVersion.Status.ACTIVE).exists():
                break  # a newer promotion took over; its own inference writes the suggestions
            Suggestion.objects.filter(radiograph=radiograph, model_version=version).delete()
            Suggestion.objects.bulk_create(
                Suggestion(radiograph=radiograph, model_version=version, area=areas[(part, a["code"])],
                           distribution=a["distribution"], label=a["label"])
                for a in prediction.areas
                if (part, a["code"]) in areas
            )
            Landmark.objects.filter(radiograph=radiograph, source=Landmark.Source.MODEL).delete()
            Landmark.objects.bulk_create(
                Landmark(radiograph=radiograph, joint=joints[(part, name)], x=x, y=y, confidence=conf, source=Landmark.Source.MODEL)
                for name, (x, y, conf) in prediction.landmarks.items()
                if (part, name) in joints
            )
            Prediction.objects.update_or_create(
                radiograph=radiograph, model_version=version,
                defaults={"landmarks": prediction.to_dict()["landmarks"], "seconds": seconds},
            )
        done += 1
    worklist_rerank(project=version.project)
    return done


@transaction.atomic
def model_version_retrain_if_due(*, project_id: int) -> TrainingRun | None:
    """Queue an automatic version once the policy's N radiographs were fully read since the last one.

    Called after every stored consensus of the project (`consensus_run_stored`), so the version
    trains on the consensus that covers the reads that made it due. Nothing happens without a
    policy that asks for it, or while a version of the project is still training (the next stored
    consensus after it finishes catches up).
    """
    from .selectors import radiographs_labelled_since

    policy = LearningPolicy.objects.select_for_update().select_related("project").filter(project_id=project_id).first()
    if policy is None or policy.retrain_after == 0:
        return None
    project = policy.project
    if ModelVersion.objects.filter(project=project, status=ModelVersion.Status.TRAINING).exists():
        return None
    last = ModelVersion.objects.filter(project=project).order_by("-number").first()
    if radiographs_labelled_since(project=project, since=last.created_at if last else None) < policy.retrain_after:
        return None
    return model_version_request(
        project=project, epochs=policy.training_epochs, config=policy.training_config, auto_promote=True
    )
