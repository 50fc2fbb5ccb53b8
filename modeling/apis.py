"""Model outputs for the reader workspace."""
from __future__ import annotations

from django.http import Http404, HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from annotation.models import JointArea
from annotation.selectors import radiograph_list_visible

from . import selectors
from .heatmaps import heatmap_png


class RadiographHeatmapApi(APIView):
    """Grad-CAM of the active version for one area, as a PNG with transparency."""

    @extend_schema(responses={(200, "image/png"): bytes})
    def get(self, request: Request, radiograph_id: int, area_code: str) -> HttpResponse:
        radiograph = radiograph_list_visible(user=request.user).filter(pk=radiograph_id).select_related("project").first()
        if radiograph is None:
            raise Http404("No such radiograph.")
        version, suggestions = selectors.suggestions_for_radiograph(radiograph=radiograph)
        if version is None or area_code not in suggestions:
            raise Http404("No model heatmap for this radiograph and area.")
        area = JointArea.objects.select_related("joint").get(
            scheme_id=radiograph.project.scheme_id, body_part=radiograph.body_part, code=area_code
        )
        response = HttpResponse(heatmap_png(version=version, radiograph=radiograph, area=area), content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response
