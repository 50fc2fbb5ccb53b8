"""Saving grades through the API: versions, history, submission and every kind of bad input."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse

from annotation.models import Assignment, Grade, GradeChange, JointArea, Radiograph
from annotation.signals import assignment_submitted

from ..conftest import client_for


def save(client, assignment, grades, **kwargs):
    return client.put(reverse("api-grade-bulk-save", args=[assignment.pk]), {"grades": grades}, format="json", **kwargs)


@pytest.fixture
def reader_a(world):
    return client_for(world.users["reader_a"])


def test_first_save_creates_version_one_and_history(world, reader_a):
    response = save(reader_a, world.a_own, [{"area": "pip_E__2", "value": 2, "version": 0}, {"area": "pip_J__2", "value": 4, "version": 0}])
    assert response.status_code == 200, response.json()
    assert sorted((g["area"], g["value"], g["version"], g["source"]) for g in response.json()["grades"]) == [
        ("pip_E__2", 2, 1, "manual"),
        ("pip_J__2", 4, 1, "manual"),
    ]
    change = GradeChange.objects.get(grade__area__code="pip_E__2")
    assert (change.old_value, change.new_value, change.version, change.changed_by.username) == (None, 2, 1, "reader_a")
    world.a_own.refresh_from_db()
    assert world.a_own.status == Assignment.Status.IN_PROGRESS and world.a_own.started_at is not None


def test_edit_bumps_version_and_keeps_every_change(world, reader_a):
    save(reader_a, world.a_own, [{"area": "mcp_E__3", "value": 1, "version": 0}])
    # The client's "edited" is ignored: no suggestion was served in this read, so both are manual.
    response = save(reader_a, world.a_own, [{"area": "mcp_E__3", "value": 3, "version": 1, "source": "edited"}])
    assert response.json()["grades"][0]["version"] == 2
    history = list(GradeChange.objects.filter(grade__area__code="mcp_E__3").values_list("old_value", "new_value", "version", "source"))
    assert history == [(None, 1, 1, "manual"), (1, 3, 2, "manual")]


def test_stale_version_gets_409_with_current_value_and_saves_nothing(world, reader_a):
    save(reader_a, world.a_own, [{"area": "mcp_E__3", "value": 1, "version": 0}])
    save(reader_a, world.a_own, [{"area": "mcp_E__3", "value": 2, "version": 1}])
    response = save(reader_a, world.a_own, [{"area": "mcp_E__4", "value": 5, "version": 0}, {"area": "mcp_E__3", "value": 4, "version": 1}])
    assert response.status_code == 409
    assert response.json()["conflicts"] == [
        {"area": "mcp_E__3", "your_version": 1, "your_value": 4, "current_version": 2, "current_value": 2}
    ]
    # All or nothing: the fresh cell of the refused request was not written either.
    assert not Grade.objects.filter(area__code="mcp_E__4").exists()


def test_submit_needs_every_area_then_marks_done_and_updates_the_radiograph(world, reader_a, django_capture_on_commit_callbacks):
    areas = JointArea.objects.filter(scheme=world.alpha.scheme, body_part="hand")
    everything_but_one = [{"area": a.code, "value": 0, "version": 0} for a in areas][:-1]
    assert save(reader_a, world.a_own, everything_but_one).status_code == 200
    incomplete = reader_a.post(reverse("api-assignment-submit", args=[world.a_own.pk]), {}, format="json")
    assert incomplete.status_code == 400
    assert "1 area(s) are not graded yet" in incomplete.json()["grades"][0]

    last = areas.last()
    save(reader_a, world.a_own, [{"area": last.code, "value": 1, "version": 0}])
    received = []

    def listener(sender, **kwargs):
        received.append(kwargs)

    assignment_submitted.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = reader_a.post(reverse("api-assignment-submit", args=[world.a_own.pk]), {"seconds_spent": 95}, format="json")
    finally:
        assignment_submitted.disconnect(listener)
    assert response.status_code == 200
    assert [(k["assignment_id"], k["radiograph_id"], k["project_id"]) for k in received] == [(world.a_own.pk, world.r1.pk, world.alpha.pk)]
    world.a_own.refresh_from_db()
    assert (world.a_own.status, world.a_own.seconds_spent) == (Assignment.Status.SUBMITTED, 95)
    world.r1.refresh_from_db()
    # One of the two readers has submitted: still being read.
    assert (world.r1.submitted_reads, world.r1.status) == (1, Radiograph.Status.IN_READING)


def test_next_continues_started_work_before_higher_priority(world):
    reader_b = client_for(world.users["reader_b"])
    # b_on_r1 has priority 0 and comes first; once b_on_r2 is started it is continued first.
    assert reader_b.get(reverse("api-worklist-next", args=[world.alpha.pk])).json()["id"] == world.b_on_r1.pk
    save(reader_b, world.b_on_r2, [{"area": "pip_E__2", "value": 0, "version": 0}])
    assert reader_b.get(reverse("api-worklist-next", args=[world.alpha.pk])).json()["id"] == world.b_on_r2.pk


def test_worklist_counts_by_status(world, reader_a):
    body = reader_a.get(reverse("api-worklist", args=[world.alpha.pk])).json()
    assert body["progress"] == {"pending": 1, "in_progress": 0, "submitted": 0, "total": 1}
    assert [a["id"] for a in body["assignments"]] == [world.a_own.pk]


# --- bad input: every case answers 400 and names the field -------------------------------------

BAD_GRADES = [
    ({"area": "pip_E__2", "value": 6, "version": 0}, "value", "graded 0-5; got 6"),
    ({"area": "pip_J__2", "value": 5, "version": 0}, "value", "graded 0-4; got 5"),
    ({"area": "pip_E__2", "value": -1, "version": 0}, "value", "graded 0-5; got -1"),
    ({"area": "pip_E__2", "value": "a", "version": 0}, "value", "A valid integer is required"),
    ({"area": "pip_E__2", "value": 2.5, "version": 0}, "value", "A valid integer is required"),
    ({"area": "pip_E__2", "value": None, "version": 0}, "value", "may not be null"),
    ({"area": "pip_E__2", "version": 0}, "value", "required"),
    ({"area": "pip_E__9", "value": 1, "version": 0}, "area", "not a joint area of this radiograph's scheme"),
    ({"area": "mtp_E__1", "value": 1, "version": 0}, "area", "not a joint area of this radiograph's scheme"),
    ({"area": "wrist_J__radius", "value": 1, "version": 0}, "area", "graded for erosion only"),
    ({"area": "pip_E__2", "value": 1, "version": -1}, "version", "greater than or equal to 0"),
    ({"area": "pip_E__2", "value": 1, "version": 0, "source": "model"}, "source", "not a valid choice"),
    ({"area": ["pip_E__2"], "value": 1, "version": 0}, "area", "Not a valid string"),
    ("pip_E__2=1", "non_field_errors", "Invalid data"),
]


@pytest.mark.parametrize("item,field,message", BAD_GRADES, ids=[str(case[0])[:40] for case in BAD_GRADES])
def test_bad_grade_is_refused_naming_the_field(world, reader_a, item, field, message):
    response = save(reader_a, world.a_own, [item])
    assert response.status_code == 400
    errors = response.json()["grades"]["0"]
    assert message in " ".join(errors[field]), errors
    assert not Grade.objects.exists()


def test_prototype_cmc1_jsn_is_not_scored(world, reader_a):
    from annotation.models import Scheme

    world.alpha.scheme = Scheme.objects.get(key="prototype")
    world.alpha.save()
    response = save(reader_a, world.a_own, [{"area": "wrist_J__mc1", "value": 1, "version": 0}])
    assert response.status_code == 400
    assert "graded for erosion only" in response.json()["grades"]["0"]["area"][0]
    ok = save(reader_a, world.a_own, [{"area": "dip_J__3", "value": 4, "version": 0}])
    assert ok.status_code == 200


def test_duplicate_area_in_one_request_is_refused(world, reader_a):
    response = save(reader_a, world.a_own, [{"area": "pip_E__2", "value": 1, "version": 0}, {"area": "pip_E__2", "value": 2, "version": 0}])
    assert response.status_code == 400
    assert "appears more than once" in response.json()["grades"][0]
    assert not Grade.objects.exists()


def test_saving_into_a_submitted_assignment_is_refused(world, reader_a):
    world.a_own.status = Assignment.Status.SUBMITTED
    world.a_own.save()
    response = save(reader_a, world.a_own, [{"area": "pip_E__2", "value": 1, "version": 0}])
    assert response.status_code == 400
    assert "already submitted" in response.json()["assignment"][0]
    again = reader_a.post(reverse("api-assignment-submit", args=[world.a_own.pk]), {}, format="json")
    assert again.status_code == 400 and "already submitted" in again.json()["assignment"][0]


@pytest.mark.parametrize(
    "raw,content_type",
    [
        (b'{"grades": {"area": "pip_E__2"}}', "application/json"),
        (b'{"grades": []}', "application/json"),
        (b'{"grades": "pip_E__2"}', "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b'{"grades": [', "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        ('{"grades": [{"area": "пип_E__2 ✋", "value": 1, "version": 0}]}'.encode(), "application/json"),
        (b"grades=1", "text/plain"),
        (json.dumps({"grades": [{"area": "pip_E__2", "value": 10**40, "version": 10**40}]}).encode(), "application/json"),
        (json.dumps({"grades": [{"area": "pip_E__2", "value": 1, "version": 0}] * 500}).encode(), "application/json"),
    ],
    ids=["object-not-list", "empty-list", "string", "top-level-list", "truncated", "not-utf8", "unicode-area", "wrong-content-type", "huge-numbers", "too-many-items"],
)
def test_malformed_bodies_get_4xx_never_500(world, reader_a, raw, content_type):
    response = reader_a.generic("PUT", reverse("api-grade-bulk-save", args=[world.a_own.pk]), raw, content_type=content_type)
    assert 400 <= response.status_code < 500, response.content[:300]
    assert not Grade.objects.exists()


def test_huge_body_is_refused_before_parsing(world, reader_a, settings):
    raw = b'{"grades": [' + b'{"area": "pip_E__2", "value": 1, "version": 0},' * 40_000 + b"]}"
    assert len(raw) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = reader_a.generic("PUT", reverse("api-grade-bulk-save", args=[world.a_own.pk]), raw, content_type="application/json")
    assert response.status_code in (400, 413)
    assert not Grade.objects.exists()


def test_unknown_ids_get_404(world, reader_a):
    assert save(reader_a, Assignment(pk=999_999), [{"area": "pip_E__2", "value": 1, "version": 0}]).status_code == 404
    assert reader_a.get(reverse("api-project-detail", args=[999_999])).status_code == 404
    assert reader_a.get(reverse("api-radiograph-detail", args=[999_999])).status_code == 404


def test_saving_the_stored_value_again_moves_the_version_so_an_older_save_on_that_version_is_refused(world, reader_a):
    # A page sends 3 on version 1 (still on its way), the reader goes back to 2 and that save of the
    # unchanged value lands first: the late 3 must be refused, not stored over the reader's 2.
    save(reader_a, world.a_own, [{"area": "mcp_E__3", "value": 2, "version": 0}])
    back = save(reader_a, world.a_own, [{"area": "mcp_E__3", "value": 2, "version": 1}])
    assert back.status_code == 200 and back.json()["grades"][0]["version"] == 2
    late = save(reader_a, world.a_own, [{"area": "mcp_E__3", "value": 3, "version": 1}])
    assert late.status_code == 409 and late.json()["conflicts"][0]["current_value"] == 2
    assert Grade.objects.get(assignment=world.a_own, area__code="mcp_E__3").value == 2
