"""Reactions to other apps' signals, connected in `ConsensusConfig.ready()`."""
from __future__ import annotations

import logging

from . import recompute

logger = logging.getLogger(__name__)


def recompute_after_submission(sender, *, project_id: int, **kwargs) -> None:
    # The submission has already committed: a failure to queue the recompute is logged, never
    # turned into an error answer to the reader whose work is saved.
    try:
        recompute.consensus_recompute_after_submission(project_id=project_id)
    except Exception:  # noqa: BLE001
        logger.exception("could not request a consensus recompute for project %s", project_id)
