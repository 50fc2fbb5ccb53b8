"""Reactions to other apps' signals, connected in `ModelingConfig.ready()`."""
from __future__ import annotations

import logging
from functools import partial

from django.db import transaction

from . import services

logger = logging.getLogger(__name__)


def retrain_if_due(sender, *, project_id: int, **kwargs) -> None:
    # The consensus runs have already committed: a failure to queue a training is logged, never
    # turned into a failed recompute.
    try:
        services.model_version_retrain_if_due(project_id=project_id)
    except Exception:  # noqa: BLE001
        logger.exception("could not check whether project %s is due for retraining", project_id)


def heatmaps_delete_on_delete(sender, *, instance, **kwargs) -> None:
    from .heatmaps import heatmaps_delete

    transaction.on_commit(partial(heatmaps_delete, radiograph_id=instance.pk))
