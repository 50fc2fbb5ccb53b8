"""Model outputs for the reader workspace; versions and suggestion analytics for leads."""
from __future__ import annotations

from django.http import Http404, HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import JointArea
from annotation.selectors import radiograph_list_visible

from . import promotion, selectors
from .heatmaps import heatmap_methods, heatmap_png
from .serializers import HeatmapMethodSerializer, SuggestionAnalyticsSerializer, VersionQuerySerializer, VersionSummarySerializer

class RadiographHeatmapApi(APIView):
    """An explanation map of the active version for one area, as a PNG with transparency.

    `?method=` picks the method (see `HeatmapMethodListApi`); without it, the best-measured one.
    """

    @extend_schema(
        parameters=[OpenApiParameter("method", str, description="explanation method key; default: the best measured")],
        responses={(200, "image/png"): bytes},
    )
    def get(self, request: Request, radiograph_id: int, area_code: str) -> HttpResponse:
        method = request.query_params.get("method") or None
        known = [item["key"] for item in heatmap_methods()]
        if method is not None and method not in known:
            return Response(
                {"method": [f"Unknown heatmap method '{method}'; expected one of: {', '.join(known)}."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        radiograph = radiograph_list_visible(user=request.user).filter(pk=radiograph_id).select_related("project").first()
        if radiograph is None:
            raise Http404("No such radiograph.")
        version, suggestions = selectors.suggestions_for_radiograph(radiograph=radiograph)
        if version is None or area_code not in suggestions:
            raise Http404("No model heatmap for this radiograph and area.")
        area = JointArea.objects.select_related("joint").get(
            scheme_id=radiograph.project.scheme_id, body_part=radiograph.body_part, code=area_code
        )
        png = heatmap_png(version=version, radiograph=radiograph, area=area, method=method)
        response = HttpResponse(png, content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response


class ModelVersionListApi(APIView):
    """Every version of the project, newest first, with held-out figures and the promotion decision."""

    @extend_schema(responses=VersionSummarySerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_led_for_model(user=request.user, project_id=project_id)
        return Response(VersionSummarySerializer(selectors.model_version_summaries(project=project), many=True).data)


class ModelVersionPromoteApi(APIView):
    """A lead's decision: make this trained version serve (the worklist is re-ranked after its inference)."""

    @extend_schema(request=None, responses={200: VersionSummarySerializer, 409: None})
    def post(self, request: Request, project_id: int, number: int) -> Response:
        try:
            version = promotion.model_version_promote_by_lead(user=request.user, project_id=project_id, number=number)
        except promotion.NotPromotable as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        summary = next(s for s in selectors.model_version_summaries(project=version.project) if s.version.pk == version.pk)
        return Response(VersionSummarySerializer(summary).data)


class SuggestionAnalyticsApi(APIView):
    """How readers use the suggestions: acceptance, edits, reading time, automation bias."""

    @extend_schema(parameters=[OpenApiParameter("version", int)], responses=SuggestionAnalyticsSerializer)
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_led_for_model(user=request.user, project_id=project_id)
        query = VersionQuerySerializer(data=request.query_params, context={"project": project})
        query.is_valid(raise_exception=True)
        report = selectors.suggestion_analytics(project=project, model_version=query.validated_data.get("version"))
        return Response(SuggestionAnalyticsSerializer(report).data)


class HeatmapMethodListApi(APIView):
    """The explanation methods a heatmap can use, the default (best measured) first."""

    @extend_schema(responses={200: HeatmapMethodSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(HeatmapMethodSerializer(heatmap_methods(), many=True).data)
