"""A suggestion provider for tests: a stand-in model that knows the phantom's drawn grades.

The workspace reads suggestions through settings.SUGGESTION_PROVIDER; the modeling app will name its
own provider there. This one answers from the ground truth stored with each phantom radiograph, so a
test can open a fully pre-filled hand without a trained model.
"""
from __future__ import annotations

from annotation.models import JointArea

MODEL_VERSION = "phantom-truth (test stand-in)"


def distribution_around(label: int, max_grade: int) -> list[float]:
    weights = [1.0 if grade == label else 0.25 if abs(grade - label) == 1 else 0.05 for grade in range(max_grade + 1)]
    total = sum(weights)
    return [round(weight / total, 4) for weight in weights]


def from_phantom_truth(*, radiograph):
    truth = (radiograph.metadata or {}).get("phantom_truth")
    if not truth:
        return None
    suggestions = {}
    for area in JointArea.objects.filter(scheme_id=radiograph.project.scheme_id, body_part=radiograph.body_part).select_related("joint"):
        label = truth.get(area.dimension, {}).get(area.joint.name)
        if label is not None:
            suggestions[area.code] = {"label": int(label), "distribution": distribution_around(int(label), area.max_grade)}
    return {"model_version": MODEL_VERSION, "suggestions": suggestions}


HEATMAP_PREFIX = "/test-heatmaps/"


def from_phantom_truth_with_heatmaps(*, radiograph):
    """The same suggestions, each with a heatmap address a browser test answers itself."""
    payload = from_phantom_truth(radiograph=radiograph)
    if payload:
        for code, suggestion in payload["suggestions"].items():
            suggestion["heatmap_url"] = f"{HEATMAP_PREFIX}{radiograph.pk}/{code}.png"
    return payload
