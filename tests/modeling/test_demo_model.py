"""The demo's committed pre-trained model: it installs as the first serving version with honest
held-out figures, its suggestions are not one grade everywhere, the demo still retrains, and the
command that built it is the one written in the Makefile."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch

from annotation.models import Radiograph
from modeling.demo import demo_seed
from modeling.demo_model import DEMO_MODEL_PATH, demo_model_build, demo_model_describe, demo_model_install
from modeling.ml.body_parts import checkpoint_body_parts, part_checkpoint
from modeling.ml.phantoms import PhantomConfig
from modeling.ml.train import load_checkpoint
from modeling.models import ModelVersion, Suggestion, TrainingRun
from modeling.selectors import model_version_summaries

ROOT = Path(__file__).resolve().parents[2]
SMALL = PhantomConfig(width=256, height=320)


def test_committed_checkpoint_is_small_and_carries_held_out_figures_with_their_counts():
    assert DEMO_MODEL_PATH.stat().st_size < 10_000_000
    checkpoint = load_checkpoint(DEMO_MODEL_PATH)
    test = checkpoint["metrics"]["test"]
    # Held out: patients of the build project that training never saw, scored against their consensus.
    assert test["hands"] >= 10
    assert not set(checkpoint["split"]["test"]) & set(checkpoint["split"]["train"])
    assert len(checkpoint["split"]["test"]) * 2 == test["hands"]
    for dimension, areas_per_hand in (("erosion", 16), ("jsn", 15)):
        assert test[dimension]["n"] == areas_per_hand * test["hands"]
        assert -1.0 <= test[dimension]["qwk"] <= 1.0
    assert checkpoint["metrics"]["test_truth"]["hands"] == test["hands"]


def test_committed_checkpoint_has_a_foot_model_with_held_out_figures_against_consensus_and_truth():
    checkpoint = load_checkpoint(DEMO_MODEL_PATH)
    assert checkpoint_body_parts(checkpoint) == ["hand", "foot"]
    foot = part_checkpoint(checkpoint, "foot")
    assert not set(foot["split"]["test"]) & set(foot["split"]["train"])
    assert all(re.fullmatch(r"demo-model/DEMO-\d{3}", p) for p in foot["split"]["test"])
    figures = checkpoint["metrics"]["body_parts"]["foot"]
    # Both feet of every held-out patient, six erosion and six JSN areas each, erosion on 0-10.
    for key in ("test", "test_truth"):
        assert figures[key]["hands"] == 2 * len(foot["split"]["test"]) >= 10
        for dimension in ("erosion", "jsn"):
            assert figures[key][dimension]["n"] == 6 * figures[key]["hands"]
            assert -1.0 <= figures[key][dimension]["qwk"] <= 1.0
    assert checkpoint["metrics"]["body_parts"]["hand"]["test_truth"] == checkpoint["metrics"]["test_truth"]


def test_the_readme_states_the_committed_checkpoints_figures():
    # Rebuilding the checkpoint without updating the README's figures fails here.
    figures = demo_model_describe(load_checkpoint(DEMO_MODEL_PATH))
    readme = (ROOT / "README.md").read_text()
    for line in figures.splitlines():
        assert line in readme, line


def test_the_makefile_rebuilds_the_checkpoint_with_the_command_recorded_in_it():
    recorded = load_checkpoint(DEMO_MODEL_PATH)["provenance"]["command"]
    makefile = (ROOT / "Makefile").read_text()
    line = re.search(r"manage\.py (build_demo_model [^\n]*)", makefile).group(1)
    assert shlex.split(recorded) == ["manage.py", *shlex.split(line)]


@pytest.mark.django_db
def test_seed_demo_serves_the_pretrained_version_first_and_still_queues_retraining(schemes):
    report = demo_seed(slug="demo-small", patients=1, read_radiographs=1, seed=3, config=SMALL, train_model=True)
    versions = list(ModelVersion.objects.filter(project=report.project).order_by("number"))
    assert [(v.number, v.status) for v in versions] == [(1, "active"), (2, "training")]
    assert versions[0].metrics["pretrained"]["labels"].startswith("consensus")
    retrain = TrainingRun.objects.get(model_version=versions[1])
    assert versions[1].auto_promote and retrain.status == TrainingRun.Status.QUEUED
    summary = model_version_summaries(project=report.project)[-1]
    # The model page's figures come with their counts.
    assert summary.held_out_hands == versions[0].metrics["test"]["hands"] > 0
    assert summary.erosion_areas == versions[0].metrics["test"]["erosion"]["n"] > 0
    assert summary.erosion_kappa == pytest.approx(versions[0].metrics["test"]["erosion"]["qwk"])


@pytest.mark.django_db
def test_pretrained_suggestions_are_nearer_the_truth_than_one_grade_everywhere(schemes, django_capture_on_commit_callbacks):
    report = demo_seed(slug="demo-full", patients=1, read_radiographs=0, seed=3)
    with django_capture_on_commit_callbacks(execute=True):
        version = demo_model_install(project=report.project)
    assert version is not None and version.status == ModelVersion.Status.ACTIVE
    near = {"erosion": [0, 0], "jsn": [0, 0]}  # within one grade of the truth: model, constant guess
    for radiograph in Radiograph.objects.filter(project=report.project):
        truth = radiograph.metadata["phantom_truth"]
        rows = Suggestion.objects.filter(radiograph=radiograph, model_version=version).select_related("area__joint")
        assert rows.count() == 31
        for row in rows:
            true_grade = truth[row.area.dimension][row.area.joint.name]
            near[row.area.dimension][0] += abs(row.label - true_grade) <= 1
            # The first demo model suggested erosion 5 and JSN 3 on every joint.
            near[row.area.dimension][1] += abs({"erosion": 5, "jsn": 3}[row.area.dimension] - true_grade) <= 1
    assert near["erosion"][0] > near["erosion"][1] and near["jsn"][0] > near["jsn"][1], near


@pytest.mark.django_db
def test_an_unreadable_or_foreign_checkpoint_is_skipped(schemes, tmp_path):
    report = demo_seed(slug="demo-small", patients=1, read_radiographs=0, seed=3, config=SMALL)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    assert demo_model_install(project=report.project, path=garbage) is None
    assert demo_model_install(project=report.project, path=tmp_path / "missing.pt") is None
    foreign = load_checkpoint(DEMO_MODEL_PATH)
    foreign["scheme"] = {**foreign["scheme"], "areas": foreign["scheme"]["areas"][:-1]}
    torch.save(foreign, tmp_path / "foreign.pt")
    assert demo_model_install(project=report.project, path=tmp_path / "foreign.pt") is None
    assert not ModelVersion.objects.filter(project=report.project).exists()


@pytest.mark.django_db
def test_build_trains_on_the_consensus_and_names_held_out_patients_by_build_project(schemes, tmp_path):
    out = tmp_path / "model.pt"
    summary = demo_model_build(out=out, slug="build", patients=6, seed=2, epochs=1, time_budget_s=5, num_threads=1,
                               foot_time_budget_s=3, log=lambda _: None, phantoms=SMALL)
    checkpoint = load_checkpoint(out)
    version = ModelVersion.objects.get(project__slug="build")
    assert version.label_source == ModelVersion.LabelSource.CONSENSUS and len(version.consensus_run_ids) == 2
    # Every film of the build is read: both hands and both feet of each patient train their part.
    assert Radiograph.objects.filter(project=version.project, status=Radiograph.Status.READ).count() == 24
    assert checkpoint_body_parts(checkpoint) == ["hand", "foot"]
    # The feet train within their own budget, the hands within theirs.
    assert [part_checkpoint(checkpoint, p)["config"]["time_budget_s"] for p in ("hand", "foot")] == [5, 3]
    for part, films in (("hand", "hands"), ("foot", "feet")):
        part_ckpt = part_checkpoint(checkpoint, part)
        ids = [p for split in part_ckpt["split"].values() for p in split]
        assert ids and all(re.fullmatch(r"build/DEMO-\d{3}", p) for p in ids)
        truth = checkpoint["metrics"]["body_parts"][part]["test_truth"]
        assert truth["hands"] == 2 * len(part_ckpt["split"].get("test", []))
        assert f"{films}: {part_ckpt['metrics']['hands']}" in summary
    assert checkpoint["provenance"]["command"] == (
        "manage.py build_demo_model --project build --patients 6 --seed 2 --epochs 1 --time-budget 5"
        " --foot-time-budget 3 --threads 1"
    )
    with pytest.raises(ValueError, match="exists already"):
        demo_model_build(out=out, slug="build", patients=6, seed=2, epochs=1, time_budget_s=5, num_threads=1, log=lambda _: None)


@pytest.mark.django_db
def test_background_seed_installs_the_pretrained_version_first_and_predicts_every_film_once(schemes, django_capture_on_commit_callbacks):
    from modeling.demo import DemoPlan, demo_seed_rest
    from modeling.models import Prediction
    from modeling.services import suggestions_predict

    with django_capture_on_commit_callbacks(execute=False):
        project = demo_seed(slug="demo-bg", train_model=True, background=True, patients=3, read_radiographs=2, seed=3, config=SMALL).project
    # Before the demo serves: films, no model (torch stays out of the first seconds).
    assert not ModelVersion.objects.filter(project=project).exists()

    plan = DemoPlan(patients=3, read_radiographs=2, read_feet=1, seed=3, feet=False, train_model=True, config=SMALL)
    # The worker's task; the inference it queues never runs here, as if the films were all added
    # after it: the task's own last pass gives them their suggestions.
    with django_capture_on_commit_callbacks(execute=False):
        demo_seed_rest(project_id=project.pk, plan=plan, model_first=True)
    version = ModelVersion.objects.get(project=project, number=1)
    assert version.status == ModelVersion.Status.ACTIVE and "pretrained" in version.metrics
    unread = Radiograph.objects.filter(project=project).exclude(status=Radiograph.Status.READ)
    assert unread.count() == 4
    for radiograph in unread:
        assert Suggestion.objects.filter(radiograph=radiograph, model_version=version).count() == 31
    assert not Suggestion.objects.filter(radiograph__status=Radiograph.Status.READ).exists()

    # Only films without this version's prediction are predicted again; the others stay as they were.
    gone = unread.first()
    Prediction.objects.filter(radiograph=gone).delete()
    Suggestion.objects.filter(radiograph=gone).delete()
    kept = dict(Prediction.objects.filter(model_version=version).values_list("radiograph_id", "pk"))
    assert suggestions_predict(model_version_id=version.pk, only_missing=True) == 1
    assert {r: p for r, p in Prediction.objects.filter(model_version=version).values_list("radiograph_id", "pk") if r != gone.pk} == kept
    # One retraining on the readers' consensus, however often the rest of the seed runs.
    with django_capture_on_commit_callbacks(execute=False):
        assert demo_seed_rest(project_id=project.pk, plan=plan, model_first=True) == 0
    assert [(v.number, v.status) for v in ModelVersion.objects.filter(project=project).order_by("number")] == [
        (1, "active"), (2, "training"),
    ]


@pytest.mark.django_db
def test_background_seed_gives_unread_foot_films_0_to_10_erosion_suggestions_from_the_pretrained_version(
    schemes, django_capture_on_commit_callbacks
):
    from modeling.demo import DemoPlan, demo_seed_rest

    args = dict(patients=2, read_radiographs=2, read_feet=1, seed=3, config=SMALL)
    with django_capture_on_commit_callbacks(execute=False):
        project = demo_seed(slug="demo-feet-bg", train_model=True, background=True, feet=True, **args).project
    with django_capture_on_commit_callbacks(execute=False):
        demo_seed_rest(project_id=project.pk, plan=DemoPlan(feet=True, train_model=True, **args), model_first=True)
    version = ModelVersion.objects.get(project=project, number=1)
    assert version.status == ModelVersion.Status.ACTIVE and "pretrained" in version.metrics
    feet = Radiograph.objects.filter(project=project, body_part="foot").exclude(status=Radiograph.Status.READ)
    assert feet.count() == 3
    for radiograph in feet:
        rows = list(Suggestion.objects.filter(radiograph=radiograph, model_version=version).select_related("area"))
        # The foot model's areas, not the hand model's: six erosion (0-10) and six JSN (0-4).
        assert len(rows) == 12 and {row.area.body_part for row in rows} == {"foot"}
        erosion = [row for row in rows if row.area.dimension == "erosion"]
        assert len(erosion) == 6 and all(row.area.max_grade == 10 and 0 <= row.label <= 10 for row in erosion)
    assert not Suggestion.objects.filter(radiograph__status=Radiograph.Status.READ).exists()
