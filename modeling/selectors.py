"""Reads of the modeling app: the serving version and its suggestions."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.http import Http404

from annotation.models import Assignment, Dimension, Grade, Project, Radiograph
from annotation.selectors import User, project_get_led

from .models import LearningPolicy, ModelVersion, Suggestion, TrainingRun


def project_led_for_model(*, user: User, project_id: int) -> Project:
    """The project if `user` leads it: 404 for non-members, 403 for readers (the analytics compare
    readers with the consensus, which blinded readers must not see)."""
    return project_get_led(
        user=user, project_id=project_id,
        readers_message="Model versions and suggestion analytics are shown to the project's leads only.",
    )


def model_version_active(*, project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, status=ModelVersion.Status.ACTIVE).first()


@dataclass(frozen=True)
class VersionSummary:
    """One version as a lead judges it: held-out figures, training progress, the promotion decision."""

    version: ModelVersion
    evaluated_on: str | None  # "test" or "val": the held-out part the figures come from
    train_hands: int | None
    localisation_accuracy: float | None
    erosion_weighted_accuracy: float | None
    jsn_weighted_accuracy: float | None
    promotion: dict | None  # metrics["promotion"], written by promotion_decide
    training: TrainingRun | None  # the latest run

    @property
    def promotable(self) -> bool:
        return self.version.status == ModelVersion.Status.READY


def _figure(report: dict, *keys: str) -> float | None:
    for key in keys:
        report = report.get(key) if isinstance(report, dict) else None
    return float(report) if isinstance(report, (int, float)) else None


def model_version_summaries(*, project: Project) -> list[VersionSummary]:
    """Every version of the project, newest first."""
    versions = list(ModelVersion.objects.filter(project=project).order_by("-number"))
    latest_runs: dict[int, TrainingRun] = {}
    for run in TrainingRun.objects.filter(model_version__in=versions).order_by("queued_at"):
        latest_runs[run.model_version_id] = run
    summaries = []
    for version in versions:
        metrics = version.metrics or {}
        part = "test" if metrics.get("test") else "val" if metrics.get("val") else None
        report = metrics.get(part, {}) if part else {}
        summaries.append(
            VersionSummary(
                version=version,
                evaluated_on=part,
                train_hands=int(metrics["hands"]["train"]) if isinstance(metrics.get("hands"), dict) else None,
                localisation_accuracy=_figure(report, "localisation_accuracy"),
                erosion_weighted_accuracy=_figure(report, "erosion", "weighted_accuracy"),
                jsn_weighted_accuracy=_figure(report, "jsn", "weighted_accuracy"),
                promotion=metrics.get("promotion") if isinstance(metrics.get("promotion"), dict) else None,
                training=latest_runs.get(version.pk),
            )
        )
    return summaries


def model_version_for_lead(*, user: User, project_id: int, number: int) -> ModelVersion:
    """Version `number` of a project `user` leads; 404 when there is no such version."""
    project = project_led_for_model(user=user, project_id=project_id)
    version = ModelVersion.objects.filter(project=project, number=number).select_related("project").first()
    if version is None:
        raise Http404("No such model version.")
    return version


def model_reader_labels(*, project: Project) -> dict[str, dict[tuple[int, int], int]]:
    """The serving version's suggested grades as one pseudo-reader for the agreement tables
    (settings.MODEL_READER_PROVIDER): {"model vN": {(radiograph id, area id): grade}}, or {}."""
    version = model_version_active(project=project)
    if version is None:
        return {}
    # Only radiographs someone has submitted: the tables compare on graded areas, and most
    # suggestions belong to radiographs nobody has read yet.
    read = Assignment.objects.filter(radiograph__project=project, status=Assignment.Status.SUBMITTED).values("radiograph_id")
    labels = Suggestion.objects.filter(model_version=version, radiograph_id__in=read).values_list("radiograph_id", "area_id", "label")
    return {f"model v{version.number}": {(radiograph_id, area_id): label for radiograph_id, area_id, label in labels}}


def suggestions_for_radiograph(*, radiograph: Radiograph) -> tuple[ModelVersion | None, dict[str, dict]]:
    """The active version's suggestions by area code: `{code: {"label": g, "distribution": [p0..pk]}}`.

    Empty when the project does not use suggestions: a suggestion-off project never shows model values.
    """
    project = radiograph.project
    if project.suggestions != Project.Suggestions.ASSISTED:
        return None, {}
    version = model_version_active(project=project)
    if version is None:
        return None, {}
    rows = Suggestion.objects.filter(radiograph=radiograph, model_version=version).select_related("area")
    return version, {
        row.area.code: {
            "label": row.label,
            "distribution": row.distribution,
            "heatmap_url": heatmap_url(radiograph_id=radiograph.pk, area_code=row.area.code),
        }
        for row in rows
    }


# ---------------------------------------------------------------------------------------------
# Active learning: the project's policy, labelled radiographs, suggestion analytics
# ---------------------------------------------------------------------------------------------


def learning_policy_for(*, project: Project) -> LearningPolicy:
    """The project's policy, or an unsaved one with the defaults when none was set."""
    return LearningPolicy.objects.filter(project=project).first() or LearningPolicy(project=project)


