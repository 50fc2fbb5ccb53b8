"""Suggestion analytics for leads, on hand-built rows: acceptance, edit distance, time, automation bias.

Personas: `analyst_1` and `analyst_2` read with suggestions served to them; `analyst_3` and
`analyst_4` read the same radiograph without (before a model served it); leads see the figures on
the model page (tests/modeling/test_model_dashboard.py).
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation import services as annotation_services
from annotation.models import Assignment, Grade, JointArea, Membership, ServedSuggestion
from consensus.models import AdjudicatedLabel, ConsensusLabel, ConsensusRun
from modeling import selectors
from modeling.models import ModelVersion, Suggestion

from ..conftest import make_radiograph, make_user

CODES = ["pip_E__2", "pip_E__3", "pip_E__4", "pip_E__5", "mcp_E__1"]
SUGGESTED = {"pip_E__2": 1, "pip_E__3": 0, "pip_E__4": 2, "pip_E__5": 0}


@pytest.fixture
def rows(schemes):
    """Radiograph `seen` is read by four readers; only analysts 1 and 2 were served suggestions.

    Served erosion labels: pip_E__2=1, pip_E__3=0, pip_E__4=2, pip_E__5=0. mcp_E__1's suggestion
    exists but was served to nobody. Grades (analysts 1, 2, 3, 4):
        pip_E__2: 1 1 1 1   (suggestion right for everyone)
        pip_E__3: 2 0 2 2   (wrong: the others of 1 say 2, of 2 say 2)
        pip_E__4: 2 1 0 0   (wrong: the others of 1 say 0, of 2 say 0)
        pip_E__5: 0 0 3 3   (wrong: the others of both say 3; both kept the 0; gold says 3)
    `solo` is read by analyst 1 alone with a served suggestion; `blind` by analysts 1 and 2 without.
    """
    project = annotation_services.project_create(name="Analytics", slug="analytics", readers_per_radiograph=4, suggestions="assisted")
    readers = [make_user(f"analyst_{n}") for n in (1, 2, 3, 4)]
    for reader in readers:
        annotation_services.membership_set(user=reader, project=project, role=Membership.Role.READER)
    areas = {a.code: a for a in JointArea.objects.filter(scheme=project.scheme, body_part="hand", code__in=CODES)}
    seen, blind, solo = make_radiograph(project, "AN-1"), make_radiograph(project, "AN-2"), make_radiograph(project, "AN-3")
    version = ModelVersion.objects.create(project=project, number=1, status=ModelVersion.Status.ACTIVE)
    for code, label in SUGGESTED.items():
        Suggestion.objects.create(radiograph=seen, model_version=version, area=areas[code], label=label,
                                  distribution=[1.0 if g == label else 0.0 for g in range(6)])
    submitted = timezone.now() + timedelta(seconds=5)

    def read(radiograph, reader, grades: dict[str, tuple[int, str]], seconds: int, served: dict[str, int] | None = None) -> None:
        (assignment,) = annotation_services.assignments_create(radiograph=radiograph, readers=[reader])
        for code, label in (served or {}).items():
            ServedSuggestion.objects.create(assignment=assignment, area=areas[code], label=label, model_version="v1", served_at=timezone.now())
        Grade.objects.bulk_create(Grade(assignment=assignment, area=areas[c], value=v, source=s) for c, (v, s) in grades.items())
        Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.SUBMITTED, submitted_at=submitted, seconds_spent=seconds)

    A, E, M = Grade.Source.ACCEPTED, Grade.Source.EDITED, Grade.Source.MANUAL
    # Analyst 1 accepts everything but pip_E__3, which they move from 0 to 2.
    read(seen, readers[0], {"pip_E__2": (1, A), "pip_E__3": (2, E), "pip_E__4": (2, A), "pip_E__5": (0, A), "mcp_E__1": (0, M)}, 120, SUGGESTED)
    # Analyst 2 edits pip_E__4 by one; pip_E__5 was typed before the suggestion arrived (manual).
    read(seen, readers[1], {"pip_E__2": (1, A), "pip_E__3": (0, A), "pip_E__4": (1, E), "pip_E__5": (0, M), "mcp_E__1": (1, M)}, 80, SUGGESTED)
    read(seen, readers[2], {"pip_E__2": (1, M), "pip_E__3": (2, M), "pip_E__4": (0, M), "pip_E__5": (3, M)}, 200)
    read(seen, readers[3], {"pip_E__2": (1, M), "pip_E__3": (2, M), "pip_E__4": (0, M), "pip_E__5": (3, M)}, 0)  # no time recorded
    read(solo, readers[0], {"pip_E__2": (2, A)}, 0, {"pip_E__2": 2})
    read(blind, readers[0], {"pip_E__2": (0, M)}, 300)
    read(blind, readers[1], {"pip_E__2": (0, M)}, 0)
    Suggestion.objects.create(radiograph=seen, model_version=version, area=areas["mcp_E__1"], label=3, distribution=[0, 0, 0, 1, 0, 0])
    AdjudicatedLabel.objects.create(radiograph=seen, area=areas["pip_E__5"], grade=3)

    # A consensus fused from all readers (including the ones judged) plays no part any more.
    run = ConsensusRun.objects.create(project=project, dimension="erosion", aggregator="DawidSkene", version=1)
    for code in SUGGESTED:
        ConsensusLabel.objects.create(run=run, radiograph=seen, area=areas[code], label=SUGGESTED[code],
                                      posterior=[1.0 if g == SUGGESTED[code] else 0.0 for g in range(6)])
    return project, version


@pytest.mark.django_db
def test_acceptance_counts_only_suggestions_served_to_that_reader_in_that_read(rows):
    project, _ = rows
    report = selectors.suggestion_analytics(project=project)
    # Analysts 1 and 2 on 4 areas of `seen` plus analyst 1 on `solo`; analysts 3 and 4 read `seen`
    # while its suggestions existed but were never served them, and mcp_E__1 was served to nobody.
    assert report.graded_areas_with_suggestion == 9
    assert (report.accepted, report.edited, report.manual) == (6, 2, 1)
    assert (report.acceptance_rate, report.edit_rate, report.manual_rate) == (6 / 9, 2 / 9, 1 / 9)


@pytest.mark.django_db
def test_edit_distance_is_how_far_edited_grades_moved_from_the_suggestion(rows):
    report = selectors.suggestion_analytics(project=rows[0])
    assert report.mean_edit_distance == pytest.approx(1.5)  # 0 -> 2 and 2 -> 1
    assert report.edit_distances == {1: 1, 2: 1}


@pytest.mark.django_db
def test_reading_time_is_split_by_whether_suggestions_were_served_in_the_read(rows):
    report = selectors.suggestion_analytics(project=rows[0])
    assert (report.seconds_with_suggestions.reads, report.seconds_with_suggestions.mean) == (2, 100.0)
    # Analyst 3's 200 s on `seen` had no suggestion served; unrecorded (0 s) reads are left out.
    assert (report.seconds_without_suggestions.reads, report.seconds_without_suggestions.median) == (2, 250.0)


@pytest.mark.django_db
def test_readers_who_keep_wrong_suggestions_show_against_the_other_readers_and_gold(rows):
    report = selectors.suggestion_analytics(project=rows[0])
    others = report.against_other_readers
    # Wrong: pip_E__3, __4, __5 for both analysts (6); kept by 1 on __4 and __5, by 2 on __3 and __5.
    assert (others.compared, others.wrong, others.wrong_kept, others.right, others.right_kept) == (8, 6, 4, 2, 2)
    assert others.wrong_kept_rate == pytest.approx(4 / 6) and others.right_kept_rate == 1.0
    # The solo read has nobody to compare with: left out, not counted as agreeing with itself.
    assert (report.single_reader_areas, report.tied_other_readers) == (1, 0)
    gold = report.against_gold
    assert (gold.compared, gold.wrong, gold.wrong_kept, gold.right) == (2, 2, 2, 0) and gold.wrong_kept_rate == 1.0


@pytest.mark.django_db
def test_analytics_of_another_version_count_nothing_and_rates_are_none(rows):
    project, version = rows
    other = ModelVersion.objects.create(project=project, number=2, status=ModelVersion.Status.READY)
    report = selectors.suggestion_analytics(project=project, model_version=other)
    assert report.graded_areas_with_suggestion == 0 and report.acceptance_rate is None
    assert report.against_other_readers.wrong_kept_rate is None and report.mean_edit_distance is None
    assert selectors.suggestion_analytics(project=project, model_version=version).accepted == 6


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
