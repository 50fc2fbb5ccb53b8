"""Grad-CAM heatmaps of the serving version, as transparent PNGs the workspace lays over a film."""
from __future__ import annotations

import functools
import io

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from annotation.models import JointArea, Radiograph

from .models import ModelVersion, Prediction
from .samples import radiograph_pixels
from .selectors import model_version_checkpoint

# The overlay is stretched over the film by the browser; a quarter of the side is plenty for a
# smooth map and keeps the file small.
OVERLAY_SCALE = 0.25


@functools.lru_cache(maxsize=2)
def _model(version_pk: int):
    # Kept per process: a reader flicks through joints, and every map needs the same network.
    from modeling.ml.inference import load_model

    return load_model(model_version_checkpoint(version=ModelVersion.objects.get(pk=version_pk)))


def _colour(cam: np.ndarray) -> np.ndarray:
    """Blue-to-red ramp with opacity growing with the map, transparent where it is zero."""
    red = np.clip(1.5 - np.abs(4 * cam - 3), 0, 1)
    green = np.clip(1.5 - np.abs(4 * cam - 2), 0, 1)
    blue = np.clip(1.5 - np.abs(4 * cam - 1), 0, 1)
    alpha = np.clip(cam * 1.2, 0, 0.75)
    return (np.stack([red, green, blue, alpha], axis=-1) * 255).astype(np.uint8)


def heatmaps_delete(*, radiograph_id: int) -> None:
    """Delete every version's cached maps of one radiograph (after the radiograph was deleted)."""
    if not default_storage.exists("heatmaps"):
        return
    for version_dir in default_storage.listdir("heatmaps")[0]:
        folder = f"heatmaps/{version_dir}/{radiograph_id}"
        if default_storage.exists(folder):
            for name in default_storage.listdir(folder)[1]:
                default_storage.delete(f"{folder}/{name}")


def heatmap_png(*, version: ModelVersion, radiograph: Radiograph, area: JointArea) -> bytes:
    """The map for one area, computed once per version and cached in the media storage."""
    from modeling.ml.heatmaps import gradcam

    path = f"heatmaps/v{version.pk}/{radiograph.pk}/{area.code}.png"
    if default_storage.exists(path):
        with default_storage.open(path, "rb") as handle:
            return handle.read()
    model = _model(version.pk)
    prediction = Prediction.objects.filter(radiograph=radiograph, model_version=version).first()
    # The crop must be the one the grades were computed from: the stored landmarks of that inference.
    landmarks = {name: (point["x"], point["y"]) for name, point in (prediction.landmarks if prediction else {}).items()}
    cam = gradcam(model, radiograph_pixels(radiograph), radiograph.laterality, area.joint.name, area.dimension,
                  landmarks=landmarks or None)
    height, width = cam.shape
    small = Image.fromarray((cam * 255).astype(np.uint8)).resize(
        (max(1, int(width * OVERLAY_SCALE)), max(1, int(height * OVERLAY_SCALE))), Image.BILINEAR
    )
    buffer = io.BytesIO()
    Image.fromarray(_colour(np.asarray(small) / 255.0), mode="RGBA").save(buffer, format="PNG")
    default_storage.save(path, ContentFile(buffer.getvalue()))
    return buffer.getvalue()
