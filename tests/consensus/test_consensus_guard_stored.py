"""The degeneracy guard on stored runs: a collapsing feet fit is stored unreliable with a fallback's labels."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from django.urls import reverse

from annotation.models import Membership
from annotation import services as annotation_services
from consensus import exports, services
from consensus.models import ConsensusRun
from scoring.readers import scenario_simulate

from ..conftest import make_radiograph, make_user
from .conftest import areas_of, submit_grades

pytestmark = pytest.mark.django_db


@pytest.fixture
def collapsing_feet(world):
    """The simulated 24-patient feet study (seed 26) on 48 foot films of alpha, three readers."""
    study = scenario_simulate("feet_small", seed=26)
    readers = [make_user(f"foot_reader_{i}") for i in range(3)]
    for reader in readers:
        annotation_services.membership_set(user=reader, project=world.alpha, role=Membership.Role.READER)
    codes = [a.code for a in areas_of(world.alpha, "foot", dimension="erosion")]
    assert len(codes) == 6
    films = []
    for i in range(48):
        film = make_radiograph(world.alpha, f"FOOT-{i // 2:03d}", laterality="LR"[i % 2])
        film.body_part = "foot"
        film.save(update_fields=["body_part"])
        films.append(film)
    for r, reader in enumerate(readers):
        mine = study.worker == r
        values = {int(t): int(g) for t, g in zip(study.task[mine], study.label[mine])}
        for f, film in enumerate(films):
            submit_grades(film, reader, {code: values[f * 6 + k] for k, code in enumerate(codes)})
    truth = {(film.pk, code): int(study.truth[f * 6 + k]) for f, film in enumerate(films) for k, code in enumerate(codes)}
    return world, truth


def _stored_accuracy(run, truth) -> float:
    rows = run.labels.values_list("radiograph_id", "area__code", "label")
    return float(np.mean([label == truth[(r, code)] for r, code, label in rows]))


def test_a_collapsing_dawid_skene_fit_is_stored_unreliable_with_the_ordinal_labels(collapsing_feet, client) -> None:
    world, truth = collapsing_feet
    run = services.consensus_compute(project=world.alpha, dimension="erosion", aggregator="DawidSkene", compare_with=())
    assert run.status == ConsensusRun.Status.OK, run.error
    assert run.unreliable is True
    assert run.unreliable_reason.startswith("Feet (0-10): The DawidSkene consensus looks degenerate:")
    assert "The labels come from OrdinalDawidSkene instead." in run.unreliable_reason
    (part,) = run.parts
    assert (part["labels_from"], part["unreliable"]) == ("OrdinalDawidSkene", True)
    # The stored labels are the fallback's: near the truth, where plain DS reached 0.44.
    assert _stored_accuracy(run, truth) > 0.65

    # The long export names the aggregator behind each label and the guard's verdict.
    rows = list(csv.DictReader(io.StringIO(exports.consensus_long_csv(project=world.alpha))))
    feet = [row for row in rows if row["side"].endswith("F")]
    assert len(feet) == 288 and {(row["aggregator"], row["unreliable"]) for row in feet} == {("OrdinalDawidSkene", "1")}

    # The agreement page says so in words.
    client.force_login(world.users["lead"])
    page = client.get(reverse("consensus-dashboard", args=[world.alpha.pk])).content.decode()
    assert "Consensus unreliable." in page and "looks degenerate" in page


def test_the_default_fit_of_the_same_study_passes_the_guard(collapsing_feet) -> None:
    world, truth = collapsing_feet
    run = services.consensus_compute(project=world.alpha, dimension="erosion", compare_with=())
    assert (run.aggregator, run.unreliable, run.unreliable_reason) == ("OrdinalDawidSkene", False, "")
    assert run.parts[0]["labels_from"] == "OrdinalDawidSkene" and run.parts[0]["unreliable"] is False
    assert _stored_accuracy(run, truth) > 0.65
    rows = list(csv.DictReader(io.StringIO(exports.consensus_long_csv(project=world.alpha))))
    assert {(row["aggregator"], row["unreliable"]) for row in rows} == {("OrdinalDawidSkene", "0")}
