"""Rows to samples: the project's scheme, pixels, landmarks and training targets in the shape
`modeling.ml` trains and evaluates on (reads only).

Targets are the consensus posteriors once a consensus exists, readers' vote shares before that.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np
from PIL import Image

from annotation.models import Assignment, Grade, Joint, JointArea, Landmark, Project, Radiograph

from .models import ModelVersion


class NothingToTrainOn(Exception):
    """The project has no radiograph with both landmarks and submitted grades."""


def scheme_for(project: Project, body_part: str = "hand") -> dict[str, Any]:
    """The project's scheme in the shape `modeling.ml` stores in its checkpoints."""
    from modeling.ml.data import scheme_from_entry

    joints = Joint.objects.filter(scheme=project.scheme, body_part=body_part).order_by("order")
    areas = JointArea.objects.filter(scheme=project.scheme, body_part=body_part).select_related("joint").order_by("dimension", "order")
    entry = {
        "key": project.scheme.key,
        "landmarks": [{"body_part": body_part, "name": joint.name} for joint in joints],
        "areas": [
            {"body_part": body_part, "landmark": a.joint.name, "dimension": a.dimension, "max_grade": a.max_grade, "code": a.code}
            for a in areas
        ],
    }
    return scheme_from_entry(entry, body_part)


def radiograph_pixels(radiograph: Radiograph) -> np.ndarray:
    with radiograph.image.open("rb") as handle:
        image = Image.open(handle)
        image.load()
    return np.asarray(image)


def _grade_vote_shares(project: Project) -> dict[int, dict[str, list[float]]]:
    """Soft targets from submitted grades: the share of readers who gave each grade."""
    counts: dict[int, dict[str, np.ndarray]] = defaultdict(dict)
    rows = Grade.objects.filter(
        assignment__radiograph__project=project, assignment__status=Assignment.Status.SUBMITTED
    ).values_list("assignment__radiograph_id", "area__code", "area__max_grade", "value")
    for radiograph_id, code, max_grade, value in rows:
        votes = counts[radiograph_id].setdefault(code, np.zeros(max_grade + 1))
        votes[value] += 1
    return {rid: {code: (v / v.sum()).tolist() for code, v in areas.items()} for rid, areas in counts.items()}


def _consensus_posteriors(project: Project) -> tuple[dict[int, dict[str, list[float]]], list[int]]:
    """Soft targets from the latest consensus run of each dimension: its posteriors per area."""
    from consensus.selectors import consensus_labels_for_training, consensus_run_latest

    targets: dict[int, dict[str, list[float]]] = defaultdict(dict)
    run_ids = []
    codes = dict(JointArea.objects.filter(scheme=project.scheme).values_list("pk", "code"))
    for dimension in ("erosion", "jsn"):
        run = consensus_run_latest(project=project, dimension=dimension)
        if run is None:
            continue
        run_ids.append(run.pk)
        for (radiograph_id, area_id), (_, posterior) in consensus_labels_for_training(run=run).items():
            targets[radiograph_id][codes[area_id]] = posterior
    return dict(targets), run_ids


def _known_points(radiographs: Iterable[Radiograph]) -> dict[int, dict[str, tuple[float, float]]]:
    """Landmarks of known position per radiograph: imported points and readers' corrections, not
    the model's own."""
    points: dict[int, dict[str, tuple[float, float]]] = defaultdict(dict)
    for rid, name, x, y in Landmark.objects.filter(radiograph__in=radiographs).exclude(
        source=Landmark.Source.MODEL
    ).values_list("radiograph_id", "joint__name", "x", "y"):
        points[rid][name] = (x, y)
    return points


def training_samples(
    *, project: Project, labels: str = "consensus", body_parts: tuple[str, ...] = ("hand",)
) -> tuple[list[dict], str, list[int]]:
    """Samples for `modeling.ml.train.main`, the label source they were built from and its runs.

    With `labels="consensus"` the model learns the consensus (Dawid-Skene posteriors as soft
    targets) once it exists, and readers' vote shares before that; `labels="votes"` asks for the
    vote shares whatever consensus exists. Each sample says its "body_part"; `body_parts` picks
    which (hands alone by default, the shape `train.main` takes; `body_parts.train_parts` takes
    hands and feet together).
    """
    targets, run_ids = _consensus_posteriors(project) if labels == "consensus" else ({}, [])
    source = ModelVersion.LabelSource.CONSENSUS
    if not targets:
        targets, run_ids, source = _grade_vote_shares(project), [], ModelVersion.LabelSource.GRADES
    if not targets:
        raise NothingToTrainOn(f"project {project.slug} has no submitted grades yet")
    # Every hand with known landmarks teaches localisation; only graded ones teach grading.
    radiographs = Radiograph.objects.filter(project=project, body_part__in=body_parts).select_related("visit")
    human_points = _known_points(radiographs)
    samples = []
    for radiograph in radiographs:
        if len(human_points[radiograph.pk]) < 2:
            continue
        samples.append(
            {
                "image": radiograph_pixels(radiograph),
                "laterality": radiograph.laterality,
                "landmarks": human_points[radiograph.pk],
                "patient_id": str(radiograph.visit.patient_id),
                "targets": targets.get(radiograph.pk, {}),
                "body_part": radiograph.body_part,
            }
        )
    if not samples:
        raise NothingToTrainOn(f"project {project.slug} has no radiograph with landmarks and submitted grades")
    return samples, source, run_ids


def evaluation_samples(*, project: Project, radiographs: list[Radiograph]) -> list[dict]:
    """Samples for `modeling.ml.train.evaluate_hands`, with the targets training uses now: the
    consensus posteriors once they exist, readers' vote shares before that."""
    targets, _ = _consensus_posteriors(project)
    if not targets:
        targets = _grade_vote_shares(project)
    points = _known_points(radiographs)
    return [
        {
            "image": radiograph_pixels(radiograph),
            "laterality": radiograph.laterality,
            "landmarks": points[radiograph.pk],
            "patient_id": str(radiograph.visit.patient_id),
            "targets": targets[radiograph.pk],
        }
        for radiograph in radiographs
        if radiograph.pk in targets and len(points[radiograph.pk]) >= 2
    ]