def radiographs_labelled_since(*, project: Project, since: datetime | None) -> int:
    """Radiographs that became fully read (their k-th submitted read) after `since`.

    Counted from the reads themselves, not from `Radiograph.status`, which a separate task updates
    after the submission that triggers this check. Extra reads of a radiograph that was already
    fully read (calibration) do not count it again.
    """
    k = max(1, project.readers_per_radiograph)
    submitted = Assignment.objects.filter(radiograph__project=project, status=Assignment.Status.SUBMITTED, submitted_at__isnull=False)
    if since is not None:
        recent = submitted.filter(submitted_at__gt=since).values("radiograph_id")
        submitted = submitted.filter(radiograph_id__in=recent)
    times: dict[int, list[datetime]] = defaultdict(list)
    for radiograph_id, submitted_at in submitted.values_list("radiograph_id", "submitted_at"):
        times[radiograph_id].append(submitted_at)
    return sum(
        1 for moments in times.values() if len(moments) >= k and (since is None or sorted(moments)[k - 1] > since)
    )


@dataclass(frozen=True)
class SecondsSummary:
    reads: int
    mean: float | None
    median: float | None


@dataclass(frozen=True)
class SuggestionAnalytics:
    """How readers use the model's suggestions (definitions in `suggestion_analytics`)."""

    graded_areas_with_suggestion: int
    accepted: int
    edited: int
    manual: int
    acceptance_rate: float | None
    edit_rate: float | None
    manual_rate: float | None
    mean_edit_distance: float | None
    edit_distances: dict[int, int]
    seconds_with_suggestions: SecondsSummary
    seconds_without_suggestions: SecondsSummary
    compared_with_consensus: int
    wrong_suggestions: int
    wrong_suggestion_kept_rate: float | None
    right_suggestion_kept_rate: float | None


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _seconds(values: list[int]) -> SecondsSummary:
    if not values:
        return SecondsSummary(reads=0, mean=None, median=None)
    return SecondsSummary(reads=len(values), mean=float(np.mean(values)), median=float(np.median(values)))


