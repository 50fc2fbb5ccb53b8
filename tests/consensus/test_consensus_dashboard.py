"""The lead dashboard and the consensus API: who may see them, and what a lead can do there.

Personas (tests/conftest.py): lead leads alpha; reader_a and reader_b read alpha (blinded) and
must never see consensus or agreement; other_lead and outsider cannot see alpha at all; staff see
everything.
"""
from __future__ import annotations

import pytest
from django.urls import reverse

from consensus import services
from consensus.models import AdjudicatedLabel, ConsensusRun

from ..conftest import client_for
from .conftest import areas_of, submit_grades

FIGURES = ["Weighted accuracy", "Krippendorff", "<svg", "Adjudication queue"]


@pytest.fixture
def alpha_consensus(world):
    """r1 read by reader_a and reader_b, who disagree on PIP 2 erosion (1 vs 3); consensus computed."""
    areas = areas_of(world.alpha)
    a_values = {a.code: 0 for a in areas} | {"pip_E__2": 1, "mcp_E__3": 2}
    b_values = {a.code: 0 for a in areas} | {"pip_E__2": 3, "mcp_E__3": 2}
    submit_grades(world.r1, world.users["reader_a"], a_values)
    submit_grades(world.r1, world.users["reader_b"], b_values)
    for dimension in ("erosion", "jsn"):
        # OneCoinDawidSkene: a reader model (profiles to draw) that fits in a few iterations.
        services.consensus_compute(project=world.alpha, dimension=dimension, aggregator="OneCoinDawidSkene", compare_with=("MajorityVote",))
    return world


def page_client(client, user):
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize(
    "persona, status",
    [("lead", 200), ("staff", 200), ("reader_a", 403), ("reader_b", 403), ("other_lead", 404), ("outsider", 404)],
)
def test_only_leads_and_staff_see_the_agreement_page(client, alpha_consensus, persona, status):
    response = page_client(client, alpha_consensus.users[persona]).get(reverse("consensus-dashboard", args=[alpha_consensus.alpha.pk]))
    assert response.status_code == status
    body = response.content.decode()
    if status == 200:
        assert all(marker in body for marker in FIGURES)
        assert "Research use only" in body
    else:
        # A blinded reader learns nothing: not a figure, not a reader's name, not a grade.
        assert not any(marker in body for marker in FIGURES)
        assert "reader_b" not in body and "pip_E__2" not in body


