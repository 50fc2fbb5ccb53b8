"""The consensus API for project leads and staff: thin views over selectors and services.

Readers get 403 on every endpoint, blinded project or not: these figures reveal other readers'
grades. Users who cannot see the project at all get 404, so its existence is not revealed.
"""
from __future__ import annotations

from django.http import Http404, HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.exports import ScoreSourceUnavailable
from annotation.models import Dimension

from . import agreement_report, exports, recompute, selectors, services
from .models import ConsensusRun
from .serializers import (
    AdjudicatedLabelSerializer,
    AdjudicationCreateSerializer,
    AgreementReportSerializer,
    AggregatorComparisonSerializer,
    ConsensusLabelSerializer,
    ConsensusRunSerializer,
    ConsensusSettingsSerializer,
    DimensionQuerySerializer,
    DisputedItemSerializer,
    LabelQuerySerializer,
    RecomputeSerializer,
    ScaleQuerySerializer,
    ScaleSerializer,
)

class ConsensusSummaryApi(APIView):
    @extend_schema(
        responses=inline_serializer(
            "ConsensusSummary",
            {
                "settings": ConsensusSettingsSerializer(allow_null=True),
                "scales": ScaleSerializer(many=True),
                "groups": serializers.ListField(child=serializers.CharField()),
                "latest": ConsensusRunSerializer(many=True),
            },
        )
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
        latest = [
            run
            for dimension in Dimension.values
            if (run := selectors.consensus_run_latest(project=project, dimension=dimension, ok_only=False)) is not None
        ]
        state = selectors.consensus_settings_for(project=project)
        return Response(
            {
                "settings": ConsensusSettingsSerializer(state).data if state else None,
                "scales": ScaleSerializer(selectors.scale_list(project=project), many=True).data,
                "groups": selectors.group_list(project=project),
                "latest": ConsensusRunSerializer(latest, many=True).data,
            }
        )


class ConsensusRunListApi(APIView):
    @extend_schema(responses=ConsensusRunSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
        runs = selectors.consensus_run_list(project=project).select_related("requested_by")[:200]
        return Response(ConsensusRunSerializer(runs, many=True).data)


class ConsensusLabelListApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("dimension", enum=Dimension.values, required=True)],
        responses=inline_serializer("ConsensusLabels", {"run": ConsensusRunSerializer(allow_null=True), "labels": ConsensusLabelSerializer(many=True)}),
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
        query = LabelQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        run = selectors.consensus_run_latest(project=project, dimension=query.validated_data["dimension"])
        labels = selectors.consensus_label_list(run=run) if run else []
        return Response(
            {"run": ConsensusRunSerializer(run).data if run else None, "labels": ConsensusLabelSerializer(labels, many=True).data}
        )


class AgreementApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("scale", str), OpenApiParameter("group", str)],
        responses=AgreementReportSerializer,
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
        query = ScaleQuerySerializer(
            data=request.query_params,
            context={"scales": selectors.scale_list(project=project), "groups": selectors.group_list(project=project)},
        )
        query.is_valid(raise_exception=True)
        report = agreement_report.agreement_report(project=project, **query.validated_data)
        return Response(AgreementReportSerializer(report).data)


class AggregatorComparisonApi(APIView):
    @extend_schema(responses=AggregatorComparisonSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
        return Response(AggregatorComparisonSerializer(selectors.aggregator_comparison(project=project), many=True).data)


class DisputedListApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("dimension", enum=Dimension.values), OpenApiParameter("limit", int)],
        responses=DisputedItemSerializer(many=True),
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
        query = DimensionQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        items = selectors.disputed_list(
            project=project, dimension=query.validated_data.get("dimension"), limit=query.validated_data["limit"]
        )
        return Response(DisputedItemSerializer(items, many=True).data)


class AdjudicationListCreateApi(APIView):
    @extend_schema(responses=AdjudicatedLabelSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
        return Response(AdjudicatedLabelSerializer(selectors.adjudicated_label_list(project=project)[:500], many=True).data)

    @extend_schema(request=AdjudicationCreateSerializer, responses={201: AdjudicatedLabelSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
        serializer = AdjudicationCreateSerializer(data=request.data, context={"project": project})
        serializer.is_valid(raise_exception=True)
        label = services.adjudicated_label_create(lead=request.user, **serializer.validated_data)
        return Response(AdjudicatedLabelSerializer(label).data, status=status.HTTP_201_CREATED)


class RecomputeApi(APIView):
    @extend_schema(
        request=RecomputeSerializer,
        responses={202: inline_serializer("RecomputeQueued", {"request": serializers.IntegerField()})},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
        serializer = RecomputeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        seq = recompute.consensus_recompute_now(
            project=project, aggregator=serializer.validated_data.get("aggregator"), trigger=ConsensusRun.Trigger.API, requested_by=request.user
        )
        return Response({"request": seq}, status=status.HTTP_202_ACCEPTED)


class ConsensusExportApi(APIView):
    """Lead downloads: `consensus.csv`, `consensus-ra2.csv`, `agreement.csv`, `agreement.json`, `reader-grades.csv`,
    `progression-long.csv`, `progression-wide.csv`."""

    @extend_schema(
        parameters=[OpenApiParameter("timepoint", str, description="RA2 sheet only; default baseline")],
        responses={(200, "text/csv"): bytes, (200, "application/json"): bytes},
    )
    def get(self, request: Request, project_id: int, name: str) -> HttpResponse:
        project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
        if name not in exports.EXPORTS:
            raise Http404("No such export.")
        kwargs = {"timepoint": request.query_params.get("timepoint") or "baseline"} if name == "consensus-ra2.csv" else {}
        try:
            body = exports.EXPORTS[name](project=project, **kwargs)
        except ScoreSourceUnavailable as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        content_type = "application/json" if name.endswith(".json") else "text/csv; charset=utf-8"
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{project.slug}-{name}"'
        return response
