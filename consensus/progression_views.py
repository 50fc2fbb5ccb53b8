"""The lead's "Progression" page: change scores per reader and consensus, reliability of change,
progressors, the cumulative probability plot, readers who score regression, and the fusion choice.

Leads and staff only, like the agreement dashboard: change scores reveal every reader's grades.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from annotation.services import OptionNotOffered, project_previous_consensus_set

from . import selectors, services
from .models import ConsensusRun, Fusion
from .progression import CONSENSUS, progression_report, sdc_of
from .progression_plot import cumulative_plot_svg
from .recompute import consensus_recompute_now

CHANGE_ROWS_SHOWN = 200


@login_required
def progression_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
    report = progression_report(project=project)
    rel = report.reliability
    curves = [(s.label, s.plot, s.key == CONSENSUS) for s in report.summaries]
    thresholds = []
    if rel is not None:
        single = sdc_of(rel, k=1)
        thresholds.append((_("SDC of one reader %(sdc).2f") % {"sdc": single}, single))
    plot = cumulative_plot_svg(
        curves,
        thresholds=thresholds,
        title=_("Cumulative probability plot of change scores"),
        x_label=_("cumulative probability"),
        y_label=_("change in total score, baseline to last visit"),
    )
    labels = {key: label for key, label in report.series.sources.items()}
    state = selectors.consensus_settings_for(project=project)
    context = {
        "project": project,
        "report": report,
        "reliability": rel,
        "summaries": report.summaries,
        "plot": mark_safe(plot),  # built from numbers and escaped labels only
        "changes": [(labels.get(row.source, row.source), row) for row in report.changes[:CHANGE_ROWS_SHOWN]],
        "changes_total": len(report.changes),
        "changes_shown": CHANGE_ROWS_SHOWN,
        "n_patients": len(report.series.patients),
        "runs": report.series.consensus_runs,
        "fusions": Fusion.choices,
        "fusion": state.fusion if state else Fusion.PER_FILM,
    }
    return render(request, "consensus/progression.html", context)


@login_required
@require_POST
def progression_fusion_set(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
    fusion = request.POST.get("fusion", "")
    if fusion not in Fusion.values:
        messages.error(request, _("Fusion not changed: %(value)r is not one of %(choices)s.") % {"value": fusion, "choices": ", ".join(Fusion.values)})
    else:
        services.consensus_fusion_set(project=project, fusion=fusion)
        consensus_recompute_now(project=project, trigger=ConsensusRun.Trigger.DASHBOARD, requested_by=request.user)
        messages.success(request, _("Fusion set to %(fusion)s; the consensus is being recomputed.") % {"fusion": Fusion(fusion).label})
    return redirect(reverse("consensus-progression", args=[project.pk]))


@login_required
@require_POST
def progression_previous_consensus_set(request: HttpRequest, project_id: int) -> HttpResponse:
    """The lead's choice: show readers the previous film's consensus beside each cell (order known)."""
    project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
    show = request.POST.get("show") == "1"
    try:
        project_previous_consensus_set(project=project, show=show)
    except OptionNotOffered:
        messages.error(request, _("The previous consensus can be shown only in paired reading with the order known."))
    else:
        messages.success(
            request, _("Readers now see the previous film's consensus.") if show else _("Readers no longer see the previous film's consensus.")
        )
    return redirect(reverse("consensus-progression", args=[project.pk]))
