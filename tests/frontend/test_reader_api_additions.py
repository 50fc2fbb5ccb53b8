"""The API the reader workspace adds: suggestions, landmark corrections, display renditions, visit totals."""
from __future__ import annotations

import io

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from annotation import selectors, services
from annotation.models import Assignment, JointArea, Landmark, Membership, Project
from annotation.services import GradeInput
from tests.conftest import client_for, make_radiograph, make_user

OFFERED = {
    "model_version": "test-model-1",
    "suggestions": {
        "pip_E__2": {"label": 2, "distribution": [0.05, 0.15, 0.6, 0.1, 0.05, 0.05], "heatmap_url": "/static/x.png"},
        "pip_J__2": {"label": 7, "distribution": [0.2, 0.2, 0.2, 0.2, 0.2]},  # above JSN's 0-4: dropped
        "not_an_area": {"label": 1, "distribution": [0.5, 0.5]},  # not in the scheme: dropped
        "mcp_J__3": {"label": 1, "distribution": [0.5, 0.5]},  # too short a distribution: dropped
    },
}


def offered_suggestions(*, radiograph):
    """A stand-in for the modeling app's provider."""
    return OFFERED


def no_model(*, radiograph):
    return None


@pytest.fixture
def assisted(world, settings):
    world.alpha.suggestions = Project.Suggestions.ASSISTED
    world.alpha.save()
    settings.SUGGESTION_PROVIDER = f"{__name__}.offered_suggestions"
    return world


def test_suggestions_endpoint_passes_only_entries_that_fit_the_scheme(assisted):
    url = reverse("api-assignment-suggestions", args=[assisted.a_own.pk])
    body = client_for(assisted.users["reader_a"]).get(url).json()
    assert body["model_version"] == "test-model-1"
    assert body["suggestions"] == {
        "pip_E__2": {"label": 2, "distribution": [0.05, 0.15, 0.6, 0.1, 0.05, 0.05], "heatmap_url": "/static/x.png"}
    }


def test_suggestions_endpoint_gives_none_when_the_project_has_suggestions_off(world, settings):
    settings.SUGGESTION_PROVIDER = f"{__name__}.offered_suggestions"
    url = reverse("api-assignment-suggestions", args=[world.a_own.pk])
    assert client_for(world.users["reader_a"]).get(url).json() == {"model_version": None, "suggestions": {}}


def test_suggestions_endpoint_gives_none_without_an_active_model(assisted, settings):
    settings.SUGGESTION_PROVIDER = f"{__name__}.no_model"
    url = reverse("api-assignment-suggestions", args=[assisted.a_own.pk])
    assert client_for(assisted.users["reader_a"]).get(url).json() == {"model_version": None, "suggestions": {}}
    del settings.SUGGESTION_PROVIDER
    assert client_for(assisted.users["reader_a"]).get(url).json() == {"model_version": None, "suggestions": {}}


def test_suggestions_of_another_readers_assignment_are_not_found(assisted):
    url = reverse("api-assignment-suggestions", args=[assisted.b_on_r1.pk])
    assert client_for(assisted.users["reader_a"]).get(url).status_code == 404


def _import_landmark(radiograph, joint_name="mcp2", x=30.0, y=40.0) -> Landmark:
    joint = radiograph.project.scheme.joints.get(body_part="hand", name=joint_name)
    return Landmark.objects.create(radiograph=radiograph, joint=joint, x=x, y=y, source=Landmark.Source.IMPORT)


def test_moving_a_marker_saves_a_reader_landmark_and_keeps_the_imported_one(world):
    imported = _import_landmark(world.r1)
    url = reverse("api-assignment-landmarks", args=[world.a_own.pk])
    response = client_for(world.users["reader_a"]).put(url, {"landmarks": [{"joint": "mcp2", "x": 33.5, "y": 41}]}, format="json")
    assert response.status_code == 200
    assert response.json()["landmarks"] == [{"joint": "mcp2", "x": 33.5, "y": 41.0, "source": "reader", "confidence": None}]
    correction = Landmark.objects.get(radiograph=world.r1, source=Landmark.Source.READER)
    assert (correction.created_by, correction.x, correction.y) == (world.users["reader_a"], 33.5, 41.0)
    imported.refresh_from_db()
    assert (imported.x, imported.y) == (30.0, 40.0)
    # A second move updates the same correction; the other reader still sees the imported point.
    client_for(world.users["reader_a"]).put(url, {"landmarks": [{"joint": "mcp2", "x": 35, "y": 42}]}, format="json")
    assert Landmark.objects.filter(radiograph=world.r1, source=Landmark.Source.READER).count() == 1
    seen_by_b = selectors.landmark_list_for(radiograph=world.r1, user=world.users["reader_b"])
    assert [(item.source, item.x) for item in seen_by_b] == [("import", 30.0)]


