"""A reader's worklist keeps a visit's radiographs together, whatever their priorities say."""
from __future__ import annotations

import pytest

from annotation import selectors, services
from annotation.models import Membership

from ..conftest import make_radiograph, make_user


@pytest.fixture
def reader_with_split_visit(schemes):
    project = services.project_create(name="Visits", slug="visits", readers_per_radiograph=1)
    reader = make_user("visit_reader")
    services.membership_set(user=reader, project=project, role=Membership.Role.READER)
    first_right = make_radiograph(project, "P-016", laterality="R")
    first_left = make_radiograph(project, "P-016", laterality="L")
    other_left = make_radiograph(project, "P-029", laterality="L")
    third = make_radiograph(project, "P-040", laterality="R")
    # A re-ranking put P-016 R first but its left hand 19th, behind two other patients.
    reads = {}
    for name, radiograph, priority in [("016R", first_right, 0.0), ("029L", other_left, 1.0), ("040R", third, 2.0), ("016L", first_left, 19.0)]:
        (reads[name],) = services.assignments_create(radiograph=radiograph, readers=[reader], priority=priority)
    return project, reader, reads


@pytest.mark.django_db
def test_a_visits_second_hand_follows_its_first_in_the_worklist(reader_with_split_visit):
    project, reader, reads = reader_with_split_visit
    order = list(selectors.assignment_list_for_reader(user=reader, project=project))
    assert order == [reads["016R"], reads["016L"], reads["029L"], reads["040R"]]


@pytest.mark.django_db
def test_after_submitting_one_hand_the_next_read_is_the_other_hand_of_that_visit(reader_with_split_visit):
    project, reader, reads = reader_with_split_visit
    services.assignment_submit(assignment=reads["016R"])
    assert selectors.assignment_next(user=reader, project=project) == reads["016L"]


@pytest.mark.django_db
def test_progress_counts_every_read_whatever_the_visit_order(reader_with_split_visit):
    project, reader, reads = reader_with_split_visit
    services.assignment_submit(assignment=reads["016R"])
    services.assignment_submit(assignment=reads["029L"])
    progress = selectors.assignment_progress(user=reader, project=project)
    assert (progress["submitted"], progress["pending"], progress["total"]) == (2, 2, 4)
