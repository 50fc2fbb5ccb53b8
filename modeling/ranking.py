"""The active-learning worklist: acquisition scores from the serving version's suggestions, the
readers' order of pending reads, and calibration reads interleaved into it.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from annotation import services as annotation_services
from annotation.models import Assignment, Membership, Project, Radiograph

from .models import LearningPolicy, ModelVersion, Suggestion


@dataclass(frozen=True)
class WorklistRanking:
    strategy: str
    model_version: int | None  # number of the version whose suggestions were scored
    scores: dict[int, float]  # radiograph id -> score (higher is read sooner)
    order: list[int]  # radiograph ids still needing reads, first first
    calibration: list[int]  # calibration radiograph ids interleaved into the worklists
    readers_assigned: int  # new assignments for radiographs that lacked readers
    assignments_ranked: int


def learning_policy_get(*, project: Project) -> LearningPolicy:
    policy, _ = LearningPolicy.objects.get_or_create(project=project)
    return policy


def calibration_radiograph_ids(*, project: Project, policy: LearningPolicy) -> set[int]:
    """Radiographs with gold grades: adjudicated ones and those the policy lists."""
    from consensus.selectors import adjudicated_label_list

    adjudicated = set(adjudicated_label_list(project=project).values_list("radiograph_id", flat=True))
    listed = set(project.radiographs.filter(pk__in=[int(i) for i in policy.calibration_radiograph_ids]).values_list("pk", flat=True))
    return adjudicated | listed


def _project_readers(project: Project) -> list:
    from django.contrib.auth import get_user_model

    return list(
        get_user_model().objects.filter(memberships__project=project, memberships__role=Membership.Role.READER).order_by("pk")
    )


@transaction.atomic
def calibration_assign(*, project: Project, radiograph_ids: set[int], readers: list) -> int:
    """Give every reader each calibration radiograph they have not read yet; returns how many.

    Calibration reads go beyond the project's k readers on purpose: their point is to compare
    each reader with the gold grades, not to label the radiograph.
    """
    created = 0
    for radiograph in project.radiographs.filter(pk__in=radiograph_ids).order_by("pk"):
        created += len(annotation_services.assignments_create(radiograph=radiograph, readers=readers, priority=0.0))
    return created


def radiograph_scores(
    *, version: ModelVersion | None, radiographs: list[Radiograph], strategy: str, top_k: int, rare_weight: float
) -> tuple[dict[int, float], dict[int, float]]:
    """Acquisition scores from `version`'s suggestions: (radiograph id -> score, visit id -> score).

    A radiograph the version has no suggestion for (a body part it has no model for, or one added
    after the last inference) gets the median score, so it is neither starved nor pushed ahead of films the model finds hard.
    """
    from modeling.ml import acquisition

    by_radiograph: dict[int, list[list[float]]] = defaultdict(list)
    if version is not None:
        for radiograph_id, distribution in Suggestion.objects.filter(
            model_version=version, radiograph__in=radiographs
        ).order_by("radiograph_id", "area_id").values_list("radiograph_id", "distribution"):
            by_radiograph[radiograph_id].append(distribution)
    # Random order is reproducible per project and version, so a re-rank does not reshuffle for nothing.
    rng = np.random.default_rng([version.project_id if version else 0, version.number if version else 0])

    def score(distributions: list[list[float]]) -> float:
        probs, n_grades = acquisition.pad_distributions(distributions)
        return float(acquisition.item_scores(
            strategy, probs[None], n_grades=n_grades, top_k=top_k, rare_weight=rare_weight, rng=rng
        )[0])

    scores = {rid: score(distributions) for rid, distributions in by_radiograph.items()}
    fallback = float(np.median(list(scores.values()))) if scores else 0.0
    by_visit: dict[int, list[list[float]]] = defaultdict(list)
    for radiograph in radiographs:
        scores.setdefault(radiograph.pk, fallback)
        by_visit[radiograph.visit_id] += by_radiograph.get(radiograph.pk, [])
    # A visit is scored on the union of its radiographs' areas; one without any suggestion gets the median.
    visits = {visit_id: score(distributions) if distributions else fallback for visit_id, distributions in by_visit.items()}
    return scores, visits


def interleave_calibration(ranked: list[Assignment], calibration: list[Assignment], every: int) -> list[Assignment]:
    """Every `every`-th position (10, 20, ... for 10) holds the next calibration read while any
    remain; calibration reads left over when ranked work runs out come last."""
    if every <= 0:
        return list(ranked)
    out: list[Assignment] = []
    ranked_left, calibration_left = list(ranked), list(calibration)
    while ranked_left or calibration_left:
        if not ranked_left or (calibration_left and (len(out) + 1) % every == 0):
            out.append(calibration_left.pop(0))
        else:
            out.append(ranked_left.pop(0))
    return out


@transaction.atomic
def worklist_rerank(*, project: Project, strategy: str | None = None) -> WorklistRanking:
    """Rewrite the priority of every pending read of the project (lower comes first).

    Radiographs still needing reads (waiting or being read) are ordered by their visit's score,
    then their own, from the active version's suggestions with the policy's strategy (both hands
    of a patient stay together). A radiograph without its k readers gets them first. Calibration
    radiographs (gold grades) are given to every reader who has not read them and take every
    n-th place of each reader's list, so the readers' accuracy stays under watch while the model
    steers the rest.
    """
    from modeling.ml import acquisition

    from .selectors import model_version_active

    policy = learning_policy_get(project=project)
    strategy = strategy or policy.strategy
    if strategy not in acquisition.DISTRIBUTION_STRATEGIES:
        raise ValueError(
            f"strategy {strategy!r} cannot rank from stored suggestions; choose one of {', '.join(acquisition.DISTRIBUTION_STRATEGIES)}"
        )
    readers = _project_readers(project)
    calibration_ids = calibration_radiograph_ids(project=project, policy=policy) if policy.calibration_every else set()
    to_read = list(
        project.radiographs.filter(status__in=[Radiograph.Status.WAITING, Radiograph.Status.IN_READING])
        .exclude(pk__in=calibration_ids)
        .order_by("pk")
    )
    assigned = Assignment.objects.filter(radiograph__in=to_read).values("radiograph_id").annotate(n=Count("id")).order_by()
    counts = {row["radiograph_id"]: row["n"] for row in assigned}
    lacking = [r for r in to_read if counts.get(r.pk, 0) < project.readers_per_radiograph]
    created = annotation_services.project_assign_readers(project=project, radiographs=lacking, readers=readers) if readers and lacking else 0
    if calibration_ids and readers:
        created += calibration_assign(project=project, radiograph_ids=calibration_ids, readers=readers)

    version = model_version_active(project=project)
    scores, visit_scores = radiograph_scores(
        version=version, radiographs=to_read, strategy=strategy, top_k=policy.top_k_areas, rare_weight=policy.rare_grade_weight
    )
    order = sorted(to_read, key=lambda r: (-visit_scores[r.visit_id], r.visit_id, -scores[r.pk], r.pk))
    position = {r.pk: i for i, r in enumerate(order)}

    pending = Assignment.objects.filter(radiograph__project=project, status=Assignment.Status.PENDING).order_by("pk")
    per_reader: dict[int, tuple[list[Assignment], list[Assignment], list[Assignment]]] = defaultdict(lambda: ([], [], []))
    for assignment in pending:
        ranked, calibration, rest = per_reader[assignment.reader_id]
        if assignment.radiograph_id in calibration_ids:
            calibration.append(assignment)
        elif assignment.radiograph_id in position:
            ranked.append(assignment)
        else:
            rest.append(assignment)  # e.g. a calibration read left over after calibration was turned off
    changed: list[Assignment] = []
    for ranked, calibration, rest in per_reader.values():
        ranked.sort(key=lambda a: position[a.radiograph_id])
        for index, assignment in enumerate([*interleave_calibration(ranked, calibration, policy.calibration_every), *rest]):
            assignment.priority = float(index)
            changed.append(assignment)
    Assignment.objects.bulk_update(changed, ["priority"], batch_size=500)

    LearningPolicy.objects.filter(pk=policy.pk).update(last_ranked_at=timezone.now(), ranked_with=version)
    return WorklistRanking(
        strategy=strategy,
        model_version=version.number if version else None,
        scores=scores,
        order=[r.pk for r in order],
        calibration=sorted(calibration_ids),
        readers_assigned=created,
        assignments_ranked=len(changed),
    )
