"""The operator's controls: train a version, watch it learn, promote it, retry a failed run."""
from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from annotation.models import Project

from . import promotion, ranking, services
from .models import LearningPolicy, ModelVersion, Prediction, Suggestion, TrainingRun


class ComputedRecordAdmin(admin.ModelAdmin):
    """Records the platform computes (runs, versions, suggestions, predictions): shown, never
    added, edited or deleted by hand; training is started and followed on the training page."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _training_link(project_id: int, run_id: int | None = None) -> str:
    url = reverse("training-page", args=[project_id]) + (f"?run={run_id}" if run_id else "")
    return format_html('<a href="{}">{}</a>', url, _("training page"))


class ProjectModel(Project):
    """The project seen from the model's side, so the admin can start a training from its list."""

    class Meta:
        proxy = True
        verbose_name = "project model"
        verbose_name_plural = "project models"


@admin.register(ProjectModel)
class ProjectModelAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "suggestions", "active_version", "versions", "training"]
    search_fields = ["slug", "name"]
    actions = ["train_new_version"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="active version")
    def active_version(self, project: Project) -> str:
        version = project.model_versions.filter(status=ModelVersion.Status.ACTIVE).first()
        return f"v{version.number}" if version else "none"

    @admin.display(description="versions")
    def versions(self, project: Project) -> int:
        return project.model_versions.count()

    @admin.display(description=pgettext_lazy("model training", "training"))
    def training(self, project: Project) -> str:
        return _training_link(project.pk)

    @admin.action(description="Train a new version (queue: training)")
    def train_new_version(self, request, queryset) -> None:
        for project in queryset:
            run = services.model_version_request(project=project, requested_by=request.user)
            self.message_user(request, f"{project.slug}: version {run.model_version.number} queued for training.")


