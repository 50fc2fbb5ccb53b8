"""A young project trains at any size: 2, 10 and 16 read radiographs, with the default split.

Patient ids (database keys) differ between databases, so which patients are held out differs
from run to run; each test asserts what must hold whichever way the split falls.
"""
from __future__ import annotations

import pytest

from modeling import services
from modeling.demo import demo_seed
from modeling.models import ModelVersion
from modeling.training_progress import held_out_figures

from .test_training_services import SMALL, TINY

# TINY without its "no split" override: the default validation and test fractions.
SPLIT = {k: v for k, v in TINY.items() if k not in ("val_fraction", "test_fraction")}


def _seed(read: int, patients: int, capture):
    with capture(execute=True):
        return demo_seed(slug=f"young-{read}", patients=patients, read_radiographs=read, seed=5, config=SMALL).project


def _train(project, **options) -> ModelVersion:
    run = services.model_version_request(project=project, epochs=1, config=SPLIT, enqueue=False, **options)
    version = services.model_version_train(run_id=run.pk)
    run.refresh_from_db()
    assert version.status in (ModelVersion.Status.READY, ModelVersion.Status.ACTIVE), run.error
    return version


@pytest.mark.django_db
@pytest.mark.parametrize("read, patients", [(10, 10), (16, 10)])
def test_a_young_project_trains_and_every_held_out_figure_has_graded_areas(schemes, django_capture_on_commit_callbacks, read, patients):
    project = _seed(read, patients, django_capture_on_commit_callbacks)
    version = _train(project)

    metrics, figures = version.metrics, held_out_figures(version=version)
    assert metrics["hands"]["train"] + metrics["hands"]["val"] + metrics["hands"]["test"] == 2 * patients
    assert figures["held_out"] == metrics["held_out"] == bool(metrics["hands"]["val"] or metrics["hands"]["test"])
    for part in figures["parts"]:
        # A part is only held out when someone graded it: its figures stand on graded areas.
        assert part["erosion"]["n"] > 0 and part["jsn"]["n"] > 0 and part["hands"] == metrics["hands"][part["part"]]
    if not figures["held_out"]:
        assert figures["note"].startswith("No held-out figures yet")


@pytest.mark.django_db
def test_two_read_radiographs_train_without_held_out_figures_and_promotion_waits_for_a_person(schemes, django_capture_on_commit_callbacks):
    project = _seed(2, 3, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        first = _train(project, auto_promote=True)
    figures = held_out_figures(version=first)
    assert first.metrics["hands"] == {"train": 6, "val": 0, "test": 0}
    assert (figures["held_out"], figures["parts"]) == (False, [])
    assert "No held-out figures yet" in figures["note"]
    # Nothing served before: the first version serves (nothing to regress from).
    assert first.status == ModelVersion.Status.ACTIVE and first.metrics["promotion"]["reason"] == "no version was serving"

    with django_capture_on_commit_callbacks(execute=True):
        second = _train(project, auto_promote=True)
    # No held-out radiographs to compare the two on: the no-regression rule leaves it to a lead.
    assert second.status == ModelVersion.Status.READY
    assert second.metrics["promotion"]["promoted"] is False
    assert "waiting for a lead" in second.metrics["promotion"]["reason"]
    assert ModelVersion.objects.get(pk=first.pk).status == ModelVersion.Status.ACTIVE