def suggestion_analytics(*, project: Project, model_version: ModelVersion | None = None) -> SuggestionAnalytics:
    """Acceptance, edit distance, reading time and automation bias of the project's suggestions.

    - The suggestion a reader saw for an area is the newest one created before their read was
      submitted; a graded area "had a suggestion" when there is one. With `model_version`, only
      areas whose seen suggestion came from that version count.
    - Acceptance: shares of those grades saved as accepted, edited, or typed in manually
      (`Grade.source`).
    - Edit distance: mean |grade - suggested label| over edited grades, and how many moved by 1, 2...
    - Seconds: `Assignment.seconds_spent` of submitted reads, split by whether any suggestion of
      the radiograph existed at submission; reads without a recorded time (0) are left out.
    - Automation bias: among areas where the suggestion differs from the latest consensus label, the
      share of reader grades equal to the suggestion (`wrong_suggestion_kept_rate`), beside the same
      share where the suggestion matches the consensus. The consensus is fused from these very
      readers, so a high kept rate on wrong suggestions understates the bias if anything.
    """
    from consensus.selectors import consensus_labels_for_training, consensus_run_latest

    shown: dict[tuple[int, int], list[tuple[datetime, int, int]]] = defaultdict(list)
    read = Assignment.objects.filter(radiograph__project=project, status=Assignment.Status.SUBMITTED).values("radiograph_id")
    for radiograph_id, area_id, created_at, label, version_id in Suggestion.objects.filter(
        radiograph_id__in=read
    ).values_list("radiograph_id", "area_id", "created_at", "label", "model_version_id"):
        shown[(radiograph_id, area_id)].append((created_at, label, version_id))
    first_suggestion: dict[int, datetime] = {}
    for (radiograph_id, _), rows in shown.items():
        rows.sort()
        first_suggestion[radiograph_id] = min(first_suggestion.get(radiograph_id, rows[0][0]), rows[0][0])

    consensus: dict[tuple[int, int], int] = {}
    for dimension in Dimension.values:
        run = consensus_run_latest(project=project, dimension=dimension)
        if run is not None:
            consensus.update({key: label for key, (label, _) in consensus_labels_for_training(run=run).items()})

    counts = {Grade.Source.ACCEPTED: 0, Grade.Source.EDITED: 0, Grade.Source.MANUAL: 0}
    distances: list[int] = []
    wrong = wrong_kept = right = right_kept = 0
    grades = Grade.objects.filter(
        assignment__radiograph__project=project, assignment__status=Assignment.Status.SUBMITTED
    ).values_list("assignment__radiograph_id", "area_id", "value", "source", "assignment__submitted_at")
    for radiograph_id, area_id, value, source, submitted_at in grades:
        seen = [row for row in shown.get((radiograph_id, area_id), ()) if submitted_at is None or row[0] <= submitted_at]
        if not seen:
            continue
        _, suggested, version_id = seen[-1]
        if model_version is not None and version_id != model_version.pk:
            continue
        counts[source] = counts.get(source, 0) + 1
        if source == Grade.Source.EDITED:
            distances.append(abs(value - suggested))
        truth = consensus.get((radiograph_id, area_id))
        if truth is None:
            continue
        if suggested != truth:
            wrong += 1
            wrong_kept += value == suggested
        else:
            right += 1
            right_kept += value == suggested

    with_suggestions: list[int] = []
    without_suggestions: list[int] = []
    for radiograph_id, seconds, submitted_at in Assignment.objects.filter(
        radiograph__project=project, status=Assignment.Status.SUBMITTED, seconds_spent__gt=0
    ).values_list("radiograph_id", "seconds_spent", "submitted_at"):
        first = first_suggestion.get(radiograph_id)
        had = first is not None and (submitted_at is None or first <= submitted_at)
        (with_suggestions if had else without_suggestions).append(seconds)

    total = sum(counts.values())
    return SuggestionAnalytics(
        graded_areas_with_suggestion=total,
        accepted=counts[Grade.Source.ACCEPTED],
        edited=counts[Grade.Source.EDITED],
        manual=counts[Grade.Source.MANUAL],
        acceptance_rate=_rate(counts[Grade.Source.ACCEPTED], total),
        edit_rate=_rate(counts[Grade.Source.EDITED], total),
        manual_rate=_rate(counts[Grade.Source.MANUAL], total),
        mean_edit_distance=float(np.mean(distances)) if distances else None,
        edit_distances={int(d): distances.count(d) for d in sorted(set(distances))},
        seconds_with_suggestions=_seconds(with_suggestions),
        seconds_without_suggestions=_seconds(without_suggestions),
        compared_with_consensus=wrong + right,
        wrong_suggestions=wrong,
        wrong_suggestion_kept_rate=_rate(wrong_kept, wrong),
        right_suggestion_kept_rate=_rate(right_kept, right),
    )


def suggestion_payload(*, radiograph: Radiograph) -> dict | None:
    """The reader workspace's suggestion provider (settings.SUGGESTION_PROVIDER)."""
    version, suggestions = suggestions_for_radiograph(radiograph=radiograph)
    if version is None:
        return None
    return {"model_version": f"v{version.number}", "suggestions": suggestions}


def heatmap_url(*, radiograph_id: int, area_code: str) -> str:
    from django.urls import reverse

    return reverse("api-radiograph-heatmap", args=[radiograph_id, area_code])


def model_version_checkpoint(*, version: ModelVersion) -> dict:
    """The version's checkpoint dict, read from the media storage (local disk or shared volume)."""
    from modeling.ml.train import checkpoint_from_bytes

    with version.checkpoint.open("rb") as handle:
        return checkpoint_from_bytes(handle.read())
