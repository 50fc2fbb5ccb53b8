"""Submitting a patient's series: every film's last grades saved and all submitted, or nothing.

The same atomic service as a visit (`services.visit_submit`); only the naming differs. Refusals name
a film by its label on the reader's page ("Film B" in hidden order), and the answer carries no
radiograph description, so in hidden order nothing in it names a visit or a date.
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services
from .models import Assignment
from .serializers import OwnGradeSerializer, VisitSubmitSerializer
from .series import series_films_for_reader
from .services import GradeInput


class SeriesSubmitApi(APIView):
    """Save the last grades of all my films of one series and submit them together, or nothing."""

    @extend_schema(
        request=VisitSubmitSerializer,
        responses={
            200: inline_serializer(
                "SubmittedSeries",
                {
                    "assignments": serializers.ListField(child=serializers.DictField(), help_text="id and status of each film's read"),
                    "grades": serializers.DictField(
                        child=serializers.ListField(child=serializers.DictField()), help_text="each read's saved grades, by assignment id"
                    ),
                },
            ),
            409: None,
        },
    )
    def post(self, request: Request, patient_id: int, side: str) -> Response:
        films = series_films_for_reader(user=request.user, patient_id=patient_id, side=side)
        by_pk = {film.assignment.pk: film.assignment for film in films}
        labels = {film.assignment.pk: film.label for film in films}
        serializer = VisitSubmitSerializer(data=request.data, context={"reads": by_pk})
        serializer.is_valid(raise_exception=True)
        items = serializer.validated_data["items"]
        reads = [
            services.VisitRead(assignment=film.assignment, items=[GradeInput(**item) for item in items.get(film.assignment.pk, [])])
            for film in films
            if film.assignment.status != Assignment.Status.SUBMITTED
        ]
        try:
            submitted = services.visit_submit(user=request.user, reads=reads, seconds_spent=serializer.validated_data["seconds_spent"])
        except services.GradeConflict as conflict:
            return Response(
                {"detail": "Another save changed these grades first; nothing was saved or submitted.", "conflicts": conflict.conflicts},
                status=status.HTTP_409_CONFLICT,
            )
        except services.VisitIncomplete as incomplete:
            parts = [
                f"{labels[pk]}: {len(codes)} area(s) not graded yet: {', '.join(codes[:6])}" + ("…" if len(codes) > 6 else "")
                for pk, codes in incomplete.missing.items()
            ]
            return Response({"grades": parts}, status=400)
        except services.AssignmentClosed:
            return Response({"assignment": ["A film of this series was submitted meanwhile; reload the page."]}, status=400)
        return Response(
            {
                "assignments": [{"id": read.pk, "status": read.status} for read in submitted],
                "grades": {str(read.pk): OwnGradeSerializer(read.grades.select_related("area"), many=True).data for read in submitted},
            }
        )
