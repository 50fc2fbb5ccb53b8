"""Paired reading: every film of one patient's body part and side scored on one form.

The visit form (`frontend.visits`, `workspace/visit.js`) with films in place of sides: one column
pair (Erosion/JSN) per film, the viewer flipping between the films of the selected column. With
the order hidden the films are "Film A", "Film B", ... in the reader's own random order, and the
page carries no timepoint, date or radiograph description: each read's config is cut down to what
the page draws with.
"""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from annotation.models import Assignment, Project
from annotation.series import series_films_for_reader
from consensus.previous import previous_consensus_for

from .visits import _read_config, visit_sections


def refuse_in_hidden_order(assignment: Assignment) -> None:
    """Http404 for a single film's pages that name its visit (scores CSV, print) in hidden order."""
    if assignment.radiograph.project.reading_mode == Project.ReadingMode.PAIRED_HIDDEN:
        raise Http404(_("Not available while the order of the films is hidden."))


@login_required
def series_workspace(request: HttpRequest, patient_id: int, side: str) -> HttpResponse:
    films = series_films_for_reader(user=request.user, patient_id=patient_id, side=side)
    first = films[0].assignment.radiograph
    project = first.project
    hidden = project.reading_mode == Project.ReadingMode.PAIRED_HIDDEN
    previous = previous_consensus_for(project=project, radiographs=[film.assignment.radiograph for film in films])
    reads = []
    for film in films:
        read = _read_config(request, film.assignment)
        radiograph = film.assignment.radiograph
        # Only what the page draws with: the summary serializer would name the visit.
        read["assignment"] = {
            "id": film.assignment.pk,
            "status": film.assignment.status,
            "radiograph": {"id": radiograph.pk, "width": radiograph.width, "height": radiograph.height},
        }
        read["column"] = film.key
        read["label"] = film.label
        if film.assignment.radiograph_id in previous:
            read["previous_consensus"] = previous[film.assignment.radiograph_id]
        if hidden:
            read["urls"].pop("single", None)
        reads.append(read)
    side_code = first.side
    config = {
        "user": request.user.pk,
        # The draft key of the series; a string, so it never meets a visit's numeric id.
        "visit": {"id": f"series-{patient_id}-{side_code}"},
        "series": {"patient": first.visit.patient.pseudonym, "side": side_code, "order_hidden": hidden},
        "columns": [{"key": film.key, "label": film.label, "date": film.date} for film in films],
        "project": {
            "id": project.pk, "name": project.name, "blinded": project.blinded, "suggestions": project.suggestions,
            "suggestions_need_look": project.suggestions_need_look,
            "dimension_labels": {key: _(label) for key, label in project.scheme.dimension_labels.items()},
        },
        "sections": visit_sections(scheme_id=project.scheme_id, body_parts=[first.body_part]),
        "reads": reads,
        "urls": {
            "submit": reverse("api-series-submit", args=[patient_id, side_code]),
            "next": reverse("worklist-next", args=[project.pk]),
            "worklist": reverse("worklist", args=[project.pk]),
        },
    }
    read_only = all(film.assignment.status == Assignment.Status.SUBMITTED for film in films)
    return render(
        request,
        "frontend/series.html",
        {
            "series": config["series"], "columns": config["columns"], "project": project, "config": config,
            "read_only": read_only, "first_image": reads[0]["urls"]["display_image"],
        },
    )