def test_anonymous_visitors_are_sent_to_log_in(client, alpha_consensus):
    response = client.get(reverse("consensus-dashboard", args=[alpha_consensus.alpha.pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_page_draws_each_readers_counts_in_a_heatmap_and_queues_the_disputed_joint(client, alpha_consensus):
    body = page_client(client, alpha_consensus.users["lead"]).get(reverse("consensus-dashboard", args=[alpha_consensus.alpha.pk])).content.decode()
    # 15 of reader_a's 16 erosion grades are 0 and agree with the consensus; that count is in a cell.
    assert body.count('role="img" aria-label="reader_a"') == 2  # erosion and JSN heatmaps
    assert ">14</text>" in body or ">15</text>" in body
    # The split PIP 2 erosion vote is first in the queue, with both readers' grades.
    queue = body[body.index('id="queue"'):]
    assert queue.index("pip_E__2") < queue.index("Final grade for") + 400
    assert 'title="reader_a">1<' in queue and 'title="reader_b">3<' in queue
    assert "No model version serves suggestions in this project yet." in body


def test_the_group_filter_restricts_the_tables_to_that_joint_group(client, alpha_consensus):
    lead = page_client(client, alpha_consensus.users["lead"])
    body = lead.get(reverse("consensus-dashboard", args=[alpha_consensus.alpha.pk]), {"group": "pip"}).content.decode()
    assert "on 4 joint areas" in body  # erosion PIP 2-5 of one radiograph
    assert "on 16 joint areas" not in body


API_READS = [
    "api-consensus-summary", "api-consensus-agreement", "api-consensus-disputed", "api-consensus-comparison",
    "api-consensus-runs", "api-consensus-adjudications",
]


@pytest.mark.parametrize(
    "persona, status",
    [(None, 401), ("reader_a", 403), ("other_lead", 404), ("outsider", 404), ("lead", 200), ("staff", 200)],
)
def test_consensus_api_answers_leads_and_staff_only(alpha_consensus, persona, status):
    client = client_for(alpha_consensus.users[persona] if persona else None)
    for name in API_READS:
        response = client.get(reverse(name, args=[alpha_consensus.alpha.pk]))
        assert (name, response.status_code) == (name, status)
        if status != 200:
            assert set(response.json()) == {"detail"}  # nothing but the refusal
    labels = client.get(reverse("api-consensus-labels", args=[alpha_consensus.alpha.pk]), {"dimension": "erosion"})
    assert labels.status_code == status


def test_agreement_api_gives_the_figures_of_the_chosen_scale_and_group(alpha_consensus):
    lead = client_for(alpha_consensus.users["lead"])
    body = lead.get(reverse("api-consensus-agreement", args=[alpha_consensus.alpha.pk]), {"scale": "erosion-hand", "group": "pip"}).json()
    assert (body["scale"]["key"], body["group"], body["n_units"]) == ("erosion-hand", "pip", 4)
    rows = {row["reader"]: row for row in body["readers"]}
    assert set(rows) == {"reader_a", "reader_b"}
    assert len(rows["reader_a"]["confusion"]) == 6
    (pair,) = body["pairs"]
    assert (pair["reader_a"], pair["reader_b"], pair["n_shared"]) == ("reader_a", "reader_b", 4)
    assert pair["confusion"][1][3] == 1  # reader_a's 1 against reader_b's 3 on PIP 2
    bad = lead.get(reverse("api-consensus-agreement", args=[alpha_consensus.alpha.pk]), {"scale": "erosion-knee"})
    assert bad.status_code == 400 and "erosion-hand" in bad.json()["scale"][0]


def test_labels_api_returns_the_latest_run_with_full_grid_posteriors(alpha_consensus):
    body = client_for(alpha_consensus.users["lead"]).get(
        reverse("api-consensus-labels", args=[alpha_consensus.alpha.pk]), {"dimension": "jsn"}
    ).json()
    assert body["run"]["dimension"] == "jsn" and len(body["labels"]) == 15
    assert {len(label["posterior"]) for label in body["labels"]} == {5}
    assert {label["side"] for label in body["labels"]} == {"RH"}


def test_a_lead_sets_a_final_grade_through_the_api_and_it_is_gold_next_run(alpha_consensus, django_capture_on_commit_callbacks):
    lead = client_for(alpha_consensus.users["lead"])
    url = reverse("api-consensus-adjudications", args=[alpha_consensus.alpha.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = lead.post(url, {"radiograph": alpha_consensus.r1.pk, "area": "pip_E__2", "grade": 2, "note": "cortical break"}, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["grade"], response.json()["lead"], response.json()["side"]) == (2, "lead", "RH")
    # The adjudication requested a recompute, which ran in-process: PIP 2 is now gold 2.
    latest = ConsensusRun.objects.filter(project=alpha_consensus.alpha, dimension="erosion").order_by("-version").first()
    assert latest.version == 2
    label = latest.labels.get(area__code="pip_E__2")
    assert (label.label, label.is_gold) == (2, True)


@pytest.mark.parametrize(
    "payload, field, message",
    [
        ({"area": "pip_E__2", "grade": 6}, "grade", "graded 0-5; got 6"),
        ({"area": "pip_J__1", "grade": 1}, "area", "not a joint area"),
        ({"area": "pip_J__2", "grade": 5}, "grade", "graded 0-4; got 5"),
    ],
)
def test_an_impossible_final_grade_is_refused_naming_the_field(alpha_consensus, payload, field, message):
    response = client_for(alpha_consensus.users["lead"]).post(
        reverse("api-consensus-adjudications", args=[alpha_consensus.alpha.pk]), {"radiograph": alpha_consensus.r1.pk, **payload}, format="json"
    )
    assert response.status_code == 400 and message in str(response.json()[field])
    assert not AdjudicatedLabel.objects.exists()


def test_a_radiograph_of_another_project_cannot_be_adjudicated(alpha_consensus):
    response = client_for(alpha_consensus.users["lead"]).post(
        reverse("api-consensus-adjudications", args=[alpha_consensus.alpha.pk]), {"radiograph": alpha_consensus.b1.pk, "area": "pip_E__2", "grade": 1}, format="json"
    )
    assert response.status_code == 400 and "not in this project" in response.json()["radiograph"][0]


def test_a_reader_cannot_adjudicate_or_recompute(client, alpha_consensus):
    reader = page_client(client, alpha_consensus.users["reader_a"])
    project = alpha_consensus.alpha.pk
    assert reader.post(reverse("consensus-adjudicate", args=[project]), {"radiograph": alpha_consensus.r1.pk, "area": "pip_E__2", "grade": 1}).status_code == 403
    assert reader.post(reverse("consensus-recompute", args=[project])).status_code == 403
    assert client_for(alpha_consensus.users["reader_a"]).post(reverse("api-consensus-recompute", args=[project])).status_code == 403
    assert not AdjudicatedLabel.objects.exists()


def test_the_queue_form_stores_the_final_grade_and_says_so(client, alpha_consensus):
    lead = page_client(client, alpha_consensus.users["lead"])
    response = lead.post(
        reverse("consensus-adjudicate", args=[alpha_consensus.alpha.pk]),
        {"radiograph": alpha_consensus.r1.pk, "area": "pip_E__2", "grade": "3", "note": ""},
        follow=True,
    )
    assert response.status_code == 200
    assert "Final grade 3 saved for pip_E__2 of ALPHA-PSEUDO-001 RH" in response.content.decode()
    assert list(AdjudicatedLabel.objects.values_list("area__code", "grade", "lead__username")) == [("pip_E__2", 3, "lead")]


def test_recompute_now_stores_new_runs_marked_as_from_the_dashboard(client, alpha_consensus, django_capture_on_commit_callbacks):
    lead = page_client(client, alpha_consensus.users["lead"])
    with django_capture_on_commit_callbacks(execute=True):
        response = lead.post(reverse("consensus-recompute", args=[alpha_consensus.alpha.pk]), {"aggregator": "MajorityVote"})
    assert response.status_code == 302
    latest = ConsensusRun.objects.filter(project=alpha_consensus.alpha).order_by("-id")[:2]
    assert sorted((run.dimension, run.version, run.aggregator, run.trigger, run.requested_by.username) for run in latest) == [
        ("erosion", 2, "MajorityVote", "dashboard", "lead"),
        ("jsn", 2, "MajorityVote", "dashboard", "lead"),
    ]


def test_home_page_links_leads_to_the_dashboard_and_readers_not(client, world):
    url = reverse("consensus-dashboard", args=[world.alpha.pk])
    assert url in page_client(client, world.users["lead"]).get(reverse("home")).content.decode()
    client.logout()
    assert url not in page_client(client, world.users["reader_a"]).get(reverse("home")).content.decode()


def test_admin_lists_consensus_and_recomputes_a_project_on_request(client, alpha_consensus, django_capture_on_commit_callbacks):
    client.force_login(alpha_consensus.users["staff"])
    for name in ["consensusproject", "consensusrun", "consensuslabel", "readerestimate", "adjudicatedlabel"]:
        response = client.get(reverse(f"admin:consensus_{name}_changelist"))
        assert (name, response.status_code) == (name, 200)
    assert "v1 OneCoinDawidSkene (ok)" in client.get(reverse("admin:consensus_consensusproject_changelist")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:consensus_consensusproject_changelist"),
            {"action": "recompute_consensus", "_selected_action": [alpha_consensus.alpha.pk]},
        )
    assert response.status_code == 302
    assert sorted(ConsensusRun.objects.filter(trigger="admin").values_list("dimension", "version", "aggregator")) == [
        ("erosion", 2, "OrdinalDawidSkene"),
        ("jsn", 2, "OrdinalDawidSkene"),
    ]
