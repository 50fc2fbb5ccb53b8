"""Suggestion analytics for leads, on hand-built rows: acceptance, edit distance, time, automation bias.

Personas: `analyst_1` and `analyst_2` read one assisted project; its leads see the figures on the
model page (tests/modeling/test_model_dashboard.py).
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation import services as annotation_services
from annotation.models import Assignment, Grade, JointArea, Membership
from consensus.models import ConsensusLabel, ConsensusRun
from modeling import selectors
from modeling.models import ModelVersion, Suggestion

from ..conftest import make_radiograph, make_user

CODES = ["pip_E__2", "pip_E__3", "pip_E__4", "pip_E__5", "mcp_E__1"]


@pytest.fixture
def rows(schemes):
    """Radiograph `seen` had suggestions before its reads; `blind` never had any.

    Suggested erosion labels on `seen`: pip_E__2=1, pip_E__3=0, pip_E__4=2, pip_E__5=0.
    mcp_E__1's suggestion was made only after the reads were submitted, so nobody saw it.
    Consensus: pip_E__2=1 (suggestion right), pip_E__3=2, pip_E__4=0, pip_E__5=3 (suggestion wrong).
    """
    project = annotation_services.project_create(name="Analytics", slug="analytics", readers_per_radiograph=2, suggestions="assisted")
    readers = [make_user("analyst_1"), make_user("analyst_2")]
    for reader in readers:
        annotation_services.membership_set(user=reader, project=project, role=Membership.Role.READER)
    areas = {a.code: a for a in JointArea.objects.filter(scheme=project.scheme, body_part="hand", code__in=CODES)}
    seen, blind = make_radiograph(project, "AN-1"), make_radiograph(project, "AN-2")
    version = ModelVersion.objects.create(project=project, number=1, status=ModelVersion.Status.ACTIVE)
    for code, label in {"pip_E__2": 1, "pip_E__3": 0, "pip_E__4": 2, "pip_E__5": 0}.items():
        Suggestion.objects.create(radiograph=seen, model_version=version, area=areas[code], label=label,
                                  distribution=[1.0 if g == label else 0.0 for g in range(6)])
    submitted = timezone.now() + timedelta(seconds=5)

    def read(radiograph, reader, grades: dict[str, tuple[int, str]], seconds: int) -> None:
        (assignment,) = annotation_services.assignments_create(radiograph=radiograph, readers=[reader])
        Grade.objects.bulk_create(Grade(assignment=assignment, area=areas[c], value=v, source=s) for c, (v, s) in grades.items())
        Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.SUBMITTED, submitted_at=submitted, seconds_spent=seconds)

    A, E, M = Grade.Source.ACCEPTED, Grade.Source.EDITED, Grade.Source.MANUAL
    # Reader 1 accepts everything but pip_E__3, which they move from 0 to 2 (the consensus).
    read(seen, readers[0], {"pip_E__2": (1, A), "pip_E__3": (2, E), "pip_E__4": (2, A), "pip_E__5": (0, A), "mcp_E__1": (0, M)}, 120)
    # Reader 2 edits pip_E__4 by one, keeps the wrong 0 on pip_E__5 by typing it, accepts the rest.
    read(seen, readers[1], {"pip_E__2": (1, A), "pip_E__3": (0, A), "pip_E__4": (1, E), "pip_E__5": (0, M), "mcp_E__1": (1, M)}, 80)
    read(blind, readers[0], {"pip_E__2": (0, M)}, 300)
    read(blind, readers[1], {"pip_E__2": (0, M)}, 0)  # no time recorded
    Suggestion.objects.create(radiograph=seen, model_version=version, area=areas["mcp_E__1"], label=3, distribution=[0, 0, 0, 1, 0, 0])
    Suggestion.objects.filter(area=areas["mcp_E__1"]).update(created_at=submitted + timedelta(minutes=1))

    run = ConsensusRun.objects.create(project=project, dimension="erosion", aggregator="DawidSkene", version=1)
    for code, label in {"pip_E__2": 1, "pip_E__3": 2, "pip_E__4": 0, "pip_E__5": 3}.items():
        ConsensusLabel.objects.create(run=run, radiograph=seen, area=areas[code], label=label,
                                      posterior=[1.0 if g == label else 0.0 for g in range(6)])
    return project, version


@pytest.mark.django_db
def test_acceptance_counts_only_areas_whose_suggestion_was_seen(rows):
    project, _ = rows
    report = selectors.suggestion_analytics(project=project)
    # 2 readers x 4 areas with a suggestion seen; mcp_E__1 and the blind radiograph are left out.
    assert report.graded_areas_with_suggestion == 8
    assert (report.accepted, report.edited, report.manual) == (5, 2, 1)
    assert (report.acceptance_rate, report.edit_rate, report.manual_rate) == (5 / 8, 2 / 8, 1 / 8)


@pytest.mark.django_db
def test_edit_distance_is_how_far_edited_grades_moved_from_the_suggestion(rows):
    report = selectors.suggestion_analytics(project=rows[0])
    assert report.mean_edit_distance == pytest.approx(1.5)  # 0 -> 2 and 2 -> 1
    assert report.edit_distances == {1: 1, 2: 1}


@pytest.mark.django_db
def test_reading_time_is_split_by_whether_suggestions_existed(rows):
    report = selectors.suggestion_analytics(project=rows[0])
    assert (report.seconds_with_suggestions.reads, report.seconds_with_suggestions.mean) == (2, 100.0)
    # The unrecorded (0 s) read is left out.
    assert (report.seconds_without_suggestions.reads, report.seconds_without_suggestions.median) == (1, 300.0)


@pytest.mark.django_db
def test_automation_bias_is_how_often_a_wrong_suggestion_was_kept(rows):
    report = selectors.suggestion_analytics(project=rows[0])
    # Wrong suggestions: pip_E__3 (kept by reader 2), pip_E__4 (kept by reader 1), pip_E__5 (kept by both).
    assert (report.compared_with_consensus, report.wrong_suggestions) == (8, 6)
    assert report.wrong_suggestion_kept_rate == pytest.approx(4 / 6)
    assert report.right_suggestion_kept_rate == 1.0  # pip_E__2, both readers


@pytest.mark.django_db
def test_analytics_of_another_version_count_nothing_and_rates_are_none(rows):
    project, version = rows
    other = ModelVersion.objects.create(project=project, number=2, status=ModelVersion.Status.READY)
    report = selectors.suggestion_analytics(project=project, model_version=other)
    assert report.graded_areas_with_suggestion == 0 and report.acceptance_rate is None
    assert report.wrong_suggestion_kept_rate is None and report.mean_edit_distance is None
    assert selectors.suggestion_analytics(project=project, model_version=version).accepted == 5


@pytest.mark.django_db
def test_the_policy_page_links_the_analytics_and_reranks_on_request(rows, client):
    from modeling.models import LearningPolicy

    project, _ = rows
    policy = LearningPolicy.objects.create(project=project)
    client.force_login(make_user("policy_staff", is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:modeling_learningpolicy_change", args=[policy.pk])).content.decode()
    assert f'href="/projects/{project.pk}/model/"' in page and f"/api/projects/{project.pk}/model/analytics/" in page
    changelist = reverse("admin:modeling_learningpolicy_changelist")
    response = client.post(changelist, {"action": "rerank_now", "_selected_action": [policy.pk]}, follow=True)
    assert "re-ranked by rare_boost (version 1)" in response.content.decode()
    policy.refresh_from_db()
    assert policy.last_ranked_at is not None
