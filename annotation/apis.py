"""The reader API: thin views that check visibility, validate, call one service and answer."""
from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from . import ingestion, renditions, selectors, services
from .models import Assignment, Radiograph
from .serializers import (
    AreaSerializer,
    AssignmentSubmitSerializer,
    AssignmentSummarySerializer,
    GradeBulkSaveSerializer,
    GradeSerializer,
    LandmarkCorrectionSerializer,
    LandmarkSerializer,
    LeadAssignmentSerializer,
    OwnGradeSerializer,
    ProjectSerializer,
    RadiographSerializer,
    RadiographUploadSerializer,
    VisitSubmitSerializer,
    radiograph_name,
)
from .services import GradeInput


def exception_handler(exc, context):
    """DRF's handler, plus a JSON body for errors Django would answer with an HTML page."""
    from django.core.exceptions import RequestDataTooBig

    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "Request body is too large."}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    return drf_exception_handler(exc, context)


_DATETIME = serializers.DateTimeField()


def _areas_by_code(radiograph: Radiograph) -> dict:
    return {area.code: area for area in selectors.area_list_for(radiograph=radiograph)}


class ProjectListApi(APIView):
    @extend_schema(responses=ProjectSerializer(many=True))
    def get(self, request: Request) -> Response:
        projects = selectors.project_list_visible(user=request.user).select_related("scheme")
        roles = {project.pk: selectors.project_role(user=request.user, project=project) for project in projects}
        return Response(ProjectSerializer(projects, many=True, context={"roles": roles}).data)


class ProjectDetailApi(APIView):
    @extend_schema(responses=ProjectSerializer)
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_visible(user=request.user, project_id=project_id)
        roles = {project.pk: selectors.project_role(user=request.user, project=project)}
        return Response(ProjectSerializer(project, context={"roles": roles}).data)