def test_a_marker_outside_the_image_or_on_an_unknown_joint_is_refused_by_name(world):
    url = reverse("api-assignment-landmarks", args=[world.a_own.pk])
    client = client_for(world.users["reader_a"])
    outside = client.put(url, {"landmarks": [{"joint": "mcp2", "x": 500, "y": 10}]}, format="json")
    assert outside.status_code == 400 and "outside the 64 x 80 image" in str(outside.json())
    unknown = client.put(url, {"landmarks": [{"joint": "elbow", "x": 5, "y": 10}]}, format="json")
    assert unknown.status_code == 400 and "'elbow' is not a joint" in str(unknown.json())
    assert not Landmark.objects.filter(source=Landmark.Source.READER).exists()


def test_markers_of_another_readers_or_a_submitted_assignment_cannot_be_moved(world):
    client = client_for(world.users["reader_a"])
    body = {"landmarks": [{"joint": "mcp2", "x": 5, "y": 10}]}
    assert client.put(reverse("api-assignment-landmarks", args=[world.b_on_r2.pk]), body, format="json").status_code == 404
    Assignment.objects.filter(pk=world.a_own.pk).update(status=Assignment.Status.SUBMITTED)
    refused = client.put(reverse("api-assignment-landmarks", args=[world.a_own.pk]), body, format="json")
    assert refused.status_code == 400 and "already submitted" in str(refused.json())


def _gradient_png(width: int, height: int) -> bytes:
    # 12-bit content in a 16-bit file, as many detectors write it.
    ramp = np.linspace(200, 4000, width, dtype=np.float64)[None, :].repeat(height, axis=0).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(ramp).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def test_renditions_are_8_bit_display_sized_first_and_full_sized_on_request(world, settings):
    added = services.radiograph_add(
        project=world.alpha, pseudonym="BIG-001", laterality="R", image_bytes=_gradient_png(1700, 2100),
        image_suffix="png", width=1700, height=2100,
    )
    services.assignments_create(radiograph=added.radiograph, readers=[world.users["reader_a"]])
    client = client_for(world.users["reader_a"])

    display = client.get(reverse("api-radiograph-rendition", args=[added.radiograph.pk, "display"]))
    assert display.status_code == 200 and display["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(b"".join(display.streaming_content)))
    assert (image.mode, image.size) == ("L", (1295, 1600))
    pixels = np.asarray(image)
    # The 12-bit ramp is stretched over the 8-bit range instead of looking black.
    assert pixels[:, :20].mean() < 10 and pixels[:, -20:].mean() > 245

    full = client.get(reverse("api-radiograph-rendition", args=[added.radiograph.pk, "full"]))
    full_image = Image.open(io.BytesIO(b"".join(full.streaming_content)))
    assert (full["Content-Type"], full_image.mode, full_image.size) == ("image/png", "L", (1700, 2100))

    cached = sorted(p.name for p in (settings.MEDIA_ROOT / "renditions" / str(world.alpha.pk)).iterdir())
    assert cached == [f"{added.radiograph.checksum}-display.jpg", f"{added.radiograph.checksum}-full.png"]


def test_renditions_follow_the_image_permissions(world):
    url = reverse("api-radiograph-rendition", args=[world.r2.pk, "display"])
    assert client_for(world.users["reader_a"]).get(url).status_code == 404  # r2 is reader_b's only
    assert client_for(world.users["outsider"]).get(url).status_code == 404
    assert client_for(world.users["reader_b"]).get(url).status_code == 200
    assert client_for(world.users["reader_b"]).get(reverse("api-radiograph-rendition", args=[world.r2.pk, "huge"])).status_code == 404


def test_visit_total_counts_only_my_own_grades_on_the_other_hand(world):
    left = make_radiograph(world.alpha, "ALPHA-PSEUDO-001", laterality="L")  # same patient and visit as r1
    (mine_left,) = services.assignments_create(radiograph=left, readers=[world.users["reader_a"]])
    (theirs_left,) = services.assignments_create(radiograph=left, readers=[world.users["reader_b"]])
    areas = {area.code: area for area in JointArea.objects.filter(scheme=world.alpha.scheme, body_part="hand")}
    services.grade_bulk_save(
        assignment=mine_left, user=world.users["reader_a"],
        items=[GradeInput(area=areas["pip_E__2"], value=3, version=0), GradeInput(area=areas["pip_J__2"], value=2, version=0)],
    )
    services.grade_bulk_save(
        assignment=theirs_left, user=world.users["reader_b"], items=[GradeInput(area=areas["pip_E__3"], value=5, version=0)]
    )
    totals = selectors.visit_totals_for_reader(user=world.users["reader_a"], assignment=world.a_own)
    assert totals == [
        {"assignment": mine_left.pk, "body_part": "hand", "laterality": "L", "status": "in_progress",
         "erosion": 3, "jsn": 2, "graded": 2, "areas": 31}
    ]


def test_an_unassigned_member_gets_no_visit_totals(world):
    newcomer = make_user("newcomer")
    services.membership_set(user=newcomer, project=world.alpha, role=Membership.Role.READER)
    assert selectors.visit_totals_for_reader(user=newcomer, assignment=world.a_own) == []
