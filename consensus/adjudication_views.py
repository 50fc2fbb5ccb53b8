"""The adjudication viewer: a lead looks at the radiograph of one disputed area, with every
reader's grade, the consensus posterior and the model's suggestion beside it, sets the final
grade by key and moves to the next or previous dispute.

Read-only on the image (no landmark moves); leads and staff only, like the agreement dashboard.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.module_loading import import_string
from django.views.decorators.http import require_http_methods

from annotation.joint_labels import short_label
from annotation.models import Radiograph
from annotation.selectors import landmark_list_for
from annotation.serializers import LandmarkSerializer

from . import selectors

# How far ahead the viewer looks for the next and previous dispute.
QUEUE_WINDOW = 200


def dispute_queue(*, project) -> list[selectors.DisputedItem]:
    return selectors.disputed_list(project=project, limit=QUEUE_WINDOW)


def viewer_url(*, project_id: int, radiograph_id: int, area_code: str) -> str:
    return reverse("consensus-adjudication-viewer", args=[project_id, radiograph_id, area_code])


def _model_suggestion(radiograph: Radiograph, area_code: str) -> tuple[str | None, dict | None]:
    """The serving version's suggestion for the area, from the provider the reader workspace uses
    (settings.SUGGESTION_PROVIDER), so this app never imports the model."""
    provider = getattr(settings, "SUGGESTION_PROVIDER", None)
    offered = import_string(provider)(radiograph=radiograph) if provider else None
    if not offered or not offered.get("model_version"):
        return None, None
    entry = (offered.get("suggestions") or {}).get(area_code)
    return offered["model_version"], entry if isinstance(entry, dict) else None


def _bars(distribution: list[float]) -> list[dict]:
    return [{"grade": grade, "p": p, "percent": round(100 * p)} for grade, p in enumerate(distribution)]


@login_required
@require_http_methods(["GET", "HEAD"])
def adjudication_viewer(request: HttpRequest, project_id: int, radiograph_id: int, area_code: str) -> HttpResponse:
    project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
    detail = selectors.dispute_detail(project=project, radiograph_id=radiograph_id, area_code=area_code)
    if detail is None:
        raise Http404("No such radiograph or area in this project.")
    queue = dispute_queue(project=project)
    index = next(
        (i for i, item in enumerate(queue) if item.radiograph_id == radiograph_id and item.area_code == area_code), None
    )
    if index is None:
        previous, following = None, queue[0] if queue else None
    else:
        previous = queue[index - 1] if index > 0 else None
        following = queue[index + 1] if index + 1 < len(queue) else None
    link = lambda item: viewer_url(project_id=project.pk, radiograph_id=item.radiograph_id, area_code=item.area_code) if item else None  # noqa: E731
    radiograph, area = detail.radiograph, detail.area
    model_version, suggestion = _model_suggestion(radiograph, area.code)
    landmarks = LandmarkSerializer(landmark_list_for(radiograph=radiograph, user=request.user), many=True).data
    config = {
        "width": radiograph.width,
        "height": radiograph.height,
        "joint": area.joint.name,
        "landmarks": landmarks,
        "short_labels": {point["joint"]: short_label(point["joint"]) for point in landmarks},
        "max_grade": area.max_grade,
        "urls": {
            "display_image": reverse("api-radiograph-rendition", args=[radiograph.pk, "display"]),
            "full_image": reverse("api-radiograph-rendition", args=[radiograph.pk, "full"]),
            "heatmap": (suggestion or {}).get("heatmap_url"),
            "previous": link(previous),
            "next": link(following),
            "queue": reverse("consensus-dashboard", args=[project.pk]) + "#queue",
        },
    }
    context = {
        "project": project,
        "detail": detail,
        "radiograph": radiograph,
        "area": area,
        "grades": range(area.max_grade + 1),
        "posterior": _bars(detail.posterior),
        "model_version": model_version,
        "suggestion": suggestion,
        "suggestion_bars": _bars(suggestion["distribution"]) if suggestion else [],
        "position": index,
        "queue_length": len(queue),
        "previous": previous,
        "following": following,
        "config": config,
    }
    return render(request, "consensus/adjudicate.html", context)
