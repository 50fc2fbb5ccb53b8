"""The consensus as a score source of the annotation app's exports (`export_scores --source consensus`)."""
from __future__ import annotations

from annotation.exports import ScoreSourceUnavailable
from annotation.models import Dimension, Project

from . import selectors


def consensus_scores(*, project: Project, timepoint: str) -> dict[tuple[str, str, str], int]:
    """Latest successful consensus of every dimension at one timepoint, keyed (patient, side, area)."""
    if not any(selectors.consensus_run_latest(project=project, dimension=d) for d in Dimension.values):
        raise ScoreSourceUnavailable(
            f"No consensus has been computed for project {project.slug} yet: "
            f"run `manage.py compute_consensus --project {project.slug}` or recompute it on the agreement page."
        )
    try:
        scores = selectors.consensus_grades_for_export(project, timepoint=timepoint)
    except selectors.ExportAmbiguous as error:
        raise ScoreSourceUnavailable(str(error)) from None
    if not scores:
        raise ScoreSourceUnavailable(f"The consensus of project {project.slug} has no grades at timepoint {timepoint!r}.")
    return scores
