"""A patient's series: every film of one body part and side of a patient, read together.

In the paired reading modes the worklist hands out a series as one task. With the order known the
films stand in chronological order under their timepoint names; with the order hidden they stand
in a random order of the reader's own, named "Film A", "Film B", ..., and nothing the page or its
API sends names a visit or a date. The grades map back by themselves: each film's grades are saved
on its own assignment, which is the radiograph of one visit, so the server never asks the page
which timepoint a film was.

The hidden order is derived, not stored: films are sorted by a keyed hash (HMAC with SECRET_KEY)
of reader and radiograph, so it is the same on every visit of the page, differs between readers
and between series, and cannot be worked out from what the page shows.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import string
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404
from django.utils.translation import gettext as _

from .models import Assignment, Project
from .selectors import assignment_list_for_reader

PAIRED_MODES = (Project.ReadingMode.PAIRED_KNOWN, Project.ReadingMode.PAIRED_HIDDEN)
SIDE_CODES = ("RH", "LH", "RF", "LF")


def is_paired(project: Project) -> bool:
    return project.reading_mode in PAIRED_MODES


def hidden_rank(*, reader_id: int, radiograph_id: int, key: str | None = None) -> str:
    """The sort key of one film in a reader's hidden order (hex HMAC-SHA256 of reader and film)."""
    secret = (key if key is not None else settings.SECRET_KEY).encode()
    return hmac.new(secret, f"series-order:{reader_id}:{radiograph_id}".encode(), hashlib.sha256).hexdigest()


def film_label(index: int) -> str:
    """'Film A', 'Film B', ... 'Film Z', then 'Film AA' (series longer than 26 films are unheard of)."""
    letters = string.ascii_uppercase
    name = letters[index % 26] if index < 26 else letters[index // 26 - 1] + letters[index % 26]
    return _("Film %(letter)s") % {"letter": name}


@dataclass(frozen=True)
class SeriesFilm:
    """One film of a series as the reader sees it: its assignment, its place and its column key."""

    assignment: Assignment
    key: str  # the column key on the page: "A", "B", ...; never a timepoint
    label: str  # "Film A" in hidden order; the timepoint in known order
    date: str = ""  # the visit's (shifted) acquisition date in known order; never in hidden order


def _chronological(read: Assignment) -> tuple:
    visit = read.radiograph.visit
    return (visit.acquired_on or datetime.date.max, visit.timepoint, read.radiograph.pk)


def series_films_for_reader(*, user: AbstractBaseUser, patient_id: int, side: str) -> list[SeriesFilm]:
    """The reader's own films of one series, in the order the reader reads them; Http404 if none.

    `side` is the side code (RH, LH, RF, LF). Only the reader's assignments in a paired project
    count: another reader's series, or a series of a project read film by film, answers as missing.
    """
    side = side.upper()
    if side not in SIDE_CODES:
        raise Http404(_("No such series."))
    reads = [
        read
        for read in assignment_list_for_reader(user=user).filter(radiograph__visit__patient_id=patient_id)
        if read.radiograph.side == side and is_paired(read.radiograph.project)
    ]
    if not reads:
        raise Http404(_("No such series."))
    if reads[0].radiograph.project.reading_mode == Project.ReadingMode.PAIRED_HIDDEN:
        reads.sort(key=lambda read: hidden_rank(reader_id=user.pk, radiograph_id=read.radiograph_id))
        return [SeriesFilm(assignment=read, key=chr(65 + i) if i < 26 else str(i), label=film_label(i)) for i, read in enumerate(reads)]
    reads.sort(key=_chronological)
    films = []
    for index, read in enumerate(reads):
        visit = read.radiograph.visit
        date = visit.acquired_on.isoformat() if visit.acquired_on else ""
        films.append(SeriesFilm(assignment=read, key=chr(65 + index) if index < 26 else str(index), label=visit.timepoint, date=date))
    return films


def series_rows(assignments) -> list[dict]:
    """The worklist of a paired project: one row per series, in the order of its most urgent film.

    `assignments` come from `assignment_list_for_reader` with `graded` annotated. A row carries the
    patient, the side code, the films' assignments, the graded count and a status; no timepoint.
    """
    from .models import JointArea

    rows: dict[tuple, dict] = {}
    area_counts: dict[tuple, int] = {}
    for assignment in assignments:
        radiograph = assignment.radiograph
        key = (radiograph.visit.patient_id, radiograph.side)
        row = rows.setdefault(
            key,
            {"patient": radiograph.visit.patient, "side": radiograph.side, "body_part": radiograph.body_part,
             "laterality": radiograph.laterality, "reads": [], "graded": 0, "areas": 0},
        )
        counts_key = (radiograph.project.scheme_id, radiograph.body_part)
        if counts_key not in area_counts:
            area_counts[counts_key] = JointArea.objects.filter(scheme_id=counts_key[0], body_part=counts_key[1]).count()
        row["reads"].append(assignment)
        row["graded"] += assignment.graded
        row["areas"] += area_counts[counts_key]
    for row in rows.values():
        statuses = {read.status for read in row["reads"]}
        row["status"] = (
            Assignment.Status.SUBMITTED if statuses == {Assignment.Status.SUBMITTED}
            else Assignment.Status.PENDING if statuses == {Assignment.Status.PENDING}
            else Assignment.Status.IN_PROGRESS
        )
    return list(rows.values())
