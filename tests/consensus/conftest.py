"""Graded projects for consensus tests.

Grades are written straight into the tables as submitted reads, without the reader API: these
tests are about what consensus does with submitted grades, and a submission through the API
would also trigger the automatic recompute that some tests want to observe on their own.
The personas come from tests/conftest.py: in `alpha` (blinded) reader_a and reader_b read, `lead`
leads, `other_lead` leads beta only, `outsider` belongs nowhere, `staff` sees everything.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from django.utils import timezone

from annotation import services as annotation_services
from annotation.models import Assignment, Grade, JointArea, Membership, Radiograph
from scoring.readers import make_reader_panel

from ..conftest import make_radiograph, make_user


def areas_of(project, body_part: str = "hand", dimension: str | None = None) -> list[JointArea]:
    areas = JointArea.objects.filter(scheme=project.scheme, body_part=body_part).order_by("dimension", "order")
    if dimension:
        areas = areas.filter(dimension=dimension)
    return list(areas)


def submit_grades(radiograph: Radiograph, reader, values: Mapping[str, int], *, submitted: bool = True) -> Assignment:
    """Give `reader` an assignment on `radiograph` holding `values` (area code -> grade)."""
    assignment, _ = Assignment.objects.get_or_create(reader=reader, radiograph=radiograph)
    areas = {a.code: a for a in areas_of(radiograph.project, radiograph.body_part)}
    Grade.objects.bulk_create(Grade(assignment=assignment, area=areas[code], value=value) for code, value in values.items())
    if submitted:
        assignment.status = Assignment.Status.SUBMITTED
        assignment.submitted_at = timezone.now()
        assignment.save(update_fields=["status", "submitted_at"])
    return assignment


class Graded:
    """A project read by three simulated readers with known confusion matrices."""

    def __init__(self, project, readers, radiographs, truth, panel):
        self.project, self.readers, self.radiographs, self.truth, self.panel = project, readers, radiographs, truth, panel


def grade_with_panel(project, radiographs, readers, *, seed: int = 11, body_part: str = "hand") -> dict:
    """Every reader grades every radiograph through its simulated habits; returns the truth."""
    panel = make_reader_panel(seed, n=len(readers), dimensions={"erosion": 10 if body_part == "foot" else 5, "jsn": 4})
    rng = np.random.default_rng(seed)
    truth: dict[tuple[int, str], int] = {}
    areas = areas_of(project, body_part)
    for radiograph in radiographs:
        # Mostly healthy joints with some damage, as in RA cohorts.
        for area in areas:
            truth[(radiograph.pk, area.code)] = int(min(area.max_grade, rng.geometric(0.55) - 1))
        for reader, simulated in zip(readers, panel):
            values = {}
            for dimension in ("erosion", "jsn"):
                dim_areas = [a for a in areas if a.dimension == dimension]
                given = simulated.grade(np.array([truth[(radiograph.pk, a.code)] for a in dim_areas]), dimension, rng)
                values.update({a.code: int(g) for a, g in zip(dim_areas, given)})
            submit_grades(radiograph, reader, values)
    return {"truth": truth, "panel": panel}


@pytest.fixture
def graded(world) -> Graded:
    """Alpha with 20 more hand radiographs, each read by reader_a, reader_b and reader_c."""
    reader_c = make_user("reader_c")
    annotation_services.membership_set(user=reader_c, project=world.alpha, role=Membership.Role.READER)
    readers = [world.users["reader_a"], world.users["reader_b"], reader_c]
    radiographs = [make_radiograph(world.alpha, f"ALPHA-SIM-{i:03d}", laterality="LR"[i % 2]) for i in range(20)]
    made = grade_with_panel(world.alpha, radiographs, readers)
    return Graded(world.alpha, readers, radiographs, made["truth"], made["panel"])


@pytest.fixture
def pair_read(world):
    """r1 and r2 read by reader_a and reader_b, who disagree by one grade on every third area."""
    areas = areas_of(world.alpha)
    for radiograph in (world.r1, world.r2):
        first = {a.code: (k + radiograph.pk) % (a.max_grade + 1) for k, a in enumerate(areas)}
        second = {a.code: max(0, v - 1) if k % 3 == 0 else v for k, (a, v) in enumerate(zip(areas, first.values()))}
        submit_grades(radiograph, world.users["reader_a"], first)
        submit_grades(radiograph, world.users["reader_b"], second)
    return world
