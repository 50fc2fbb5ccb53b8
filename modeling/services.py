"""Training, promotion and batch inference of model versions: rows in, `modeling.ml` calls, rows out."""
from __future__ import annotations

import time
import traceback
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone
from PIL import Image

from annotation import services as annotation_services
from annotation.models import Assignment, Grade, Joint, JointArea, Landmark, Membership, Project, Radiograph
from consensus.services import jsonable

from .models import LearningPolicy, ModelVersion, Prediction, Suggestion, TrainingRun

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


def _consensus_posteriors(project: Project) -> tuple[dict[int, dict[str, list[float]]], list[int]]:
    """Soft targets from the latest consensus run of each dimension: its posteriors per area."""
    from consensus.selectors import consensus_labels_for_training, consensus_run_latest

    targets: dict[int, dict[str, list[float]]] = defaultdict(dict)
    run_ids = []
    codes = dict(JointArea.objects.filter(scheme=project.scheme).values_list("pk", "code"))
    for dimension in ("erosion", "jsn"):
        run = consensus_run_latest(project=project, dimension=dimension)
        if run is None:
            continue
        run_ids.append(run.pk)
        for (radiograph_id, area_id), (_, posterior) in consensus_labels_for_training(run=run).items():
            targets[radiograph_id][codes[area_id]] = posterior
    return dict(targets), run_ids


def training_samples(*, project: Project) -> tuple[list[dict], str, list[int]]:
    """Samples for `modeling.ml.train.main`, the label source they were built from and its runs.

    The model learns the consensus (Dawid-Skene posteriors as soft targets) once it exists, and
    readers' vote shares before that.
    """
    targets, run_ids = _consensus_posteriors(project)
    source = ModelVersion.LabelSource.CONSENSUS
    if not targets:
        targets, run_ids, source = _grade_vote_shares(project), [], ModelVersion.LabelSource.GRADES
    if not targets:
        raise NothingToTrainOn(f"project {project.slug} has no submitted grades yet")
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
    return samples, source, run_ids


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
        samples, label_source, run_ids = training_samples(project=version.project)
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

    from modeling.ml.train import checkpoint_to_bytes

    with transaction.atomic():
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


def model_version_checkpoint(*, version: ModelVersion) -> dict:
    """The version's checkpoint dict, read from the media storage (local disk or shared volume)."""
    from modeling.ml.train import checkpoint_from_bytes

    with version.checkpoint.open("rb") as handle:
        return checkpoint_from_bytes(handle.read())


def suggestions_predict(*, model_version_id: int) -> int:
    """Suggestions and model landmarks for every hand radiograph of the project still being read."""
    from modeling.ml.inference import load_model, predict_hand, use_threads

    use_threads(1)
    version = ModelVersion.objects.select_related("project").get(pk=model_version_id)
    model = load_model(model_version_checkpoint(version=version))
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
    worklist_rerank(project=version.project)
    return done


# ---------------------------------------------------------------------------------------------
# Active learning: worklist order, calibration reads, automatic retraining and promotion
# ---------------------------------------------------------------------------------------------


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

    A radiograph the version has no suggestion for (a foot, or one added after the last inference)
    gets the median score, so it is neither starved nor pushed ahead of films the model finds hard.
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


def _checkpoint_split(version: ModelVersion) -> dict[str, list[str]]:
    checkpoint = model_version_checkpoint(version=version)
    return {k: [str(p) for p in v] for k, v in (checkpoint.get("split") or {}).items()}


def promotion_radiographs(*, candidate: ModelVersion, active: ModelVersion) -> list[Radiograph]:
    """The fixed validation radiographs both versions are judged on.

    Patients fall into train/val/test by a seeded hash of their id (`modeling.ml.data.patient_split`),
    so a patient's split never changes as the project grows: the candidate's validation patients
    were never trained on by any version with the same split settings. Patients the active version
    trained on are removed as well, in case its split settings differed, so neither version is
    judged on hands it has seen.
    """
    candidate_split, active_split = _checkpoint_split(candidate), _checkpoint_split(active)
    patients = set(candidate_split.get("val", [])) - set(active_split.get("train", []))
    return [
        r for r in candidate.project.radiographs.filter(body_part="hand").select_related("visit").order_by("pk")
        if str(r.visit.patient_id) in patients
    ]


