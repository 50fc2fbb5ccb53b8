"""Reads for the training page: a run's progress, time left, curves and held-out figures."""
from __future__ import annotations

from typing import Any

from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from annotation.models import Project
from annotation.selectors import User

from .models import ModelVersion, TrainingRun
from .selectors import project_led_for_model

# The epoch log's curves, in the order the plots draw them.
LOSS_SERIES = ("landmark_train_loss", "landmark_val_loss", "grading_train_loss", "grading_val_loss")
METRIC_SERIES = ("localisation_accuracy_net", "erosion_weighted_accuracy", "jsn_weighted_accuracy")
ACTIVE_STATUSES = (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)


def training_run_list(*, project: Project, limit: int = 20) -> list[TrainingRun]:
    return list(
        TrainingRun.objects.filter(model_version__project=project)
        .select_related("model_version", "requested_by")
        .order_by("-queued_at", "-pk")[:limit]
    )


def training_run_for_lead(*, user: User, project_id: int, run_id: int) -> TrainingRun:
    """Run `run_id` of a project `user` leads (404 for another project's run, 403 for a reader)."""
    project = project_led_for_model(user=user, project_id=project_id)
    run = TrainingRun.objects.filter(pk=run_id, model_version__project=project).select_related("model_version__project").first()
    if run is None:
        raise Http404("No such training run in this project.")
    return run


def training_run_eta(*, run: TrainingRun, now=None) -> float | None:
    """Seconds until the last epoch ends, from the mean epoch so far (and the time budget, when it
    runs out first); None before the first epoch has ended."""
    if run.status != TrainingRun.Status.RUNNING or not run.epoch_log:
        return None
    seconds = [row["seconds"] for row in run.epoch_log if isinstance(row.get("seconds"), (int, float))]
    if not seconds:
        return None
    done = len(_part_rows(run.epoch_log, -1))  # of the part training now
    remaining = max(run.epochs - done, 0) * sum(seconds) / len(seconds)
    if run.time_budget_s and run.started_at:
        elapsed = ((now or timezone.now()) - run.started_at).total_seconds()
        remaining = min(remaining, max(run.time_budget_s - elapsed, 0.0))
    return round(remaining, 1)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def held_out_figures(*, version: ModelVersion) -> dict[str, Any]:
    """The version's end-to-end figures on held-out hands with the counts behind each, or why
    there are none."""
    metrics = version.metrics or {}
    hands = metrics.get("hands") if isinstance(metrics.get("hands"), dict) else {}
    parts = []
    for part in ("val", "test"):
        report = metrics.get(part)
        if not isinstance(report, dict) or not report.get("hands"):
            continue
        row = {"part": part, "hands": int(report["hands"]), "localisation": _number(report.get("localisation_accuracy"))}
        for dimension in ("erosion", "jsn"):
            figures = report.get(dimension) if isinstance(report.get(dimension), dict) else {}
            row[dimension] = {
                "n": int(figures.get("n") or 0),
                "weighted_accuracy": _number(figures.get("weighted_accuracy")),
                "within_one": _number(figures.get("within_one")),
            }
        parts.append(row)
    return {
        "held_out": bool(parts),
        "train_hands": int(hands.get("train", 0) or 0),
        "parts": parts,
        "note": "" if parts else _("No held-out figures yet: too few read radiographs to keep some apart; "
                                   "every read hand trained, and promoting this version is left to a person."),
    }


def _part_rows(log: list, which: int) -> list[dict]:
    """The epoch rows of one body part's training (a version trains hands, then feet): `which` 0
    is the first part, -1 the one training now. Rows without a part are one hand training."""
    rows = [row for row in log or [] if isinstance(row, dict)]
    parts = list(dict.fromkeys(row.get("body_part", "hand") for row in rows))
    return [row for row in rows if row.get("body_part", "hand") == parts[which]] if parts else []


def _curves(run: TrainingRun) -> dict[str, Any]:
    # The first part's curves (hands, which promotion compares); feet train after them.
    log = _part_rows(run.epoch_log, 0)
    monitor = next((row.get("monitor") for row in reversed(log) if row.get("monitor")), None)
    return {
        "epochs": [row.get("epoch") for row in log],
        "loss": {key: [_number(row.get(key)) for row in log] for key in LOSS_SERIES if any(key in row for row in log)},
        "metric": {key: [_number(row.get(key)) for row in log] for key in METRIC_SERIES if any(key in row for row in log)},
        "monitor": monitor,
    }


def error_in_words(error: str) -> str:
    """The first paragraph of a failed run's error: the exception's message without the traceback."""
    return error.split("\n\n", 1)[0].strip()


def training_run_payload(*, run: TrainingRun) -> dict[str, Any]:
    """Everything the training page shows about one run, for its first paint and its polling."""
    version = run.model_version
    project_id = version.project_id
    log = run.epoch_log or []
    payload = {
        "id": run.pk,
        "version": version.number,
        "version_status": version.status,
        "version_status_label": version.get_status_display(),
        "status": run.status,
        "status_label": run.get_status_display(),
        "active": run.status in ACTIVE_STATUSES,
        "progress": round(float(run.progress), 4),
        "percent": int(round(100 * float(run.progress))),
        "epoch": len(_part_rows(log, -1)),
        "epochs": run.epochs,
        "body_part": (_part_rows(log, -1) or [{}])[-1].get("body_part", "hand"),
        "eta_s": training_run_eta(run=run),
        "device": run.device,
        "labels": run.labels,
        "labels_label": run.get_labels_display(),
        "time_budget_s": run.time_budget_s,
        "error": error_in_words(run.error) if run.error else "",
        "curves": _curves(run),
        "held_out": held_out_figures(version=version) if run.status == TrainingRun.Status.SUCCEEDED else None,
        "urls": {
            "progress": reverse("training-run-progress", args=[project_id, run.pk]),
            "page": reverse("training-page", args=[project_id]) + f"?run={run.pk}",
        },
    }
    return payload
