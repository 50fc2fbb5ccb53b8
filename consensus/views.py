"""The lead dashboard: agreement, reliability, aggregator comparison and the adjudication queue.

Server-rendered; heatmaps are SVG built on the server. Leads and staff only: a reader gets 403
(blinded readers must never see consensus or agreement figures), a non-member 404.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from annotation.models import Dimension, Project

from . import agreement_report, recompute, selectors, services
from .aggregation import AGGREGATORS, DEFAULT_AGGREGATOR
from .heatmap import heatmap_svg
from .models import ConsensusRun
from .serializers import AdjudicationCreateSerializer, RecomputeSerializer

QUEUE_LENGTH = 25


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
    # The whole-scale reports are kept per consensus run by the recompute; a group, or a run
    # stored without them, is computed here.
    cached = [] if group else [agreement_report.agreement_report_cached(project=project, scale=scale) for scale in scales]
    if cached and all(cached):
        reports = [report for report, _names in cached]
        model_names = sorted({name for _report, names in cached for name in names})
    else:
        model_readers = agreement_report.model_readers(project=project)
        reports = [
            agreement_report.agreement_report(project=project, scale=scale, group=group, extra_readers=model_readers)
            for scale in scales
        ]
        model_names = sorted(model_readers)
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
        "model_readers": model_names,
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
        messages.error(request, _("Final grade not saved. %(problems)s") % {"problems": problems})
        return redirect(_after_adjudication(request, project, failed=True))
    label = services.adjudicated_label_create(lead=request.user, **form.validated_data)
    messages.success(
        request,
        _("Final grade %(grade)s saved for %(area)s of %(patient)s %(side)s; the next consensus run uses it as gold.")
        % {"grade": label.grade, "area": label.area.code, "patient": label.radiograph.visit.patient.pseudonym,
           "side": label.radiograph.side},
    )
    return redirect(_after_adjudication(request, project, failed=False))


def _after_adjudication(request: HttpRequest, project: Project, *, failed: bool) -> str:
    """Where a final grade leads: the next dispute in the viewer (the one that took the decided
    area's place in the queue), the same area again when the grade was refused, and the queue
    when nothing is left."""
    from .adjudication_views import dispute_queue, viewer_url

    queue_url = reverse("consensus-dashboard", args=[project.pk]) + "#queue"
    if request.POST.get("then") != "viewer":
        return queue_url
    if failed:
        radiograph, area = request.POST.get("radiograph", ""), request.POST.get("area", "")
        if radiograph.isdigit() and area:
            return viewer_url(project_id=project.pk, radiograph_id=int(radiograph), area_code=area)
        return queue_url
    queue = dispute_queue(project=project)
    if not queue:
        messages.info(request, _("No dispute left in the queue."))
        return queue_url
    position = request.POST.get("position", "")
    index = min(int(position), len(queue) - 1) if position.isdigit() else 0
    item = queue[index]
    return viewer_url(project_id=project.pk, radiograph_id=item.radiograph_id, area_code=item.area_code)
