"""The consensus against a simulated sparse study with known truth, loaded through the real import path."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene
from django.core.management import call_command

from annotation.models import Assignment, Grade, GradeChange, Project
from consensus import studies
from scoring.readers import confusion_mad
from consensus.models import ConsensusRun
from modeling.management.commands.validate_consensus import simulated_study, validation_slug

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    # Sparse: five readers, three per film, so no reader reads everything.
    return simulated_study(seed=3, radiographs=40, readers=5, per_radiograph=3)


def test_the_simulated_design_is_sparse_and_balanced(study) -> None:
    per_reader = np.bincount([read.reader for read in study.reads], minlength=5)
    per_film = np.bincount([read.film for read in study.reads])
    assert per_film.tolist() == [3] * 40
    assert per_reader.sum() == 120 and per_reader.max() - per_reader.min() <= 1


def test_dawid_skene_beats_majority_vote_against_the_known_truth(schemes) -> None:
    # 80 films, two thirds of the command's default: with 40 the two are within noise of each other.
    larger = simulated_study(seed=3, radiographs=80, readers=5, per_radiograph=3)
    figures = {row.dimension: row for row in studies.consensus_validate(study=larger, slug="validation-test")}
    for row in figures.values():
        assert row.accuracy["DawidSkene"] > row.accuracy["MajorityVote"]
        true = dict(enumerate(larger.confusion[row.dimension]))
        k = larger.confusion[row.dimension].shape[1]
        knowing_nothing = confusion_mad({r: np.full((k, k), 1.0 / k) for r in true}, true)
        # Rows of grades too rare to estimate are stored uniform, so the error is not near 0.
        assert row.confusion_mad < 0.1 < knowing_nothing
    assert figures["erosion"].n_tasks == 80 * 16 and figures["erosion"].n_labels == 80 * 16 * 3
    assert figures["jsn"].n_tasks == 80 * 15


def test_the_study_goes_through_saved_and_submitted_grades_with_history(schemes, study) -> None:
    studies.consensus_validate(study=study, slug="validation-test")
    project = Project.objects.get(slug="validation-test")
    assert Assignment.objects.filter(radiograph__project=project, status=Assignment.Status.SUBMITTED).count() == 120
    grades = Grade.objects.filter(assignment__radiograph__project=project)
    assert grades.count() == 120 * 31
    assert GradeChange.objects.filter(grade__in=grades, old_value=None, version=1).count() == 120 * 31
    assert project.consensus_settings.auto_recompute is False


def test_the_stored_labels_equal_crowdkit_dawid_skene_at_a_fixed_number_of_iterations(schemes, study) -> None:
    fixed = {"max_iter": 15, "tol": None, "tol_posterior": None}
    figures = studies.consensus_validate(study=study, slug="validation-test", params=fixed)
    for row in figures:
        run = row.run
        assert run.aggregator == "DawidSkene" and run.iterations == 15 and run.converged is False
        grades = Grade.objects.filter(
            assignment__radiograph__project=run.project, area__dimension=row.dimension, area__body_part="hand"
        ).values_list("assignment__radiograph_id", "area_id", "assignment__reader_id", "value")
        frame = pd.DataFrame(
            [(f"{r}/{a}", str(reader), v) for r, a, reader, v in grades], columns=["task", "worker", "label"]
        )
        # tol=-inf: crowd-kit stops when the loss rises by less than tol, which then never happens.
        theirs = DawidSkene(n_iter=15, tol=-np.inf).fit_predict_proba(frame)
        stored = {f"{r}/{a}": (label, p) for r, a, label, p in run.labels.values_list("radiograph_id", "area_id", "label", "posterior")}
        assert set(stored) == set(theirs.index)
        reference = theirs.reindex(columns=range(len(next(iter(stored.values()))[1]))).fillna(0.0)
        ours = np.array([stored[task][1] for task in reference.index])
        np.testing.assert_allclose(ours, reference.to_numpy(), rtol=0, atol=1e-6)
        assert [stored[task][0] for task in reference.index] == reference.to_numpy().argmax(axis=1).tolist()


def test_the_command_rebuilds_the_seed_project_and_reports_both_aggregators(schemes) -> None:
    outputs = []
    for _ in range(2):
        out = io.StringIO()
        call_command("validate_consensus", seed=5, radiographs=12, foot_radiographs=8, readers=3, per_radiograph=2, stdout=out)
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1]  # the same seed gives the same study and figures
    assert Project.objects.filter(slug=validation_slug(5)).count() == 1
    project = Project.objects.get(slug=validation_slug(5))
    assert project.radiographs.count() == 12
    # Majority vote first, then Dawid-Skene, per dimension: the latest run is Dawid-Skene's.
    assert list(ConsensusRun.objects.filter(project=project).order_by("dimension", "version").values_list("aggregator", flat=True)) == [
        "MajorityVote", "DawidSkene", "MajorityVote", "DawidSkene"
    ]
    lines = outputs[0].splitlines()
    assert lines[0].startswith(f"Project {validation_slug(5)} (rebuilt): 12 hand films, 3 readers, 2 per film, 24 submitted readings")
    assert lines[1] == f"Project {validation_slug(5)}-feet (rebuilt): 8 foot films, 16 submitted readings"
    erosion = lines[3].split()
    assert erosion[:4] == ["erosion", "hand", "192", "384"]
    assert 0.0 < float(erosion[4]) <= 1.0 and 0.0 < float(erosion[5]) <= 1.0
    # Feet apart: their own project and rows, 8 films x 6 areas on the foot scales.
    feet = Project.objects.get(slug=f"{validation_slug(5)}-feet")
    assert set(feet.radiographs.values_list("body_part", flat=True)) == {"foot"} and feet.radiographs.count() == 8
    foot_erosion = next(line.split() for line in lines if line.startswith("erosion") and " foot " in line)
    assert foot_erosion[:4] == ["erosion", "foot", "48", "96"]
    assert 0.0 < float(foot_erosion[4]) <= 1.0 and 0.0 < float(foot_erosion[5]) <= 1.0
