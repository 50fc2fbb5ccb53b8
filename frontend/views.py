"""Server-rendered pages. The server decides; pages only show what selectors allow."""
from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from annotation import selectors
from annotation.joint_labels import short_label
from annotation.models import Assignment
from annotation.serializers import AssignmentSummarySerializer, LandmarkSerializer, OwnGradeSerializer
from annotation.series import is_paired, series_rows

from . import series, visits
from .scoresheet import score_rows
from .templatetags.ra_labels import side_label


@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = []
    for project in selectors.project_list_visible(user=request.user).select_related("scheme"):
        role = selectors.project_role(user=request.user, project=project)
        projects.append(
            {
                "project": project,
                "role": role,
                # The project's overall reading progress is for those who oversee it.
                "films": selectors.radiograph_status_counts(project=project) if role in ("lead", "staff") else None,
                "progress": selectors.assignment_progress(user=request.user, project=project),
                "next": selectors.assignment_next(user=request.user, project=project),
            }
        )
    prefetch = [_display_url(item["next"]) for item in projects if item["next"] is not None]
    return render(request, "frontend/home.html", {"projects": projects, "prefetch_images": prefetch})


@login_required
def worklist(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_get_visible(user=request.user, project_id=project_id)
    assignments = selectors.assignment_list_for_reader(user=request.user, project=project).annotate(
        graded=Count("grades")
    )
    area_counts = {
        body_part: project.scheme.areas.filter(body_part=body_part).count()
        for body_part in {assignment.radiograph.body_part for assignment in assignments}
    }
    rows = [{"assignment": item, "areas": area_counts[item.radiograph.body_part]} for item in assignments]
    upcoming = selectors.assignment_next(user=request.user, project=project)
    by_visit = project.reading_unit == project.ReadingUnit.VISIT
    return render(
        request,
        "frontend/worklist.html",
        {
            "project": project,
            "rows": rows,
            "visit_rows": visits.visit_rows(assignments) if by_visit else None,
            "series_rows": series_rows(assignments) if is_paired(project) else None,
            "progress": selectors.assignment_progress(user=request.user, project=project),
            "next": upcoming,
            "prefetch_images": [_display_url(upcoming)],
        },
    )


@login_required
def worklist_next(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_get_visible(user=request.user, project_id=project_id)
    assignment = selectors.assignment_next(user=request.user, project=project)
    if assignment is None:
        messages.info(request, _("Nothing left to read in this project."))
        return redirect("worklist", project_id=project.pk)
    if is_paired(project):
        radiograph = assignment.radiograph
        return redirect("series-workspace", patient_id=radiograph.visit.patient_id, side=radiograph.side)
    if project.reading_unit == project.ReadingUnit.VISIT:
        return redirect("visit-workspace", visit_id=assignment.radiograph.visit_id)
    return redirect("workspace", assignment_id=assignment.pk)


@login_required
def workspace(request: HttpRequest, assignment_id: int) -> HttpResponse:
    assignment = selectors.assignment_get_own(user=request.user, assignment_id=assignment_id)
    radiograph = assignment.radiograph
    project = radiograph.project
    if is_paired(project):
        # A paired project is read series by series; the single-film page would name the visit.
        return redirect("series-workspace", patient_id=radiograph.visit.patient_id, side=radiograph.side)
    areas = list(selectors.area_list_for(radiograph=radiograph))
    landmarks = selectors.landmark_list_for(radiograph=radiograph, user=request.user)
    # The page starts from the server's data embedded here, so it paints and restores a draft
    # without waiting for the API; later reads and every write go through the API.
    config = {
        "user": request.user.pk,
        "assignment": AssignmentSummarySerializer(assignment).data,
        "project": {
            "id": project.pk, "name": project.name, "blinded": project.blinded, "suggestions": project.suggestions,
            "suggestions_need_look": project.suggestions_need_look,
            "dimension_labels": {key: _(label) for key, label in project.scheme.dimension_labels.items()},
        },
        "rows": score_rows(areas),
        "short_labels": {area.joint.name: short_label(area.joint.name) for area in areas},
        "landmarks": LandmarkSerializer(landmarks, many=True).data,
        "grades": OwnGradeSerializer(assignment.grades.select_related("area"), many=True).data,
        # Each other film of the visit named in words ("Left foot"), so its note says which one it is.
        "visit_totals": [
            {**other, "label": side_label(other)}
            for other in selectors.visit_totals_for_reader(user=request.user, assignment=assignment)
        ],
        "urls": {
            "grades": reverse("api-grade-bulk-save", args=[assignment.pk]),
            "submit": reverse("api-assignment-submit", args=[assignment.pk]),
            "suggestions": reverse("api-assignment-suggestions", args=[assignment.pk]),
            "heatmap_methods": reverse("api-heatmap-methods"),
            "landmarks": reverse("api-assignment-landmarks", args=[assignment.pk]),
            "next": reverse("api-worklist-next", args=[project.pk]),
            "display_image": reverse("api-radiograph-rendition", args=[radiograph.pk, "display"]),
            "full_image": reverse("api-radiograph-rendition", args=[radiograph.pk, "full"]),
            "workspace": reverse("workspace", args=[0]),
            "worklist": reverse("worklist", args=[project.pk]),
        },
    }
    upcoming = selectors.assignment_after(user=request.user, assignment=assignment)
    return render(
        request,
        "frontend/workspace.html",
        {
            "assignment": assignment,
            "radiograph": radiograph,
            "project": project,
            "config": config,
            # The browser fetches the next radiograph's display image while the reader works on
            # this one, so submitting opens the next one without waiting for it.
            "prefetch_image": _display_url(upcoming),
            "svdh_max": selectors.scheme_max_total(scheme_id=project.scheme_id),
        },
    )


def _display_url(assignment: Assignment | None) -> str | None:
    if assignment is None:
        return None
    return reverse("api-radiograph-rendition", args=[assignment.radiograph_id, "display"])


def _saved_table(assignment: Assignment) -> tuple[list[dict], dict[str, int]]:
    """The score table from saved grades: rows with values, and the totals."""
    values = dict(assignment.grades.values_list("area__code", "value"))
    rows = score_rows(list(selectors.area_list_for(radiograph=assignment.radiograph)))
    totals = {"erosion": 0, "jsn": 0}
    for row in rows:
        if row.get("group_heading"):
            continue
        for dimension in ("erosion", "jsn"):
            cell = row[dimension]
            if cell is not None:
                cell["value"] = values.get(cell["code"])
                totals[dimension] += cell["value"] or 0
    totals["total"] = totals["erosion"] + totals["jsn"]
    return rows, totals


@login_required
def workspace_csv(request: HttpRequest, assignment_id: int) -> HttpResponse:
    assignment = selectors.assignment_get_own(user=request.user, assignment_id=assignment_id)
    series.refuse_in_hidden_order(assignment)
    radiograph = assignment.radiograph
    rows, totals = _saved_table(assignment)
    patient, timepoint = radiograph.visit.patient.pseudonym, radiograph.visit.timepoint
    hand = f"{radiograph.laterality}{radiograph.body_part[0].upper()}"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{patient}-{timepoint}-{hand}-scores.csv"'
    writer = csv.writer(response)
    writer.writerow(["patient", "timepoint", "image", "joint", "erosion", "jsn", "erosion_code", "jsn_code"])
    for row in rows:
        if row.get("group_heading"):
            continue
        cells = [row["erosion"], row["jsn"]]
        # "X" marks a dimension the scheme does not score at this joint, as in the paper table.
        shown = ["X" if cell is None else ("" if cell["value"] is None else cell["value"]) for cell in cells]
        codes = ["" if cell is None else cell["code"] for cell in cells]
        writer.writerow([patient, timepoint, hand, row["label"], *shown, *codes])
    writer.writerow([patient, timepoint, hand, "total", totals["erosion"], totals["jsn"], "", ""])
    writer.writerow([patient, timepoint, hand, "svdh_total", totals["total"], "", "", ""])
    visit = selectors.visit_svdh_total_for_reader(user=request.user, assignment=assignment, image_total=totals["total"])
    # The visit's full SvdH score (both hands and both feet) and its maximum; empty until complete.
    writer.writerow([patient, timepoint, "visit", "svdh_visit_total", visit["total"] if visit["complete"] else "", "", "", ""])
    writer.writerow([patient, timepoint, "visit", "svdh_max", visit["max"], "", "", ""])
    return response


@login_required
def workspace_print(request: HttpRequest, assignment_id: int) -> HttpResponse:
    assignment = selectors.assignment_get_own(user=request.user, assignment_id=assignment_id)
    series.refuse_in_hidden_order(assignment)
    rows, totals = _saved_table(assignment)
    return render(
        request,
        "frontend/workspace_print.html",
        {"assignment": assignment, "radiograph": assignment.radiograph, "rows": rows, "totals": totals,
         "visit": selectors.visit_svdh_total_for_reader(user=request.user, assignment=assignment, image_total=totals["total"])},
    )


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on every page that names no icon (the admin's among them)."""
    from django.templatetags.static import static

    response = redirect(static("frontend/favicon.ico"), permanent=False)
    response["Cache-Control"] = "public, max-age=86400"
    return response
