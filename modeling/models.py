"""Model versions, their training runs, and what they predict: suggestions and landmarks."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models import JointArea, Project, Radiograph


def checkpoint_path(instance: "ModelVersion", filename: str) -> str:
    return f"models/{instance.project_id}/v{instance.number}.pt"


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        READY = "ready", "Ready (not serving)"
        ACTIVE = "active", "Active (serving suggestions)"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class LabelSource(models.TextChoices):
        CONSENSUS = "consensus", "Consensus labels"
        GRADES = "grades", "Readers' submitted grades (no consensus yet)"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.TRAINING)
    label_source = models.CharField(max_length=10, choices=LabelSource.choices, blank=True)
    # Which consensus runs (one per dimension) the labels came from, when they did.
    consensus_run_ids = models.JSONField(default=list, blank=True)
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    checkpoint = models.FileField(upload_to=checkpoint_path, blank=True)
    auto_promote = models.BooleanField(
        default=False,
        help_text="Promote when training succeeds and no version is active, or when it beats the active one on the validation patients.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    trained_at = models.DateTimeField(null=True, blank=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["project", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="model_version_number_unique"),
            # At most one version serves a project at any time.
            models.UniqueConstraint(fields=["project"], condition=models.Q(status="active"), name="one_active_model_per_project"),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug} v{self.number} ({self.status})"


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        # Asked to stop: the task is revoked if still queued, and a running loop stops after its epoch.
        CANCELLED = "cancelled", "Cancelled"

    class Labels(models.TextChoices):
        CONSENSUS = "consensus", "Consensus posteriors (readers' vote shares until a consensus exists)"
        VOTES = "votes", "Readers' vote shares"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="training_runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    device = models.CharField(max_length=8, default="cpu")
    epochs = models.PositiveIntegerField()
    labels = models.CharField(max_length=10, choices=Labels.choices, default=Labels.CONSENSUS)
    time_budget_s = models.FloatField(null=True, blank=True, help_text="Training stops after this many seconds.")
    task_id = models.CharField(max_length=64, blank=True, help_text="Celery task id, for revoking a queued run.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    progress = models.FloatField(default=0.0, help_text="0..1")
    epoch_log = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Written every epoch; a running run whose heartbeat is old belongs to a killed worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-queued_at"]

    def __str__(self) -> str:
        return f"training of {self.model_version} ({self.status})"


class Suggestion(models.Model):
    """A model's grade distribution for one area; kept apart from readers' grades."""

    radiograph = models.ForeignKey(Radiograph, on_delete=models.CASCADE, related_name="suggestions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="suggestions")
    area = models.ForeignKey(JointArea, on_delete=models.CASCADE, related_name="+")
    distribution = models.JSONField(help_text="probability of each grade 0..max")
    label = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["radiograph", "area__order"]
        constraints = [
            models.UniqueConstraint(fields=["radiograph", "model_version", "area"], name="one_suggestion_per_area_and_version")
        ]

    def __str__(self) -> str:
        return f"{self.area.code}={self.label} by {self.model_version}"


class Prediction(models.Model):
    """One inference of one radiograph by one version (its landmarks go to annotation's Landmark)."""

    radiograph = models.ForeignKey(Radiograph, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="predictions")
    landmarks = models.JSONField(default=dict)
    seconds = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["radiograph", "model_version"], name="one_prediction_per_version")]

    def __str__(self) -> str:
        return f"{self.radiograph_id} by {self.model_version}"


class LearningPolicy(models.Model):
    """How a project's model learns from its readers: worklist order, calibration reads, retraining.

    A project without a row behaves like the defaults below (see `selectors.learning_policy_for`).
    """

    class Strategy(models.TextChoices):
        # Only strategies that need nothing but the stored suggestions: MC-dropout disagreement and
        # embedding diversity need the network itself and run in the simulation.
        RARE_BOOST = "rare_boost", "Uncertainty plus a boost for likely damaged hands"
        ENTROPY = "entropy", "Entropy of the grade distribution"
        MARGIN = "margin", "Margin between the two likeliest grades"
        EXPECTED_ERROR = "expected_error", "Expected absolute grade error (ordinal spread)"
        RANDOM = "random", "Random order (no active learning)"

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="learning_policy")
    strategy = models.CharField(max_length=16, choices=Strategy.choices, default=Strategy.RARE_BOOST)
    top_k_areas = models.PositiveSmallIntegerField(
        default=3, help_text="A radiograph's score is the mean of its k highest area scores."
    )
    rare_grade_weight = models.FloatField(
        default=1.0,
        help_text="Weight of the damage burden (mean expected grade over the areas, as a share of each scale's maximum) in rare_boost.",
    )
    calibration_every = models.PositiveSmallIntegerField(
        default=10,
        help_text="Every n-th worklist position holds a calibration radiograph (one with gold grades); 0 turns it off.",
    )
    calibration_radiograph_ids = models.JSONField(
        default=list, blank=True,
        help_text="Radiographs with gold grades from outside the platform; adjudicated radiographs count without being listed.",
    )
    retrain_after = models.PositiveIntegerField(
        default=0,
        help_text="Queue a new version once this many radiographs were fully read since the last version; 0: only from the admin.",
    )
    training_epochs = models.PositiveIntegerField(default=30)
    training_config = models.JSONField(default=dict, blank=True, help_text="TrainConfig overrides for automatic versions.")
    promotion_margin = models.FloatField(
        default=0.0,
        help_text="An automatic version replaces the serving one only when its validation score is higher by more than this.",
    )
    last_ranked_at = models.DateTimeField(null=True, blank=True)
    ranked_with = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = "learning policy"
        verbose_name_plural = "learning policies"

    def __str__(self) -> str:
        return f"learning policy of {self.project}"
