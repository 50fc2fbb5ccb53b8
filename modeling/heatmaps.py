"""Explanation heatmaps of the serving version, as transparent PNGs the workspace lays over a film.

One map per version, radiograph, area and method (`modeling.ml.explain`), computed on first request
and kept in the media storage; the default method is the best measured one.
"""
from __future__ import annotations

import functools
import io

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from PIL import Image

from annotation.models import JointArea, Radiograph

from .models import ModelVersion, Prediction
from .samples import radiograph_pixels
from .selectors import model_version_checkpoint

# The overlay is stretched over the film by the browser; a quarter of the side is plenty for a
# smooth map and keeps the file small.
OVERLAY_SCALE = 0.25


@functools.lru_cache(maxsize=4)
def _model(version_pk: int, body_part: str = "hand"):
    # Kept per process: a reader flicks through joints, and every map needs the same network.
    from modeling.ml.body_parts import load_part_model

    return load_part_model(model_version_checkpoint(version=ModelVersion.objects.get(pk=version_pk)), body_part)


def _colour(cam: np.ndarray) -> np.ndarray:
    """Blue-to-red ramp with opacity growing with the map, transparent where it is zero."""
    red = np.clip(1.5 - np.abs(4 * cam - 3), 0, 1)
    green = np.clip(1.5 - np.abs(4 * cam - 2), 0, 1)
    blue = np.clip(1.5 - np.abs(4 * cam - 1), 0, 1)
    alpha = np.clip(cam * 1.2, 0, 0.75)
    return (np.stack([red, green, blue, alpha], axis=-1) * 255).astype(np.uint8)


def heatmaps_delete(*, radiograph_id: int) -> None:
    """Delete every version's cached maps of one radiograph (after the radiograph was deleted)."""
    # Folders are listed, not tested with exists(): an object store has no folder objects, and
    # lists nothing where the local disk raises.
    try:
        version_dirs = default_storage.listdir("heatmaps")[0]
    except FileNotFoundError:
        return
    for version_dir in version_dirs:
        folder = f"heatmaps/{version_dir}/{radiograph_id}"
        try:
            names = default_storage.listdir(folder)[1]
        except FileNotFoundError:
            continue
        for name in names:
            default_storage.delete(f"{folder}/{name}")


def heatmap_methods() -> list[dict]:
    """The methods a reader or lead may choose, the default (best measured) first."""
    from modeling.ml.explain import DEFAULT_METHOD, METHOD_LABELS, METHODS

    keys = [DEFAULT_METHOD, *(key for key in METHODS if key != DEFAULT_METHOD)]
    return [{"key": key, "label": _(METHOD_LABELS.get(key, key)), "default": key == DEFAULT_METHOD} for key in keys]


# The labels live in the torch-only package; listed here so they are translated.
_METHOD_LABELS_TRANSLATED = (
    gettext_noop("Grad-CAM (last layer, 4 x 4)"),
    gettext_noop("Grad-CAM (16 x 16 layer)"),
    gettext_noop("Grad-CAM++ (16 x 16 layer)"),
    gettext_noop("Occlusion sensitivity"),
    gettext_noop("Integrated gradients"),
)


def heatmap_png(*, version: ModelVersion, radiograph: Radiograph, area: JointArea, method: str | None = None) -> bytes:
    """The map of one area by one method, computed once per version and cached in the media storage."""
    from modeling.ml.explain import DEFAULT_METHOD, explain

    method = method or DEFAULT_METHOD
    path = f"heatmaps/v{version.pk}/{radiograph.pk}/{area.code}.{method}.png"
    if default_storage.exists(path):
        with default_storage.open(path, "rb") as handle:
            return handle.read()
    model = _model(version.pk, radiograph.body_part)
    prediction = Prediction.objects.filter(radiograph=radiograph, model_version=version).first()
    # The crop must be the one the grades were computed from: the stored landmarks of that inference.
    landmarks = {name: (point["x"], point["y"]) for name, point in (prediction.landmarks if prediction else {}).items()}
    cam = explain(model, radiograph_pixels(radiograph), radiograph.laterality, area.joint.name, area.dimension,
                  method=method, landmarks=landmarks or None)
    height, width = cam.shape
    small = Image.fromarray((cam * 255).astype(np.uint8)).resize(
        (max(1, int(width * OVERLAY_SCALE)), max(1, int(height * OVERLAY_SCALE))), Image.BILINEAR
    )
    buffer = io.BytesIO()
    Image.fromarray(_colour(np.asarray(small) / 255.0), mode="RGBA").save(buffer, format="PNG")
    default_storage.save(path, ContentFile(buffer.getvalue()))
    return buffer.getvalue()
