"""The adjudication queue and viewer: only real disputes, the image with every opinion beside it,
and a final grade that opens the next dispute.

Personas (tests/conftest.py): lead leads alpha; reader_a and reader_b read it (blinded) and never
see the viewer; staff see everything.
"""
from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from consensus import exports, selectors, services
from consensus.models import AdjudicatedLabel, ConsensusLabel, ConsensusRun

from .conftest import areas_of, submit_grades


@pytest.fixture
def disputes(world):
    """r1 read by reader_a and reader_b: they disagree on pip_E__2 (0 vs 4) and mcp_J__3 (1 vs 2)
    and agree elsewhere; r2 finished by reader_b alone, with high grades nobody else has given yet."""
    zeros = {a.code: 0 for a in areas_of(world.alpha)}
    submit_grades(world.r1, world.users["reader_a"], zeros | {"pip_E__2": 0, "mcp_J__3": 1})
    submit_grades(world.r1, world.users["reader_b"], zeros | {"pip_E__2": 4, "mcp_J__3": 2})
    submit_grades(world.r2, world.users["reader_b"], zeros | {"pip_E__3": 3, "mcp_E__2": 5, "mcp_J__2": 2})
    for dimension in ("erosion", "jsn"):
        services.consensus_compute(project=world.alpha, dimension=dimension, aggregator="OneCoinDawidSkene", compare_with=())
    return world


def test_the_queue_lists_only_areas_two_submitted_readers_disagree_on(disputes):
    queue = selectors.disputed_list(project=disputes.alpha)
    assert sorted((item.radiograph_id, item.area_code) for item in queue) == sorted(
        [(disputes.r1.pk, "pip_E__2"), (disputes.r1.pk, "mcp_J__3")]
    )
    # r2's areas have one reader each: no dispute yet, however the fit rates them.
    assert ConsensusLabel.objects.filter(radiograph=disputes.r2, n_readers=1).count() == 31
    assert [item.uncertainty for item in queue] == sorted((item.uncertainty for item in queue), reverse=True)


def test_an_unreliable_run_also_queues_flat_areas_that_two_readers_agree_on(disputes):
    run = ConsensusRun.objects.get(project=disputes.alpha, dimension="erosion", version=1)
    agreed = ConsensusLabel.objects.filter(run=run, radiograph=disputes.r1, area__code="mcp_E__4")
    agreed.update(uncertainty=0.9)
    ConsensusLabel.objects.filter(run=run, radiograph=disputes.r2, area__code="mcp_E__4").update(uncertainty=0.95)
    assert "mcp_E__4" not in [item.area_code for item in selectors.disputed_list(project=disputes.alpha)]

    ConsensusRun.objects.filter(pk=run.pk).update(unreliable=True)

    queued = [(item.radiograph_id, item.area_code) for item in selectors.disputed_list(project=disputes.alpha)]
    assert (disputes.r1.pk, "mcp_E__4") in queued and (disputes.r2.pk, "mcp_E__4") not in queued


def _viewer(world, area_code: str, radiograph=None) -> str:
    return reverse("consensus-adjudication-viewer", args=[world.alpha.pk, (radiograph or world.r1).pk, area_code])


@pytest.mark.parametrize("persona, status", [("lead", 200), ("staff", 200), ("reader_a", 403), ("other_lead", 404)])
def test_only_leads_and_staff_open_the_viewer(client, disputes, persona, status):
    client.force_login(disputes.users[persona])
    assert client.get(_viewer(disputes, "pip_E__2")).status_code == status


def test_the_viewer_shows_each_readers_grade_the_consensus_and_the_final_grade_keys(client, disputes):
    client.force_login(disputes.users["lead"])
    response = client.get(_viewer(disputes, "pip_E__2"))
    page = response.content.decode()
    detail = response.context["detail"]
    assert detail.reader_grades == [("reader_a", 0), ("reader_b", 4)]
    assert detail.run_version == 1 and len(detail.posterior) == 6 and detail.label is not None
    assert '<th scope="row">reader_a</th><td class="adj-grade">0</td>' in page
    assert '<th scope="row">reader_b</th><td class="adj-grade">4</td>' in page
    assert [f'data-grade="{g}"' in page for g in range(7)] == [True] * 6 + [False]
    assert reverse("api-radiograph-rendition", args=[disputes.r1.pk, "display"]) in page
    assert "No model serves suggestions in this project." in page
    assert client.get(_viewer(disputes, "no_such_area")).status_code == 404


def test_setting_a_final_grade_in_the_viewer_opens_the_next_dispute_and_says_so(client, disputes):
    client.force_login(disputes.users["lead"])
    queue = selectors.disputed_list(project=disputes.alpha)
    first, second = queue
    response = client.post(
        reverse("consensus-adjudicate", args=[disputes.alpha.pk]),
        {"radiograph": first.radiograph_id, "area": first.area_code, "grade": "2", "note": "", "then": "viewer", "position": "0"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == _viewer(disputes, second.area_code)
    assert f"Final grade 2 saved for {first.area_code} of ALPHA-PSEUDO-001 RH" in response.content.decode()
    assert list(AdjudicatedLabel.objects.values_list("area__code", "grade")) == [(first.area_code, 2)]

    last = client.post(
        reverse("consensus-adjudicate", args=[disputes.alpha.pk]),
        {"radiograph": second.radiograph_id, "area": second.area_code, "grade": "1", "then": "viewer", "position": "0"},
        follow=True,
    )
    assert last.redirect_chain[-1][0] == reverse("consensus-dashboard", args=[disputes.alpha.pk]) + "#queue"
    assert "No dispute left in the queue." in last.content.decode()


def test_a_refused_grade_returns_to_the_same_area_with_the_reason(client, disputes):
    client.force_login(disputes.users["lead"])
    response = client.post(
        reverse("consensus-adjudicate", args=[disputes.alpha.pk]),
        {"radiograph": disputes.r1.pk, "area": "pip_E__2", "grade": "9", "then": "viewer", "position": "0"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == _viewer(disputes, "pip_E__2")
    assert "Final grade not saved. grade:" in response.content.decode() and not AdjudicatedLabel.objects.exists()


def test_the_consensus_csv_names_the_run_by_the_version_the_pages_show(disputes):
    # A later run of the erosion dimension: its id and its version differ.
    services.consensus_compute(project=disputes.alpha, dimension="erosion", aggregator="MajorityVote", compare_with=())
    run = ConsensusRun.objects.filter(project=disputes.alpha, dimension="erosion").order_by("-version").first()
    assert run.version == 2 and run.pk != run.version
    rows = list(csv.DictReader(io.StringIO(exports.consensus_long_csv(project=disputes.alpha))))
    assert {row["run"] for row in rows if row["dimension"] == "erosion"} == {"2"}
    assert {row["run"] for row in rows if row["dimension"] == "jsn"} == {"1"}


def test_the_viewer_labels_its_markers_as_the_readers_workspace_does(client, disputes):
    from annotation.models import Joint, Landmark

    joints = {joint.name: joint for joint in Joint.objects.filter(scheme=disputes.alpha.scheme, name__in=["pip2", "ip1"])}
    Landmark.objects.bulk_create(
        Landmark(radiograph=disputes.r1, joint=joint, x=10.0, y=20.0, source=Landmark.Source.IMPORT) for joint in joints.values()
    )
    client.force_login(disputes.users["lead"])
    config = client.get(_viewer(disputes, "pip_E__2")).context["config"]
    assert config["short_labels"] == {"pip2": "PIP2", "ip1": "IP"}