def evaluation_samples(*, project: Project, radiographs: list[Radiograph]) -> list[dict]:
    """Samples for `modeling.ml.train.evaluate_hands`, with the targets training uses now: the
    consensus posteriors once they exist, readers' vote shares before that."""
    targets, _ = _consensus_posteriors(project)
    if not targets:
        targets = _grade_vote_shares(project)
    points: dict[int, dict[str, tuple[float, float]]] = defaultdict(dict)
    for rid, name, x, y in Landmark.objects.filter(radiograph__in=radiographs).exclude(
        source=Landmark.Source.MODEL
    ).values_list("radiograph_id", "joint__name", "x", "y"):
        points[rid][name] = (x, y)
    return [
        {
            "image": radiograph_pixels(radiograph),
            "laterality": radiograph.laterality,
            "landmarks": points[radiograph.pk],
            "patient_id": str(radiograph.visit.patient_id),
            "targets": targets[radiograph.pk],
        }
        for radiograph in radiographs
        if radiograph.pk in targets and len(points[radiograph.pk]) >= 2
    ]


def promotion_score(report: dict[str, Any]) -> float | None:
    """The promotion metric: the mean of erosion and JSN weighted (balanced) accuracy."""
    values = [report[d]["weighted_accuracy"] for d in ("erosion", "jsn") if isinstance(report.get(d), dict)]
    # None (NaN before `jsonable`) when a dimension had no graded area.
    values = [v for v in values if v is not None and v == v]
    return float(np.mean(values)) if values else None


def model_version_evaluate_on(*, version: ModelVersion, radiographs: list[Radiograph]) -> dict[str, Any]:
    """End-to-end metrics of `version` on `radiographs` (evaluate_hands), plus `promotion_score`."""
    from modeling.ml.inference import load_model
    from modeling.ml.train import evaluate_hands

    report = evaluate_hands(load_model(model_version_checkpoint(version=version)), evaluation_samples(project=version.project, radiographs=radiographs))
    report = jsonable(report)
    report["promotion_score"] = promotion_score(report)
    return report


def promotion_decide(*, version: ModelVersion) -> dict[str, Any]:
    """Promote an automatically trained version only if it is not a regression.

    With no version serving, the new one serves. Otherwise both are evaluated on the same fixed
    validation radiographs (`promotion_radiographs`) and the new one is promoted only when its
    `promotion_score` beats the active one's by more than the policy's margin; else it stays
    ready, waiting for a lead on the model page. The decision is kept in `metrics["promotion"]`.
    """
    from .selectors import learning_policy_for, model_version_active

    active = model_version_active(project=version.project)
    decision: dict[str, Any] = {"decided_at": timezone.now().isoformat(), "active_version": active.number if active else None}
    if active is None:
        decision.update(promoted=True, reason="no version was serving")
    elif active.pk == version.pk:
        decision.update(promoted=False, reason="already serving")
    else:
        margin = learning_policy_for(project=version.project).promotion_margin
        try:
            radiographs = promotion_radiographs(candidate=version, active=active)
            candidate = model_version_evaluate_on(version=version, radiographs=radiographs) if radiographs else {}
            serving = model_version_evaluate_on(version=active, radiographs=radiographs) if radiographs else {}
        except Exception as error:  # noqa: BLE001 - an evaluation that fails proves nothing: the lead decides
            decision.update(promoted=False, reason=f"evaluation failed ({type(error).__name__}: {error}); waiting for a lead")
        else:
            new, old = candidate.get("promotion_score"), serving.get("promotion_score")
            decision.update(compared_on=len(radiographs), candidate_score=new, active_score=old, margin=margin)
            if new is None or old is None:
                decision.update(promoted=False, reason="no validation radiographs to compare on; waiting for a lead")
            elif new > old + margin:
                decision.update(promoted=True, reason=f"beats v{active.number} on {len(radiographs)} validation radiographs")
            else:
                decision.update(promoted=False, reason=f"does not beat v{active.number}; waiting for a lead")
    ModelVersion.objects.filter(pk=version.pk).update(metrics={**(version.metrics or {}), "promotion": decision})
    version.refresh_from_db()
    if decision["promoted"]:
        model_version_promote(version=version)
    return decision
