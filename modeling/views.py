"""The lead's model page: versions with their promotion decisions, and how readers use suggestions.

Server-rendered, leads and staff only, like the agreement dashboard: a reader gets 403 (suggestion
analytics compare readers with the consensus), a non-member 404.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST


from . import promotion, selectors
from .serializers import VersionQuerySerializer

@login_required
@require_http_methods(["GET", "HEAD"])
def model_dashboard(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_led_for_model(user=request.user, project_id=project_id)
    query = VersionQuerySerializer(data=request.GET, context={"project": project})
    # An unknown or malformed ?version= shows every version's suggestions rather than an error page.
    chosen = query.validated_data.get("version") if query.is_valid() else None
    analytics = selectors.suggestion_analytics(project=project, model_version=chosen)
    distances = sorted(analytics.edit_distances.items())
    context = {
        "project": project,
        "versions": selectors.model_version_summaries(project=project),
        "active": selectors.model_version_active(project=project),
        "policy": selectors.learning_policy_for(project=project),
        "chosen": chosen,
        "analytics": analytics,
        "bias": [analytics.against_other_readers, analytics.against_gold],
        "distances": [{"distance": d, "count": n, "share": n / max(analytics.edited, 1)} for d, n in distances],
    }
    return render(request, "modeling/dashboard.html", context)


@login_required
@require_POST
def model_version_promote(request: HttpRequest, project_id: int, number: int) -> HttpResponse:
    try:
        promotion.model_version_promote_by_lead(user=request.user, project_id=project_id, number=number)
    except promotion.NotPromotable as error:
        messages.error(request, str(error))
    else:
        messages.success(request, gettext("Version %(number)s now serves; suggestions are being computed and the worklist will be re-ranked.") % {"number": number})
    return redirect("model-dashboard", project_id=project_id)
