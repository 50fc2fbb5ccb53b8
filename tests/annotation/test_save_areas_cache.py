"""The areas a grade save validates against are cached in process; the cache must never answer
with rows that changed, were reloaded, or belong to another scheme."""
from __future__ import annotations

import pytest
from django.urls import reverse

from annotation import selectors, services
from annotation.models import Grade, Joint, JointArea, Membership, Scheme
from annotation.schemes import schemes_load

from ..conftest import client_for, make_radiograph


def save(client, assignment, grades):
    return client.put(reverse("api-grade-bulk-save", args=[assignment.pk]), {"grades": grades}, format="json")


@pytest.fixture
def larsen_read(world):
    """reader_a's assignment in a Larsen project, where the hand's joints are graded for erosion only."""
    project = services.project_create(name="Larsen Hands", slug="larsen-hands", scheme_key="larsen")
    services.membership_set(user=world.users["reader_a"], project=project, role=Membership.Role.READER)
    (assignment,) = services.assignments_create(radiograph=make_radiograph(project, "LARSEN-001"), readers=[world.users["reader_a"]])
    return assignment


def test_a_save_after_another_schemes_save_validates_against_its_own_schemes_areas(world, larsen_read):
    client = client_for(world.users["reader_a"])
    # SvdH grades pip_J__2 (narrowing); the cache now holds SvdH's hand areas.
    assert save(client, world.a_own, [{"area": "pip_J__2", "value": 3, "version": 0}]).status_code == 200
    refused = save(client, larsen_read, [{"area": "pip_J__2", "value": 1, "version": 0}])
    assert refused.status_code == 400
    assert "not scored in this scheme" in str(refused.json())
    assert save(client, larsen_read, [{"area": "pip_E__2", "value": 5, "version": 0}]).status_code == 200
    (larsen_grade,) = Grade.objects.filter(assignment=larsen_read)
    assert larsen_grade.area.scheme.key == "larsen" and larsen_grade.area.code == "pip_E__2"
    # And back: SvdH's save still sees SvdH's rows, not Larsen's.
    assert save(client, world.a_own, [{"area": "pip_J__2", "value": 4, "version": 1}]).status_code == 200
    assert Grade.objects.get(assignment=world.a_own, area__code="pip_J__2").area.scheme_id == world.alpha.scheme_id


def test_an_edited_area_row_is_validated_with_its_new_values_at_the_next_save(world):
    client = client_for(world.users["reader_a"])
    assert save(client, world.a_own, [{"area": "pip_E__2", "value": 2, "version": 0}]).status_code == 200
    JointArea.objects.filter(scheme=world.alpha.scheme, body_part="hand", code="pip_E__2").update(max_grade=1)
    refused = save(client, world.a_own, [{"area": "pip_E__2", "value": 2, "version": 1}])
    assert refused.status_code == 400
    assert "graded 0-1" in str(refused.json())
    JointArea.objects.filter(scheme=world.alpha.scheme, body_part="hand", code="pip_E__2").update(code="pip_E__2b")
    assert save(client, world.a_own, [{"area": "pip_E__2", "value": 1, "version": 1}]).status_code == 400
    assert save(client, world.a_own, [{"area": "pip_E__2b", "value": 1, "version": 1}]).status_code == 200


def test_areas_reloaded_with_new_ids_are_served_with_the_new_ids(world, larsen_read):
    before = selectors.save_target_for_reader(user=world.users["reader_a"], assignment_id=larsen_read.pk).areas
    scheme = Scheme.objects.get(key="larsen")
    # What a flushed and reloaded database does: the same codes, other primary keys.
    JointArea.objects.filter(scheme=scheme).delete()
    schemes_load(scheme_model=Scheme, joint_model=Joint, area_model=JointArea)
    after = selectors.save_target_for_reader(user=world.users["reader_a"], assignment_id=larsen_read.pk).areas
    assert set(after) == set(before)
    assert after["pip_E__2"].pk != before["pip_E__2"].pk
    assert after["pip_E__2"].pk == JointArea.objects.get(scheme=scheme, body_part="hand", code="pip_E__2").pk


def test_the_save_answers_exactly_what_the_own_grade_serializer_gives_for_the_stored_rows(world):
    from annotation.serializers import OwnGradeSerializer

    client = client_for(world.users["reader_a"])
    save(client, world.a_own, [{"area": "pip_E__2", "value": 2, "version": 0}])
    answer = save(client, world.a_own, [{"area": "pip_E__2", "value": 3, "version": 1}, {"area": "mcp_J__3", "value": 1, "version": 0}])
    assert answer.status_code == 200
    stored = Grade.objects.filter(assignment=world.a_own).select_related("area")
    expected = {row["area"]: dict(row) for row in OwnGradeSerializer(stored, many=True).data}
    assert {row["area"]: row for row in answer.json()["grades"]} == expected


def test_a_save_of_no_cells_starts_the_read_and_writes_nothing(world):
    # The visit form's submit saves each film's pending cells, which may be none for a film.
    assert services.grade_bulk_save(assignment=world.a_own, user=world.users["reader_a"], items=[]) == []
    world.a_own.refresh_from_db()
    assert world.a_own.status == "in_progress" and not Grade.objects.filter(assignment=world.a_own).exists()
