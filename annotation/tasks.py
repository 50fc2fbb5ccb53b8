"""Celery tasks of the annotation app: thin wrappers that take primary keys and call one service."""
from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(soft_time_limit=30, time_limit=60)
def radiograph_progress_update_task(radiograph_id: int) -> str:
    radiograph = services.radiograph_progress_update(radiograph_id=radiograph_id)
    return radiograph.status
