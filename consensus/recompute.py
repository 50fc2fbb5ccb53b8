"""Debounced consensus recomputes: requests after submissions or a lead's click, a quiet time, and
one compute for a burst of requests (the worker runs `consensus_recompute` through its task).
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotation.models import JointArea, Project

from .models import ConsensusRun, ConsensusSettings
from .services import agreement_reports_store, consensus_compute, consensus_runs_announce, consensus_settings_get


logger = logging.getLogger(__name__)


@transaction.atomic
def consensus_recompute_request(
    *,
    project: Project,
    delay_seconds: int | None = None,
    aggregator: str | None = None,
    trigger: str = ConsensusRun.Trigger.SUBMISSION,
    requested_by: AbstractBaseUser | None = None,
) -> int:
    """Ask for a recompute of every dimension; returns the request's sequence number.

    The task is enqueued after this transaction commits, `delay_seconds` later (the project's
    quiet time when None), and skips itself if a later request superseded it.
    """
    from .tasks import consensus_recompute_task

    consensus_settings_get(project=project)
    state = ConsensusSettings.objects.select_for_update().get(project=project)
    now = timezone.now()
    if state.request_seq == state.computed_seq:
        state.pending_since = now
    state.request_seq += 1
    state.requested_at = now
    state.save(update_fields=["request_seq", "requested_at", "pending_since"])
    seq = state.request_seq
    countdown = state.delay_seconds if delay_seconds is None else delay_seconds
    kwargs = {
        "project_id": project.pk,
        "seq": seq,
        "aggregator": aggregator,
        "trigger": str(trigger),
        "requested_by_id": requested_by.pk if requested_by is not None else None,
    }
    transaction.on_commit(lambda: consensus_recompute_task.apply_async(kwargs=kwargs, countdown=countdown))
    return seq


def consensus_recompute_now(
    *, project: Project, trigger: str, requested_by: AbstractBaseUser, aggregator: str | None = None
) -> int:
    """A lead's "recompute now" from the dashboard, the API or the admin: no quiet time."""
    return consensus_recompute_request(
        project=project, delay_seconds=0, aggregator=aggregator, trigger=trigger, requested_by=requested_by
    )


def consensus_recompute_after_submission(*, project_id: int) -> int | None:
    """Request a debounced recompute after a reader's submission, if the project wants one."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not consensus_settings_get(project=project).auto_recompute:
        return None
    return consensus_recompute_request(project=project, trigger=ConsensusRun.Trigger.SUBMISSION)


@transaction.atomic
def _recompute_claim(*, project_id: int, seq: int) -> str | None:
    """Decide whether request `seq` still needs a compute; if so mark it taken. Returns why not."""
    state = ConsensusSettings.objects.select_for_update().filter(project_id=project_id).first()
    if state is None:
        return "no request recorded"
    now = timezone.now()
    if state.computed_seq >= seq:
        return "already covered by a later compute"
    if state.request_seq > seq:
        waited = now - state.pending_since if state.pending_since else timedelta(0)
        if waited < timedelta(seconds=state.max_wait_seconds):
            return f"superseded by request {state.request_seq}"
    # Everything committed before now is read by the compute that follows, which covers every
    # request recorded so far, not only this one.
    state.computed_seq = state.request_seq
    state.pending_since = None
    state.compute_started_at = now
    state.save(update_fields=["computed_seq", "pending_since", "compute_started_at"])
    return None


def consensus_recompute(
    *,
    project_id: int,
    seq: int,
    aggregator: str | None = None,
    trigger: str = ConsensusRun.Trigger.SUBMISSION,
    requested_by_id: int | None = None,
) -> list[ConsensusRun]:
    """Run a requested recompute unless superseded: one run per dimension the scheme scores."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return []
    reason = _recompute_claim(project_id=project_id, seq=seq)
    if reason is not None:
        logger.info("consensus recompute %s of project %s skipped: %s", seq, project_id, reason)
        return []
    from django.contrib.auth import get_user_model

    requested_by = get_user_model().objects.filter(pk=requested_by_id).first() if requested_by_id else None
    state = consensus_settings_get(project=project)
    name = aggregator or state.aggregator
    dimensions = (
        JointArea.objects.filter(scheme_id=project.scheme_id).values_list("dimension", flat=True).distinct().order_by("dimension")
    )
    runs = [
        consensus_compute(
            project=project, dimension=dimension, aggregator=name, trigger=trigger, requested_by=requested_by, announce=False,
            fusion=state.fusion,
        )
        for dimension in dimensions
    ]
    consensus_runs_announce(runs=runs)
    # The lead's page reads the agreement report kept here rather than computing it per view.
    try:
        agreement_reports_store(project=project, runs=runs)
    except Exception:  # noqa: BLE001 - the consensus is stored; the page computes the report itself then
        logger.exception("agreement report of project %s not kept", project_id)
    return runs
