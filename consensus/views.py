"""The lead dashboard: agreement, reliability, aggregator comparison and the adjudication queue.

Server-rendered; heatmaps are SVG built on the server. Leads and staff only: a reader gets 403
(blinded readers must never see consensus or agreement figures), a non-member 404.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.module_loading import import_string
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST

from annotation.models import Dimension, Project

from . import agreement_report, recompute, selectors, services
from .aggregation import AGGREGATORS, DEFAULT_AGGREGATOR
from .heatmap import heatmap_svg
from .models import ConsensusRun
from .serializers import AdjudicationCreateSerializer, RecomputeSerializer

QUEUE_LENGTH = 25


def _model_readers(project: Project) -> dict:
    """The serving model as a marked pseudo-reader, from the app named by MODEL_READER_PROVIDER
    (this app never imports modeling); {} without a provider or an active version."""
    provider = getattr(settings, "MODEL_READER_PROVIDER", None)
    return import_string(provider)(project=project) if provider else {}


def _scale_figures(report: agreement_report.AgreementReport) -> dict:
    """The report plus its heatmaps, drawn once here so the template only places them."""
    scale = report.scale
    readers = [
        {
            "row": row,
            "svg": mark_safe(  # noqa: S308 - built by heatmap_svg, which escapes every label
                heatmap_svg(row.confusion, title=row.reader, row_axis=gettext("consensus grade"), col_axis=gettext("reader's grade"))
            ),
        }
        for row in report.readers
    ]
    estimates = [
        {
            "row": row,
            "svg": mark_safe(  # noqa: S308
                heatmap_svg(
                    row.confusion,
                    title=gettext("%(reader)s (estimated)") % {"reader": row.reader},
                    row_axis=gettext("true grade"),
                    col_axis=gettext("given grade"),
                    probabilities=True,
                    thin_rows=[s < 1.0 for s in row.support],
                    cell=28,
                )
            ),
        }
        for row in report.estimates
    ]
    pairs = [
        {
            "row": row,
            "svg": mark_safe(  # noqa: S308
                heatmap_svg(row.confusion, title=gettext("%(a)s vs %(b)s") % {"a": row.reader_a, "b": row.reader_b}, row_axis=row.reader_a, col_axis=row.reader_b, cell=28)
            ),
        }
        for row in report.pairs
    ]
    return {"scale": scale, "report": report, "readers": readers, "estimates": estimates, "pairs": pairs}


@login_required
@require_http_methods(["GET", "HEAD"])
def agreement_dashboard(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
    groups = selectors.group_list(project=project)
    group = request.GET.get("group") or None
    if group not in groups:
        group = None
    scales = selectors.scale_list(project=project)
    runs = []
    for dimension in Dimension.values:
        latest_ok = selectors.consensus_run_latest(project=project, dimension=dimension)
        latest_any = selectors.consensus_run_latest(project=project, dimension=dimension, ok_only=False)
        runs.append(
            {
                "dimension": selectors.dimension_label(dimension),
                "run": latest_ok,
                "failed": latest_any if latest_any and latest_any.status == ConsensusRun.Status.FAILED else None,
            }
        )
    model_readers = _model_readers(project)
    reports = [
        agreement_report.agreement_report(project=project, scale=scale, group=group, extra_readers=model_readers)
        for scale in scales
    ]
    context = {
        "project": project,
        "state": selectors.consensus_settings_for(project=project),
        "runs": runs,
        "groups": groups,
        "group": group,
        "figures": [_scale_figures(report) for report in reports],
        "comparisons": selectors.aggregator_comparison(project=project),
        "queue": [
            {"item": item, "grades": range(item.max_grade + 1)}
            for item in selectors.disputed_list(project=project, limit=QUEUE_LENGTH)
        ],
        "adjudications": selectors.adjudicated_label_list(project=project)[:10],
        "aggregators": AGGREGATORS,
        "default_aggregator": DEFAULT_AGGREGATOR,
        "model_readers": sorted(model_readers),
    }
    return render(request, "consensus/dashboard.html", context)


@login_required
@require_POST
def agreement_recompute(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
    form = RecomputeSerializer(data=request.POST)
    if not form.is_valid():
        messages.error(request, gettext("Recompute refused: %(errors)s") % {"errors": form.errors})
    else:
        recompute.consensus_recompute_now(
            project=project, aggregator=form.validated_data.get("aggregator"), trigger=ConsensusRun.Trigger.DASHBOARD, requested_by=request.user
        )
        messages.success(request, gettext("Recompute queued; reload the page in a moment to see the new run."))
    return redirect(reverse("consensus-dashboard", args=[project.pk]))


@login_required
@require_POST
def agreement_adjudicate(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_led_for_consensus(user=request.user, project_id=project_id)
    form = AdjudicationCreateSerializer(data=request.POST, context={"project": project})
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(str(e) for e in errors)}" for field, errors in form.errors.items())
        messages.error(request, f"Final grade not saved. {problems}")
        return redirect(reverse("consensus-dashboard", args=[project.pk]) + "#queue")
    label = services.adjudicated_label_create(lead=request.user, **form.validated_data)
    messages.success(
        request,
        f"Final grade {label.grade} saved for {label.area.code} of {label.radiograph.visit.patient.pseudonym} "
        f"{label.radiograph.side}; the next consensus run uses it as gold.",
    )
    return redirect(reverse("consensus-dashboard", args=[project.pk]) + "#queue")