class TrainingRunInline(admin.TabularInline):
    model = TrainingRun
    extra = 0
    can_delete = False
    fields = ["status", "device", "epochs", "progress", "queued_at", "started_at", "finished_at", "error"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(ComputedRecordAdmin):
    list_display = ["__str__", "project", "number", "status", "label_source", "progress", "summary", "created_at", "promoted_at", "training"]
    list_filter = ["status", "project", "label_source"]
    search_fields = ["project__slug"]
    readonly_fields = ["training", "project", "number", "status", "label_source", "consensus_run_ids", "metrics", "config",
                       "checkpoint", "created_at", "trained_at", "promoted_at", "created_by", "loss_curve"]
    inlines = [TrainingRunInline]
    actions = ["promote", "retry_training"]

    def get_queryset(self, request):
        # A run whose worker died is shown as failed, so the retry button applies to it.
        services.training_runs_fail_stale()
        return super().get_queryset(request)

    @admin.display(description="progress")
    def progress(self, version: ModelVersion) -> str:
        run = version.training_runs.first()
        return f"{run.progress:.0%} ({run.get_status_display()})" if run else "-"

    @admin.display(description=pgettext_lazy("model training", "training"))
    def training(self, version: ModelVersion) -> str:
        run = version.training_runs.first()
        return _training_link(version.project_id, run.pk if run else None)

    @admin.display(description="test metrics")
    def summary(self, version: ModelVersion) -> str:
        test = (version.metrics or {}).get("test") or (version.metrics or {}).get("val") or {}
        parts = []
        if isinstance(test.get("localisation_accuracy"), (int, float)):
            parts.append(f"localisation {test['localisation_accuracy']:.2f}")
        for dimension in ("erosion", "jsn"):
            figures = test.get(dimension) or {}
            if isinstance(figures.get("weighted_accuracy"), (int, float)):
                parts.append(f"{dimension} WA {figures['weighted_accuracy']:.2f} / within-one {figures['within_one']:.2f}")
        return ", ".join(parts) or "-"

    @admin.display(description="loss per epoch")
    def loss_curve(self, version: ModelVersion) -> str:
        run = version.training_runs.first()
        if not run or not run.epoch_log:
            return "no epochs yet"
        keys = [k for k in ("landmark_train_loss", "landmark_val_loss", "grading_train_loss", "grading_val_loss") if k in run.epoch_log[0]]
        return format_html(
            "<table><tr><th>epoch</th>{}</tr>{}</table>",
            format_html_join("", "<th>{}</th>", ((k,) for k in keys)),
            format_html_join(
                "", "<tr><td>{}</td>{}</tr>",
                ((row["epoch"], format_html_join("", "<td>{}</td>", ((f"{row.get(k, float('nan')):.4f}",) for k in keys))) for row in run.epoch_log),
            ),
        )

    @admin.action(description="Promote (serve suggestions from this version)")
    def promote(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to promote.", level=messages.ERROR)
            return
        try:
            version = promotion.model_version_promote(version=queryset.get())
        except promotion.NotPromotable as error:
            self.message_user(request, str(error), level=messages.ERROR)
            return
        self.message_user(request, f"{version} now serves; suggestions are being computed (queue: inference).")

    @admin.action(description="Retry failed training")
    def retry_training(self, request, queryset) -> None:
        for version in queryset.filter(status__in=[ModelVersion.Status.FAILED, ModelVersion.Status.CANCELLED]):
            run = version.training_runs.first()
            if run is not None:
                services.training_run_retry(run=run, requested_by=request.user)
                self.message_user(request, f"{version}: training queued again.")


@admin.register(TrainingRun)
class TrainingRunAdmin(ComputedRecordAdmin):
    list_display = ["model_version", "status", "device", "epochs", "labels", "percent", "queued_at", "finished_at", "training"]
    list_filter = ["status", "device"]
    # The epoch log and the progress are drawn on the training page; here they would be raw JSON.
    fields = ["training", "model_version", "status", "device", "epochs", "labels", "time_budget_s", "percent",
              "epochs_done", "error", "requested_by", "queued_at", "started_at", "heartbeat_at", "finished_at"]
    readonly_fields = fields

    @admin.display(description=pgettext_lazy("model training", "progress"))
    def percent(self, run: TrainingRun) -> str:
        return f"{run.progress:.0%}"

    @admin.display(description=_("epochs done"))
    def epochs_done(self, run: TrainingRun) -> int:
        return len(run.epoch_log or [])

    @admin.display(description=pgettext_lazy("model training", "training"))
    def training(self, run: TrainingRun) -> str:
        return _training_link(run.model_version.project_id, run.pk)


@admin.register(Suggestion)
class SuggestionAdmin(ComputedRecordAdmin):
    list_display = ["radiograph", "model_version", "area", "label", "created_at"]
    list_filter = ["model_version", "area__dimension"]
    search_fields = ["area__code"]


@admin.register(Prediction)
class PredictionAdmin(ComputedRecordAdmin):
    list_display = ["radiograph", "model_version", "seconds", "created_at"]
    list_filter = ["model_version"]


@admin.register(LearningPolicy)
class LearningPolicyAdmin(admin.ModelAdmin):
    """A project's active-learning settings, its worklist re-rank, and the suggestion analytics."""

    list_display = ["project", "strategy", "calibration_every", "retrain_after", "promotion_margin",
                    "last_ranked_at", "ranked_with", "analytics_link"]
    list_filter = ["strategy"]
    readonly_fields = ["last_ranked_at", "ranked_with", "analytics"]
    actions = ["rerank_now"]

    @admin.display(description="suggestion analytics")
    def analytics_link(self, policy: LearningPolicy) -> str:
        return format_html('<a href="{}">model page</a>', reverse("model-dashboard", args=[policy.project_id]))

    @admin.display(description="suggestion analytics")
    def analytics(self, policy: LearningPolicy) -> str:
        if policy.project_id is None:
            return "-"
        return format_html(
            'Acceptance, edits, reading time and automation bias, per version, on the project\'s <a href="{}">model page</a> '
            '(JSON: <a href="{}">{}</a>).',
            reverse("model-dashboard", args=[policy.project_id]),
            reverse("api-model-analytics", args=[policy.project_id]),
            reverse("api-model-analytics", args=[policy.project_id]),
        )

    @admin.action(description="Re-rank the worklist now (from the active version's suggestions)")
    def rerank_now(self, request, queryset) -> None:
        for policy in queryset.select_related("project"):
            ranked = ranking.worklist_rerank(project=policy.project)
            self.message_user(
                request,
                f"{policy.project.slug}: {ranked.assignments_ranked} pending reads re-ranked by {ranked.strategy}"
                f" (version {ranked.model_version or 'none'}), {len(ranked.calibration)} calibration radiographs.",
            )
