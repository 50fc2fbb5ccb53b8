"""Admin of the consensus app.

The "recompute consensus" action sits on a proxy of Project ("project consensus"), which lists
every project with its latest runs and carries the project's consensus settings inline; the
Project admin itself belongs to annotation, which must not import this app. The run list has the
same action for the projects of the selected runs.
"""
from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from annotation.models import Dimension, Project

from . import recompute, selectors
from .models import AdjudicatedLabel, ConsensusLabel, ConsensusProject, ConsensusRun, ConsensusSettings, ReaderEstimate


def _recompute(modeladmin: admin.ModelAdmin, request: HttpRequest, projects: QuerySet[Project] | list[Project]) -> None:
    count = 0
    for project in projects:
        recompute.consensus_recompute_now(project=project, trigger=ConsensusRun.Trigger.ADMIN, requested_by=request.user)
        count += 1
    modeladmin.message_user(request, f"Consensus recompute queued for {count} project(s).", messages.SUCCESS)


class ConsensusSettingsInline(admin.StackedInline):
    model = ConsensusSettings
    can_delete = False
    fields = ["auto_recompute", "aggregator", "fusion", "delay_seconds", "max_wait_seconds", "request_seq", "computed_seq", "requested_at", "pending_since", "compute_started_at"]
    readonly_fields = ["request_seq", "computed_seq", "requested_at", "pending_since", "compute_started_at"]


@admin.register(ConsensusProject)
class ConsensusProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "latest_erosion", "latest_jsn", "dashboard"]
    search_fields = ["name", "slug"]
    fields = ["name", "slug", "scheme", "blinded"]
    readonly_fields = fields
    inlines = [ConsensusSettingsInline]
    actions = ["recompute_consensus"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def _latest(self, project: Project, dimension: str) -> str:
        run = selectors.consensus_run_latest(project=project, dimension=dimension, ok_only=False)
        return f"v{run.version} {run.aggregator} ({run.status})" if run else "–"

    @admin.display(description="erosion")
    def latest_erosion(self, project: Project) -> str:
        return self._latest(project, Dimension.EROSION)

    @admin.display(description="JSN")
    def latest_jsn(self, project: Project) -> str:
        return self._latest(project, Dimension.JSN)

    @admin.display(description="dashboard")
    def dashboard(self, project: Project) -> str:
        return format_html('<a href="{}">agreement</a>', reverse("consensus-dashboard", args=[project.pk]))

    @admin.action(description="Recompute consensus")
    def recompute_consensus(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        _recompute(self, request, queryset)


class ReaderEstimateInline(admin.TabularInline):
    model = ReaderEstimate
    extra = 0
    can_delete = False
    fields = ["reader", "body_part", "n_labels", "few_labels"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(ConsensusRun)
class ConsensusRunAdmin(admin.ModelAdmin):
    list_display = [
        "project", "dimension", "version", "aggregator", "fusion", "status", "n_tasks", "n_readers", "n_labels", "n_gold",
        "iterations", "converged", "duration", "trigger", "created_at",
    ]
    list_filter = ["status", "dimension", "aggregator", "fusion", "trigger", "includes_model", "project"]
    search_fields = ["project__slug", "project__name", "error"]
    date_hierarchy = "created_at"
    list_select_related = ["project"]
    inlines = [ReaderEstimateInline]
    actions = ["recompute_consensus"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        # Runs are records of what was computed: nothing about them is edited afterwards.
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # A run stores only the labels that changed since the run before it, so later runs read
        # rows an earlier one wrote: deleting one run would take labels away from the ones after.
        return False

    @admin.display(description="seconds", ordering="duration_s")
    def duration(self, run: ConsensusRun) -> str:
        return f"{run.duration_s:.2f}"

    @admin.action(description="Recompute consensus of these runs' projects")
    def recompute_consensus(self, request: HttpRequest, queryset: QuerySet[ConsensusRun]) -> None:
        projects = Project.objects.filter(pk__in=queryset.values_list("project_id", flat=True).distinct())
        _recompute(self, request, projects)


@admin.register(ConsensusLabel)
class ConsensusLabelAdmin(admin.ModelAdmin):
    list_display = ["run", "patient", "radiograph", "area_code", "label", "is_gold", "n_readers", "spread", "uncertainty"]
    list_filter = ["is_gold", "run__dimension", "area__group", "run__project"]
    search_fields = ["radiograph__visit__patient__pseudonym", "area__code"]
    list_select_related = ["run__project", "area", "radiograph__visit__patient"]
    raw_id_fields = ["run", "radiograph", "area"]
    ordering = ["-run_id", "-uncertainty"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="patient", ordering="radiograph__visit__patient__pseudonym")
    def patient(self, label: ConsensusLabel) -> str:
        return label.radiograph.visit.patient.pseudonym

    @admin.display(description="area", ordering="area__code")
    def area_code(self, label: ConsensusLabel) -> str:
        return label.area.code


@admin.register(ReaderEstimate)
class ReaderEstimateAdmin(admin.ModelAdmin):
    list_display = ["run", "reader", "body_part", "n_labels", "few_labels"]
    list_filter = ["few_labels", "body_part", "run__dimension", "run__project"]
    search_fields = ["reader__username", "run__project__slug"]
    list_select_related = ["run__project", "reader"]
    raw_id_fields = ["run", "reader"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AdjudicatedLabel)
class AdjudicatedLabelAdmin(admin.ModelAdmin):
    list_display = ["created_at", "patient", "radiograph", "area", "grade", "lead", "note"]
    list_filter = ["area__dimension", "area__group", "radiograph__project"]
    search_fields = ["radiograph__visit__patient__pseudonym", "area__code", "lead__username", "note"]
    list_select_related = ["radiograph__visit__patient", "area", "lead"]
    raw_id_fields = ["radiograph", "area", "lead"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        # Decisions are history: a changed decision is a new row, made on the dashboard.
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="patient", ordering="radiograph__visit__patient__pseudonym")
    def patient(self, label: AdjudicatedLabel) -> str:
        return label.radiograph.visit.patient.pseudonym
