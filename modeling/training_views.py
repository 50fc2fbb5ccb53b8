"""The training page: leads and staff start a version with its options, watch its progress bar,
curves and held-out figures, and cancel or retry a run.

Server-rendered like the model page; the progress comes from a small JSON endpoint the page polls.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from . import services, training_progress
from .models import TrainingRun
from .selectors import learning_policy_for, model_version_active, project_led_for_model
from .serializers import TrainingStartSerializer

FORM_DEFAULTS = {"epochs": 30, "device": "cpu", "time_budget_min": "", "labels": TrainingRun.Labels.CONSENSUS}


def _render(request: HttpRequest, project, *, form: dict, errors: dict | None = None, status: int = 200) -> HttpResponse:
    services.training_runs_fail_stale()
    runs = training_progress.training_run_list(project=project)
    chosen = None
    wanted = request.GET.get("run")
    if wanted and wanted.isdigit():
        chosen = next((run for run in runs if run.pk == int(wanted)), None)
    chosen = chosen or (runs[0] if runs else None)
    latest_of_version: dict[int, int] = {}
    for run in runs:
        latest_of_version.setdefault(run.model_version_id, run.pk)
    payload = training_progress.training_run_payload(run=chosen) if chosen else None
    context = {
        "project": project,
        "runs": runs,
        "chosen": chosen,
        "payload": payload,
        "can_retry": bool(
            chosen
            and chosen.status in (TrainingRun.Status.FAILED, TrainingRun.Status.CANCELLED)
            and latest_of_version.get(chosen.model_version_id) == chosen.pk
        ),
        "can_cancel": bool(chosen and chosen.status in training_progress.ACTIVE_STATUSES),
        "active": model_version_active(project=project),
        "form": form,
        "errors": errors or {},
        "label_choices": TrainingRun.Labels.choices,
    }
    return render(request, "modeling/training.html", context, status=status)


@login_required
@require_http_methods(["GET", "HEAD"])
def training_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_led_for_model(user=request.user, project_id=project_id)
    return _render(request, project, form=FORM_DEFAULTS)


@login_required
@require_POST
def training_start(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_led_for_model(user=request.user, project_id=project_id)
    form = TrainingStartSerializer(data=request.POST)
    if not form.is_valid():
        values = {**FORM_DEFAULTS, **{key: request.POST.get(key, "") for key in FORM_DEFAULTS}}
        errors = {field: " ".join(str(e) for e in problems) for field, problems in form.errors.items()}
        messages.error(request, _("Training not started: %(fields)s.") % {"fields": ", ".join(errors)})
        return _render(request, project, form=values, errors=errors, status=400)
    data = form.validated_data
    budget = data.get("time_budget_min")
    # The network and its optimiser come from the project's learning policy (set in the admin);
    # the page chooses how long, where and on which labels.
    run = services.model_version_request(
        project=project, epochs=data["epochs"], device=data["device"], labels=data["labels"],
        config=learning_policy_for(project=project).training_config or {},
        time_budget_s=budget * 60 if budget else None, auto_promote=data["auto_promote"], requested_by=request.user,
    )
    messages.success(request, _("Version %(number)s queued for training.") % {"number": run.model_version.number})
    return redirect(reverse("training-page", args=[project.pk]) + f"?run={run.pk}")


@login_required
@require_POST
def training_run_cancel(request: HttpRequest, project_id: int, run_id: int) -> HttpResponse:
    run = training_progress.training_run_for_lead(user=request.user, project_id=project_id, run_id=run_id)
    try:
        services.training_run_cancel(run=run)
    except services.NotCancellable as error:
        messages.error(request, _("Not cancelled: %(reason)s.") % {"reason": error})
    else:
        messages.success(request, _("Training of version %(number)s cancelled; it stops after the epoch it is in.") % {"number": run.model_version.number})
    return redirect(reverse("training-page", args=[project_id]) + f"?run={run.pk}")


@login_required
@require_POST
def training_run_retry(request: HttpRequest, project_id: int, run_id: int) -> HttpResponse:
    run = training_progress.training_run_for_lead(user=request.user, project_id=project_id, run_id=run_id)
    try:
        retry = services.training_run_retry(run=run, requested_by=request.user)
    except services.NotRetryable as error:
        messages.error(request, _("Not retried: %(reason)s.") % {"reason": error})
        return redirect(reverse("training-page", args=[project_id]) + f"?run={run.pk}")
    messages.success(request, _("Version %(number)s queued for training again.") % {"number": run.model_version.number})
    return redirect(reverse("training-page", args=[project_id]) + f"?run={retry.pk}")


@login_required
@require_http_methods(["GET", "HEAD"])
def training_run_progress(request: HttpRequest, project_id: int, run_id: int) -> JsonResponse:
    run = training_progress.training_run_for_lead(user=request.user, project_id=project_id, run_id=run_id)
    response = JsonResponse(training_progress.training_run_payload(run=run))
    response["Cache-Control"] = "no-store"
    return response
