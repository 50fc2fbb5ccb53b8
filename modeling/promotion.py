"""Which version serves: a lead's promotion, and the automatic decision that promotes a new version
only when it beats the serving one on the same validation radiographs.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from annotation.models import Radiograph
from annotation.selectors import User
from scoring.jsonable import jsonable

from .models import ModelVersion
from .samples import evaluation_samples
from .selectors import model_version_checkpoint, model_version_for_lead


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


def model_version_promote_by_lead(*, user: User, project_id: int, number: int) -> ModelVersion:
    """A lead's promotion from the model page or the API: 404/403 as for the page, then
    `model_version_promote` (NotPromotable for a version that cannot serve)."""
    return model_version_promote(version=model_version_for_lead(user=user, project_id=project_id, number=number))


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
