"""Reads of the modeling app: the serving version and its suggestions."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.http import Http404

from annotation.models import Assignment, Grade, Project, Radiograph
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
    # The counts behind the held-out figures, and the quadratic kappa of each scale.
    held_out_hands: int | None = None
    erosion_areas: int | None = None
    jsn_areas: int | None = None
    erosion_kappa: float | None = None
    jsn_kappa: float | None = None
    pretrained: dict | None = None  # metrics["pretrained"]: where a pre-built checkpoint came from

    @property
    def promotable(self) -> bool:
        return self.version.status == ModelVersion.Status.READY


def _figure(report: dict, *keys: str) -> float | None:
    for key in keys:
        report = report.get(key) if isinstance(report, dict) else None
    return float(report) if isinstance(report, (int, float)) else None


def _count(report: dict, *keys: str) -> int | None:
    value = _figure(report, *keys)
    return int(value) if value is not None else None


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
                held_out_hands=_count(report, "hands"),
                erosion_areas=_count(report, "erosion", "n"),
                jsn_areas=_count(report, "jsn", "n"),
                erosion_kappa=_figure(report, "erosion", "qwk"),
                jsn_kappa=_figure(report, "jsn", "qwk"),
                pretrained=metrics.get("pretrained") if isinstance(metrics.get("pretrained"), dict) else None,
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
class KeptFigures:
    """Automation bias against one reference: how often readers kept a suggestion it calls wrong.

    Every share comes with the counts behind it: `wrong_kept` of `wrong`, `right_kept` of `right`.
    """

    reference: str
    compared: int
    wrong: int
    wrong_kept: int
    right: int
    right_kept: int

    @property
    def wrong_kept_rate(self) -> float | None:
        return _rate(self.wrong_kept, self.wrong)

    @property
    def right_kept_rate(self) -> float | None:
        return _rate(self.right_kept, self.right)


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
    against_other_readers: KeptFigures
    against_gold: KeptFigures
    single_reader_areas: int
    tied_other_readers: int


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _seconds(values: list[int]) -> SecondsSummary:
    if not values:
        return SecondsSummary(reads=0, mean=None, median=None)
    return SecondsSummary(reads=len(values), mean=float(np.mean(values)), median=float(np.median(values)))


def _majority(values: list[int]) -> int | None:
    """The most frequent grade, or None when two grades tie for it."""
    counts = Counter(values).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None
    return counts[0][0]


def suggestion_analytics(*, project: Project, model_version: ModelVersion | None = None) -> SuggestionAnalytics:
    """Acceptance, edit distance, reading time and automation bias of the project's suggestions.

    - Seen: a suggestion counts only where the server served it to that reader in that read
      (`annotation.ServedSuggestion`, written when the reader's page fetched it). A suggestion made
      after the read, or for a radiograph read before any model existed, was never seen. With
      `model_version`, only suggestions served from that version count.
    - Acceptance: shares of those grades stored as accepted, edited or manual; the server decides
      the source from the served suggestion, whatever the page claimed.
    - Edit distance: mean |grade - served label| over edited grades, and how many moved by 1, 2...
    - Seconds: `Assignment.seconds_spent` of submitted reads, split by whether any suggestion was
      served in that read; reads without a recorded time (0) are left out.
    - Automation bias, leave-one-out: each grade is compared with the majority grade of the *other*
      readers of the same area (a reader's own grade never decides whether their suggestion was
      wrong); areas read by one reader only, or where the others tie, are left out and counted.
    - Automation bias against gold: the newest adjudicated grade of the area, where one exists.
    """
    from annotation.models import ServedSuggestion
    from consensus.models import AdjudicatedLabel

    served = ServedSuggestion.objects.filter(
        assignment__radiograph__project=project, assignment__status=Assignment.Status.SUBMITTED
    )
    if model_version is not None:
        served = served.filter(model_version=f"v{model_version.number}")
    seen: dict[tuple[int, int], int] = {
        (assignment_id, area_id): label for assignment_id, area_id, label in served.values_list("assignment_id", "area_id", "label")
    }
    reads_with_suggestions = {assignment_id for assignment_id, _ in seen}

    # Every submitted grade, by area, for the leave-one-out reference.
    by_area: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    grades = list(
        Grade.objects.filter(assignment__radiograph__project=project, assignment__status=Assignment.Status.SUBMITTED).values_list(
            "assignment_id", "assignment__radiograph_id", "area_id", "value", "source"
        )
    )
    for assignment_id, radiograph_id, area_id, value, _ in grades:
        by_area[(radiograph_id, area_id)].append((assignment_id, value))
    gold: dict[tuple[int, int], int] = {}
    for radiograph_id, area_id, grade in (
        AdjudicatedLabel.objects.filter(radiograph__project=project).order_by("created_at", "id").values_list("radiograph_id", "area_id", "grade")
    ):
        gold[(radiograph_id, area_id)] = grade  # the newest decision wins

    counts = {Grade.Source.ACCEPTED: 0, Grade.Source.EDITED: 0, Grade.Source.MANUAL: 0}
    distances: list[int] = []
    others_tally = {"wrong": 0, "wrong_kept": 0, "right": 0, "right_kept": 0}
    gold_tally = {"wrong": 0, "wrong_kept": 0, "right": 0, "right_kept": 0}
    single = tied = 0

    def tally(into: dict[str, int], suggested: int, reference: int, value: int) -> None:
        key = "right" if suggested == reference else "wrong"
        into[key] += 1
        into[f"{key}_kept"] += value == suggested

    for assignment_id, radiograph_id, area_id, value, source in grades:
        suggested = seen.get((assignment_id, area_id))
        if suggested is None:
            continue
        counts[source] = counts.get(source, 0) + 1
        if source == Grade.Source.EDITED:
            distances.append(abs(value - suggested))
        others = [other for reader_read, other in by_area[(radiograph_id, area_id)] if reader_read != assignment_id]
        if not others:
            single += 1
        else:
            reference = _majority(others)
            if reference is None:
                tied += 1
            else:
                tally(others_tally, suggested, reference, value)
        if (radiograph_id, area_id) in gold:
            tally(gold_tally, suggested, gold[(radiograph_id, area_id)], value)

    with_suggestions: list[int] = []
    without_suggestions: list[int] = []
    for assignment_id, seconds in Assignment.objects.filter(
        radiograph__project=project, status=Assignment.Status.SUBMITTED, seconds_spent__gt=0
    ).values_list("pk", "seconds_spent"):
        (with_suggestions if assignment_id in reads_with_suggestions else without_suggestions).append(seconds)

    def figures(reference: str, tally_: dict[str, int]) -> KeptFigures:
        return KeptFigures(reference=reference, compared=tally_["wrong"] + tally_["right"], **tally_)

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
        against_other_readers=figures("other readers (leave-one-out majority)", others_tally),
        against_gold=figures("gold (adjudicated grades)", gold_tally),
        single_reader_areas=single,
        tied_other_readers=tied,
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
