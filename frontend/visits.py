"""Reading by visit: every radiograph of one patient visit scored on one form, as on paper.

The form has joints as rows and Right/Left x Erosion/JSN as columns, one section per body part the
visit has radiographs of; the rows come from the scheme's areas, so a body part needs no code here.
"""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from annotation import selectors
from annotation.joint_labels import short_label
from annotation.models import Assignment, JointArea
from annotation.serializers import AssignmentSummarySerializer, LandmarkSerializer, OwnGradeSerializer

from .scoresheet import score_rows

BODY_PART_NAMES = {"hand": gettext_noop("Hands"), "foot": gettext_noop("Feet")}


def _read_config(request: HttpRequest, assignment: Assignment) -> dict:
    radiograph = assignment.radiograph
    areas = list(selectors.area_list_for(radiograph=radiograph))
    return {
        "assignment": AssignmentSummarySerializer(assignment).data,
        "body_part": radiograph.body_part,
        "laterality": radiograph.laterality,
        "rows": score_rows(areas),
        "short_labels": {area.joint.name: short_label(area.joint.name) for area in areas},
        "landmarks": LandmarkSerializer(selectors.landmark_list_for(radiograph=radiograph, user=request.user), many=True).data,
        "grades": OwnGradeSerializer(assignment.grades.select_related("area"), many=True).data,
        "urls": {
            "grades": reverse("api-grade-bulk-save", args=[assignment.pk]),
            "suggestions": reverse("api-assignment-suggestions", args=[assignment.pk]),
            "landmarks": reverse("api-assignment-landmarks", args=[assignment.pk]),
            "display_image": reverse("api-radiograph-rendition", args=[radiograph.pk, "display"]),
            "full_image": reverse("api-radiograph-rendition", args=[radiograph.pk, "full"]),
            "single": reverse("workspace", args=[assignment.pk]),
        },
    }


def visit_sections(*, scheme_id: int, body_parts: list[str]) -> list[dict]:
    """One section per body part: its heading and the scheme's rows for that body part."""
    sections = []
    for body_part in body_parts:
        areas = list(JointArea.objects.filter(scheme_id=scheme_id, body_part=body_part).select_related("joint"))
        sections.append({"body_part": body_part, "label": _(BODY_PART_NAMES.get(body_part, body_part)), "rows": score_rows(areas)})
    return sections


@login_required
def visit_workspace(request: HttpRequest, visit_id: int) -> HttpResponse:
    reads = selectors.visit_reads_for_reader(user=request.user, visit_id=visit_id)
    first = reads[0].radiograph
    project, visit = first.project, first.visit
    body_parts = list(dict.fromkeys(read.radiograph.body_part for read in reads))
    config = {
        "user": request.user.pk,
        "visit": {"id": visit.pk, "patient": visit.patient.pseudonym, "timepoint": visit.timepoint},
        "project": {
            "id": project.pk, "name": project.name, "blinded": project.blinded, "suggestions": project.suggestions,
            "suggestions_need_look": project.suggestions_need_look,
            "dimension_labels": {key: _(label) for key, label in project.scheme.dimension_labels.items()},
        },
        "sections": visit_sections(scheme_id=project.scheme_id, body_parts=body_parts),
        "reads": [_read_config(request, read) for read in reads],
        "urls": {
            "submit": reverse("api-visit-submit", args=[visit.pk]),
            "next": reverse("worklist-next", args=[project.pk]),
            "worklist": reverse("worklist", args=[project.pk]),
        },
    }
    read_only = all(read.status == Assignment.Status.SUBMITTED for read in reads)
    return render(
        request,
        "frontend/visit.html",
        {"visit": visit, "project": project, "config": config, "read_only": read_only, "first_image": config["reads"][0]["urls"]["display_image"]},
    )


def visit_rows(assignments) -> list[dict]:
    """The worklist of a project read by visit: one row per visit, its reads in worklist order.

    `assignments` come from `assignment_list_for_reader` (a visit's reads follow one another) with
    `graded` annotated.
    """
    rows: list[dict] = []
    area_counts: dict[tuple, int] = {}
    for assignment in assignments:
        radiograph = assignment.radiograph
        if not rows or rows[-1]["visit"].pk != radiograph.visit_id:
            rows.append({"visit": radiograph.visit, "reads": [], "graded": 0, "areas": 0})
        key = (radiograph.project.scheme_id, radiograph.body_part)
        if key not in area_counts:
            area_counts[key] = JointArea.objects.filter(scheme_id=key[0], body_part=key[1]).count()
        row = rows[-1]
        row["reads"].append(assignment)
        row["graded"] += assignment.graded
        row["areas"] += area_counts[key]
    for row in rows:
        statuses = {read.status for read in row["reads"]}
        row["status"] = (
            Assignment.Status.SUBMITTED if statuses == {Assignment.Status.SUBMITTED}
            else Assignment.Status.PENDING if statuses == {Assignment.Status.PENDING}
            else Assignment.Status.IN_PROGRESS
        )
    return rows