class WorklistApi(APIView):
    @extend_schema(
        responses=inline_serializer(
            "Worklist",
            {"progress": serializers.DictField(child=serializers.IntegerField()), "assignments": AssignmentSummarySerializer(many=True)},
        )
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_visible(user=request.user, project_id=project_id)
        assignments = selectors.assignment_list_for_reader(user=request.user, project=project)
        return Response(
            {
                "progress": selectors.assignment_progress(user=request.user, project=project),
                "assignments": AssignmentSummarySerializer(assignments, many=True).data,
            }
        )


class WorklistNextApi(APIView):
    @extend_schema(responses={200: AssignmentSummarySerializer, 204: None})
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_visible(user=request.user, project_id=project_id)
        assignment = selectors.assignment_next(user=request.user, project=project)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(AssignmentSummarySerializer(assignment).data)


class ProjectAssignmentListApi(APIView):
    """Every reader's assignments in a project: leads and staff only."""

    @extend_schema(responses=LeadAssignmentSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_led(
            user=request.user, project_id=project_id, readers_message="Only the project's leads see every reader's assignments."
        )
        assignments = selectors.assignment_list_for_lead(user=request.user, project=project)
        return Response(LeadAssignmentSerializer(assignments, many=True, context={"show_timepoint": True}).data)


class AssignmentDetailApi(APIView):
    @extend_schema(
        responses=inline_serializer(
            "AssignmentDetail",
            {
                "assignment": AssignmentSummarySerializer(),
                "areas": AreaSerializer(many=True),
                "landmarks": LandmarkSerializer(many=True),
                "grades": OwnGradeSerializer(many=True),
            },
        )
    )
    def get(self, request: Request, assignment_id: int) -> Response:
        assignment = selectors.assignment_get_own(user=request.user, assignment_id=assignment_id)
        radiograph = assignment.radiograph
        return Response(
            {
                "assignment": AssignmentSummarySerializer(assignment).data,
                "areas": AreaSerializer(selectors.area_list_for(radiograph=radiograph), many=True).data,
                "landmarks": LandmarkSerializer(selectors.landmark_list_for(radiograph=radiograph, user=request.user), many=True).data,
                "grades": OwnGradeSerializer(assignment.grades.select_related("area"), many=True).data,
            }
        )


class GradeBulkSaveApi(APIView):
    @extend_schema(
        request=GradeBulkSaveSerializer,
        responses={200: inline_serializer("SavedGrades", {"grades": OwnGradeSerializer(many=True)}), 409: None},
    )
    def put(self, request: Request, assignment_id: int) -> Response:
        # One lean statement finds the reader's own assignment and checks the cached areas: every
        # autosave of the reader's page comes through here.
        target = selectors.save_target_for_reader(user=request.user, assignment_id=assignment_id)
        serializer = GradeBulkSaveSerializer(data=request.data, context={"assignment": target.assignment, "areas": target.areas})
        serializer.is_valid(raise_exception=True)
        items = [GradeInput(**item) for item in serializer.validated_data["grades"]]
        try:
            grades = services.grade_bulk_save(assignment=target.assignment, user=request.user, items=items)
        except services.GradeConflict as conflict:
            return Response(
                {"detail": "Another save changed these grades first; nothing was saved.", "conflicts": conflict.conflicts},
                status=status.HTTP_409_CONFLICT,
            )
        except services.AssignmentClosed:
            return Response({"assignment": ["This assignment is already submitted; its grades are final."]}, status=400)
        # OwnGradeSerializer's fields as plain dicts: its per-field machinery cost more than the
        # save's INSERT.
        return Response(
            {
                "grades": [
                    {
                        "area": grade.area.code,
                        "value": grade.value,
                        "version": grade.version,
                        "source": grade.source,
                        "updated_at": _DATETIME.to_representation(grade.updated_at),
                    }
                    for grade in grades
                ]
            }
        )


class AssignmentSubmitApi(APIView):
    @extend_schema(request=AssignmentSubmitSerializer, responses=AssignmentSummarySerializer)
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = selectors.assignment_get_own(user=request.user, assignment_id=assignment_id)
        serializer = AssignmentSubmitSerializer(
            data=request.data, context={"assignment": assignment, "areas": _areas_by_code(assignment.radiograph)}
        )
        serializer.is_valid(raise_exception=True)
        try:
            assignment = services.assignment_submit(assignment=assignment, **serializer.validated_data)
        except services.AssignmentClosed:
            return Response({"assignment": ["This assignment is already submitted."]}, status=400)
        return Response(AssignmentSummarySerializer(assignment).data)


class VisitSubmitApi(APIView):
    """Save the last grades of all my radiographs of one visit and submit them together, or nothing."""

    @extend_schema(
        request=VisitSubmitSerializer,
        responses={
            200: inline_serializer(
                "SubmittedVisit",
                {
                    "assignments": AssignmentSummarySerializer(many=True),
                    "grades": serializers.DictField(
                        child=serializers.ListField(child=serializers.DictField()), help_text="each read's saved grades, by assignment id"
                    ),
                },
            ),
            409: None,
        },
    )
    def post(self, request: Request, visit_id: int) -> Response:
        reads = selectors.visit_reads_for_reader(user=request.user, visit_id=visit_id)
        by_pk = {read.pk: read for read in reads}
        serializer = VisitSubmitSerializer(data=request.data, context={"reads": by_pk})
        serializer.is_valid(raise_exception=True)
        items = serializer.validated_data["items"]
        visit_reads = [
            services.VisitRead(assignment=read, items=[GradeInput(**item) for item in items.get(read.pk, [])])
            for read in reads
            if read.status != Assignment.Status.SUBMITTED
        ]
        try:
            submitted = services.visit_submit(
                user=request.user, reads=visit_reads, seconds_spent=serializer.validated_data["seconds_spent"]
            )
        except services.GradeConflict as conflict:
            return Response(
                {"detail": "Another save changed these grades first; nothing was saved or submitted.", "conflicts": conflict.conflicts},
                status=status.HTTP_409_CONFLICT,
            )
        except services.VisitIncomplete as incomplete:
            parts = [
                f"{radiograph_name(by_pk[pk].radiograph)}: {len(codes)} area(s) not graded yet: {', '.join(codes[:6])}"
                + ("…" if len(codes) > 6 else "")
                for pk, codes in incomplete.missing.items()
            ]
            return Response({"grades": parts}, status=400)
        except services.AssignmentClosed:
            return Response({"assignment": ["A radiograph of this visit was submitted meanwhile; reload the page."]}, status=400)
        return Response(
            {
                "assignments": AssignmentSummarySerializer(submitted, many=True).data,
                "grades": {
                    str(read.pk): OwnGradeSerializer(read.grades.select_related("area"), many=True).data for read in submitted
                },
            }
        )


def _radiograph_or_404(request: Request, radiograph_id: int) -> Radiograph:
    radiograph = selectors.radiograph_list_visible(user=request.user).filter(pk=radiograph_id).first()
    if radiograph is None:
        raise Http404("No such radiograph.")
    return radiograph


class RadiographDetailApi(APIView):
    @extend_schema(
        responses=inline_serializer(
            "RadiographDetail",
            {"radiograph": RadiographSerializer(), "landmarks": LandmarkSerializer(many=True), "grades": GradeSerializer(many=True)},
        )
    )
    def get(self, request: Request, radiograph_id: int) -> Response:
        radiograph = _radiograph_or_404(request, radiograph_id)
        return Response(
            {
                "radiograph": RadiographSerializer(
                    radiograph,
                    context={"show_timepoint": selectors.project_is_led(user=request.user, project=radiograph.project)},
                ).data,
                "landmarks": LandmarkSerializer(selectors.landmark_list_for(radiograph=radiograph, user=request.user), many=True).data,
                "grades": GradeSerializer(selectors.grade_list_visible(user=request.user, radiograph=radiograph), many=True).data,
            }
        )


class RadiographImageApi(APIView):
    """The image file, streamed only to users allowed to see the radiograph."""

    @extend_schema(responses={(200, "image/*"): bytes})
    def get(self, request: Request, radiograph_id: int) -> FileResponse:
        radiograph = _radiograph_or_404(request, radiograph_id)
        response = FileResponse(radiograph.image.open("rb"))
        response["Cache-Control"] = "private, max-age=3600"
        return response


# Reader workspace ------------------------------------------------------------------------------


class AssignmentSuggestionsApi(APIView):
    """The model's suggested grades for my reading; none in projects with suggestions off."""

    @extend_schema(
        responses=inline_serializer(
            "SuggestionSet",
            {
                "model_version": serializers.CharField(allow_null=True),
                "suggestions": serializers.DictField(
                    child=inline_serializer(
                        "Suggestion",
                        {
                            "label": serializers.IntegerField(),
                            "distribution": serializers.ListField(child=serializers.FloatField()),
                            "heatmap_url": serializers.CharField(required=False),
                        },
                    )
                ),
            },
        )
    )
    def get(self, request: Request, assignment_id: int) -> Response:
        assignment = selectors.assignment_get_own(user=request.user, assignment_id=assignment_id)
        payload = selectors.suggestion_set_for(assignment=assignment)
        # What the page receives is recorded, so the server can tell accepted from edited grades.
        services.suggestions_record_served(assignment=assignment, payload=payload)
        return Response(payload)


class AssignmentLandmarksApi(APIView):
    """Save the joint markers I moved; they become my own landmarks (source 'reader')."""

    @extend_schema(
        request=LandmarkCorrectionSerializer,
        responses=inline_serializer("CorrectedLandmarks", {"landmarks": LandmarkSerializer(many=True)}),
    )
    def put(self, request: Request, assignment_id: int) -> Response:
        from .models import Joint

        assignment = selectors.assignment_get_own(user=request.user, assignment_id=assignment_id)
        radiograph = assignment.radiograph
        joints = {
            joint.name: joint
            for joint in Joint.objects.filter(scheme_id=radiograph.project.scheme_id, body_part=radiograph.body_part)
        }
        serializer = LandmarkCorrectionSerializer(
            data=request.data, context={"joints": joints, "radiograph": radiograph, "assignment": assignment}
        )
        serializer.is_valid(raise_exception=True)
        corrections = [(item["joint"], item["x"], item["y"]) for item in serializer.validated_data["landmarks"]]
        try:
            services.landmark_correct(assignment=assignment, user=request.user, corrections=corrections)
        except services.AssignmentClosed:
            return Response({"assignment": ["This assignment is already submitted; its landmarks are final."]}, status=400)
        landmarks = selectors.landmark_list_for(radiograph=radiograph, user=request.user)
        return Response({"landmarks": LandmarkSerializer(landmarks, many=True).data})


class RadiographRenditionApi(APIView):
    """An 8-bit rendition for the browser: `display` (at most 1600 px, JPEG) or `full` (PNG)."""

    @extend_schema(responses={(200, "image/*"): bytes})
    def get(self, request: Request, radiograph_id: int, kind: str) -> FileResponse:
        radiograph = _radiograph_or_404(request, radiograph_id)
        if kind not in renditions.RENDITIONS:
            raise Http404(f"No rendition '{kind}'; choose one of: {', '.join(renditions.RENDITIONS)}.")
        name = renditions.radiograph_rendition(radiograph=radiograph, kind=kind)
        # Streamed from the media storage through this permission check; never a public URL.
        response = FileResponse(default_storage.open(name, "rb"))
        # Named by checksum on the server, so the bytes behind this URL never change.
        response["Cache-Control"] = "private, max-age=86400"
        return response


# Ingestion -------------------------------------------------------------------------------------


class RadiographUploadApi(APIView):
    """Add radiographs to a project (multipart: `files`, optional `manifest`, `timepoint`,
    `allow_colour`): leads and staff only. Answers the ingestion report; 201 if anything was added."""

    parser_classes = [MultiPartParser]

    report_schema = inline_serializer(
        "IngestionReport",
        {
            "imported": serializers.IntegerField(),
            "skipped": serializers.IntegerField(),
            "failed": serializers.IntegerField(),
            "files": serializers.ListField(child=serializers.DictField()),
            "notes": serializers.ListField(child=serializers.CharField()),
        },
    )

    @extend_schema(
        request={"multipart/form-data": RadiographUploadSerializer},
        responses={201: report_schema, 200: report_schema},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_led(
            user=request.user, project_id=project_id, readers_message="Only the project's leads add radiographs."
        )
        serializer = RadiographUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        report = ingestion.radiographs_ingest(project=project, files=serializer.validated_data["checked"])
        created = report.counts()["imported"] > 0
        return Response(report.as_dict(), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
