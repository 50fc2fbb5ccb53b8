"""Reads for score exports: score sources and the RA2-DREAM sheet.

A score source maps (Patient_ID, side, area code) to a grade for one project and timepoint. The
built-in source is one reader's submitted readings; other apps plug in more by name, e.g. the
consensus app in its `AppConfig.ready()`:

    from annotation.exports import score_source_register
    score_source_register(name="consensus", source=consensus_scores)

where `consensus_scores(*, project, timepoint)` returns the mapping, or raises
`ScoreSourceUnavailable` with a message for the operator when there is nothing to export yet.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from django.contrib.auth import get_user_model

from . import ra2
from .ingestion import area_specs
from .models import Assignment, Grade, Membership, Project
from .ra2 import ScoreKey

READER_PREFIX = "reader:"


class ScoreSourceUnavailable(Exception):
    """The named source has nothing to export; the message says why."""


class ScoreSource(Protocol):
    def __call__(self, *, project: Project, timepoint: str) -> dict[ScoreKey, int]: ...


_sources: dict[str, ScoreSource] = {}


def score_source_register(*, name: str, source: ScoreSource | Callable[..., dict[ScoreKey, int]]) -> None:
    """Offer `source` under `name`; a registered name wins over a reader of the same name."""
    _sources[name] = source


def scores_from_reader(*, project: Project, username: str, timepoint: str = "baseline") -> dict[ScoreKey, int]:
    """One reader's grades from submitted readings; work in progress is not a score."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None or not Membership.objects.filter(user=user, project=project).exists():
        raise ScoreSourceUnavailable(f"'{username}' is not a reader of project {project.slug}.")
    grades = (
        Grade.objects.filter(
            assignment__reader=user,
            assignment__status=Assignment.Status.SUBMITTED,
            assignment__radiograph__project=project,
            assignment__radiograph__visit__timepoint=timepoint,
        )
        .select_related("area", "assignment__radiograph__visit__patient")
        .order_by("assignment__radiograph_id", "area__order")
    )
    scores: dict[ScoreKey, int] = {}
    owner: dict[tuple[str, str], int] = {}
    for grade in grades:
        radiograph = grade.assignment.radiograph
        patient = radiograph.visit.patient.pseudonym
        side = radiograph.side
        first = owner.setdefault((patient, side), radiograph.pk)
        if first != radiograph.pk:
            # The sheet has one cell per patient, side and joint: two films would silently collide.
            raise ScoreSourceUnavailable(
                f"Patient {patient} has two {side} radiographs read by {username} at {timepoint} "
                f"(#{first} and #{radiograph.pk}); the RA2 layout holds one."
            )
        scores[(patient, side, grade.area.code)] = grade.value
    return scores


def scores_get(*, project: Project, source: str, timepoint: str = "baseline") -> dict[ScoreKey, int]:
    """Scores from a registered source by name, or from the reader `source` (or `reader:NAME`)."""
    if source in _sources:
        return _sources[source](project=project, timepoint=timepoint)
    if source == "consensus":
        raise ScoreSourceUnavailable(
            f"No consensus exists for project {project.slug} yet: nothing provides consensus scores to export."
        )
    username = source.removeprefix(READER_PREFIX)
    return scores_from_reader(project=project, username=username, timepoint=timepoint)


def ra2_sheet_export(*, project: Project, source: str, timepoint: str = "baseline") -> str:
    """The RA2-DREAM sheet of `source`'s scores, in the layout `ra2` documents."""
    scores = scores_get(project=project, source=source, timepoint=timepoint)
    return ra2.sheet_write(scores, area_specs(scheme=project.scheme), spec=ra2.total_spec(project.scheme.totals))
