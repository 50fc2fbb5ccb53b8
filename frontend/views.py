"""Server-rendered pages. The server decides; pages only show what selectors allow."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotation import selectors


@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = []
    for project in selectors.project_list_visible(user=request.user).select_related("scheme"):
        projects.append(
            {
                "project": project,
                "role": selectors.project_role(user=request.user, project=project),
                "progress": selectors.assignment_progress(user=request.user, project=project),
                "next": selectors.assignment_next(user=request.user, project=project),
            }
        )
    return render(request, "frontend/home.html", {"projects": projects})
