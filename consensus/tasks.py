"""Celery tasks of the consensus app: thin wrappers that take primary keys and call one service."""
from __future__ import annotations

from celery import shared_task

from . import recompute


@shared_task(soft_time_limit=600, time_limit=660)
def consensus_recompute_task(
    project_id: int,
    seq: int,
    aggregator: str | None = None,
    trigger: str = "submission",
    requested_by_id: int | None = None,
) -> str:
    runs = recompute.consensus_recompute(
        project_id=project_id, seq=seq, aggregator=aggregator, trigger=trigger, requested_by_id=requested_by_id
    )
    if not runs:
        return "skipped"
    return ", ".join(f"{run.dimension} v{run.version} {run.status}" for run in runs)
