"""Consensus runs and their labels, reader profiles, adjudicated grades and per-project settings."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.db.models import Q, QuerySet

from annotation.models import Dimension, JointArea, Project, Radiograph

from .aggregation import AGGREGATORS, DEFAULT_AGGREGATOR


class Fusion(models.TextChoices):
    # per_film: each film's joints fused on their own; longitudinal: a joint's grades over a
    # patient's visits fused together under the rule that damage does not heal.
    PER_FILM = "per_film", _("Per film")
    LONGITUDINAL = "longitudinal", _("Longitudinal (non-decreasing over visits)")


class ConsensusSettings(models.Model):
    """How and when a project's consensus is recomputed, and the bookkeeping of the debounce.

    Each recompute request takes the next `request_seq`; the task it enqueues carries that number
    and runs only if no later request has arrived by then (`request_seq` still equal) and no
    compute has already covered it (`computed_seq` below it). A burst of submissions therefore
    costs one compute, after the project has been quiet for `delay_seconds`. `max_wait_seconds`
    bounds the wait when submissions never pause: once the oldest uncovered request
    (`pending_since`) is that old, a superseded task computes anyway.
    """

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="consensus_settings")
    auto_recompute = models.BooleanField(default=True, help_text="Recompute after reader submissions.")
    aggregator = models.CharField(max_length=32, default=DEFAULT_AGGREGATOR, choices=[(name, name) for name in AGGREGATORS])
    fusion = models.CharField(max_length=16, choices=Fusion.choices, default=Fusion.PER_FILM)
    delay_seconds = models.PositiveIntegerField(
        default=30, help_text="Quiet time after the last submission before the consensus is recomputed."
    )
    max_wait_seconds = models.PositiveIntegerField(
        default=600, help_text="Recompute at least this often while submissions keep arriving."
    )
    request_seq = models.PositiveBigIntegerField(default=0)
    computed_seq = models.PositiveBigIntegerField(default=0)
    requested_at = models.DateTimeField(null=True, blank=True)
    pending_since = models.DateTimeField(null=True, blank=True, help_text="Oldest request no compute has covered yet.")
    compute_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "consensus settings"
        verbose_name_plural = "consensus settings"

    def __str__(self) -> str:
        return f"consensus settings of {self.project}"

    @property
    def pending(self) -> bool:
        """A recompute was requested and no compute has picked it up yet."""
        return self.request_seq > self.computed_seq


class ConsensusProject(Project):
    """Projects as the consensus admin shows them: settings inline and a recompute action."""

    class Meta:
        proxy = True
        verbose_name = "project consensus"
        verbose_name_plural = "project consensus"


class ConsensusRun(models.Model):
    class Status(models.TextChoices):
        OK = "ok", "OK"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        SUBMISSION = "submission", "After submissions"
        DASHBOARD = "dashboard", "Dashboard"
        ADMIN = "admin", "Admin"
        COMMAND = "command", "Command line"
        API = "api", "API"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="consensus_runs")
    dimension = models.CharField(max_length=8, choices=Dimension.choices)
    aggregator = models.CharField(max_length=32)
    fusion = models.CharField(max_length=16, choices=Fusion.choices, default=Fusion.PER_FILM)
    # Parameters as requested plus crowd-kit's defaults, so a run is reproducible from its row.
    params = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(help_text="Counts up per project and dimension, failed runs included.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OK)
    error = models.TextField(blank=True)
    trigger = models.CharField(max_length=12, choices=Trigger.choices, default=Trigger.COMMAND)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    n_tasks = models.PositiveIntegerField(default=0, help_text="(radiograph, area) pairs")
    n_readers = models.PositiveIntegerField(default=0)
    n_labels = models.PositiveIntegerField(default=0, help_text="reader grades fused")
    n_gold = models.PositiveIntegerField(default=0, help_text="adjudicated grades passed as gold")
    iterations = models.PositiveIntegerField(null=True, blank=True)
    converged = models.BooleanField(null=True, blank=True)
    duration_s = models.FloatField(default=0.0)
    few_label_readers = models.JSONField(default=list, blank=True)
    includes_model = models.BooleanField(
        default=False, help_text="Model suggestions entered the fit as one more reader (a lead's decision)."
    )
    # One entry per grade grid (body part and maximum grade), since hands and feet are fused apart.
    parts = models.JSONField(default=list, blank=True)
    comparison = models.JSONField(default=dict, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    # The degeneracy guard (scoring.guard) tripped on the requested aggregator's fit of some
    # grade grid; the reason says why in words and which aggregator made the stored labels instead.
    unreliable = models.BooleanField(default=False, help_text="The requested fit looked degenerate; see the reason.")
    unreliable_reason = models.TextField(blank=True)
    # A run stores only the labels that changed since the previous stored run of its project and
    # dimension (ConsensusLabel.superseded_in); `labels_written` counts the rows it wrote.
    labels_written = models.PositiveIntegerField(default=0, help_text="Label rows this run wrote (what changed).")
    warm_start = models.BooleanField(default=False, help_text="EM started from the previous run's parameters.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "dimension", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "dimension", "version"], name="consensus_run_version_unique")
        ]
        indexes = [models.Index(fields=["project", "dimension", "status", "-version"])]

    def __str__(self) -> str:
        return f"{self.project} {self.dimension} v{self.version} ({self.aggregator}, {self.status})"

    @property
    def labels(self) -> QuerySet[ConsensusLabel]:
        """Every consensus label of this run: the rows it wrote and those of earlier runs it kept."""
        if self.status != self.Status.OK:
            return ConsensusLabel.objects.none()  # a failed run stored no consensus
        return ConsensusLabel.objects.filter(
            run__project_id=self.project_id, run__dimension=self.dimension, run__version__lte=self.version
        ).filter(Q(superseded_in__isnull=True) | Q(superseded_in__gt=self.version))


class ConsensusLabel(models.Model):
    # No database foreign-key constraints: a large run stores hundreds of thousands of labels, and
    # PostgreSQL checks a constraint with one locking lookup per row, which cost more than the
    # whole Dawid-Skene fit. consensus_compute, the only writer, checks the references in bulk
    # instead (it locks the project's radiographs and drops labels of any deleted meanwhile), and
    # deletes still cascade through Django. `run` needs no index of its own: both indexes below
    # start with it.
    # The run that wrote the row. A row holds for every later run of the same project and
    # dimension until `superseded_in`, the version of the first run whose label differs (or that
    # no longer has the area): a recompute writes only what changed, not a copy of every label.
    # Read a run's labels through `ConsensusRun.labels`, never by filtering on `run`.
    run = models.ForeignKey(
        ConsensusRun, on_delete=models.CASCADE, related_name="label_rows", db_constraint=False, db_index=False
    )
    superseded_in = models.PositiveIntegerField(
        null=True, blank=True, help_text="Version of the first later run in which this label no longer holds."
    )
    radiograph = models.ForeignKey(
        Radiograph, on_delete=models.CASCADE, related_name="consensus_labels", db_constraint=False
    )
    area = models.ForeignKey(JointArea, on_delete=models.PROTECT, related_name="consensus_labels", db_constraint=False)
    label = models.PositiveSmallIntegerField()
    posterior = models.JSONField(help_text="Probability of every grade 0..max_grade; sums to 1.")
    is_gold = models.BooleanField(default=False, help_text="Set by a lead's adjudication.")
    n_readers = models.PositiveSmallIntegerField(default=0)
    spread = models.PositiveSmallIntegerField(default=0, help_text="Highest minus lowest reader grade.")
    # Entropy of the posterior divided by log(number of grades): 0 certain, 1 flat. Normalised so
    # that hands (6 grades) and feet (11 grades) rank on one adjudication queue.
    uncertainty = models.FloatField(default=0.0)

    class Meta:
        ordering = ["radiograph", "area__order"]
        constraints = [
            models.UniqueConstraint(fields=["run", "radiograph", "area"], name="consensus_label_unique_per_run")
        ]
        indexes = [models.Index(fields=["run", "-uncertainty"])]

    def __str__(self) -> str:
        return f"{self.area.code}={self.label} (run {self.run_id})"


class ConsensusState(models.Model):
    """The stored consensus of one project and dimension as arrays, beside its label rows.

    What the next run compares its labels with to store only what changed, and the fitted
    parameters it warm-starts from: one row per project and dimension, replaced by every
    successful run (older runs keep their label rows; only the newest arrays are needed).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="consensus_states")
    dimension = models.CharField(max_length=8, choices=Dimension.choices)
    run = models.OneToOneField(ConsensusRun, on_delete=models.CASCADE, related_name="state")
    # numpy's .npz of every grade grid: keys, label, posterior, is_gold, n_readers, spread and
    # the run that wrote each row (see consensus.label_store).
    arrays = models.BinaryField()
    # Per grade grid, the fit's parameters (aggregation.AggregationResult.fit_state).
    fit_states = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "dimension"], name="consensus_state_unique_per_dimension")
        ]

    def __str__(self) -> str:
        return f"consensus state of {self.project} {self.dimension} (run {self.run_id})"


class AgreementReportCache(models.Model):
    """One scale's agreement report, computed once after a consensus run so the lead's page reads
    it instead of recomputing it from every grade (seconds at a million grades)."""

    run = models.ForeignKey(ConsensusRun, on_delete=models.CASCADE, related_name="agreement_reports")
    body_part = models.CharField(max_length=8)
    max_grade = models.PositiveSmallIntegerField()
    model_readers = models.JSONField(default=list, blank=True, help_text="Pseudo-readers the report includes.")
    report = models.JSONField()
    duration_s = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "body_part", "max_grade"], name="agreement_report_cache_unique_per_scale")
        ]

    def __str__(self) -> str:
        return f"agreement report of run {self.run_id} ({self.body_part} 0-{self.max_grade})"


class ReaderEstimate(models.Model):
    """A reader's confusion matrix as the aggregator estimated it, rows = true grade."""

    run = models.ForeignKey(ConsensusRun, on_delete=models.CASCADE, related_name="reader_estimates")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    body_part = models.CharField(max_length=8)
    n_labels = models.PositiveIntegerField()
    few_labels = models.BooleanField(default=False)
    confusion = models.JSONField()
    support = models.JSONField(help_text="Expected tasks behind each row; thin rows are filled uniform.")

    class Meta:
        ordering = ["run", "reader_id", "body_part"]
        constraints = [
            models.UniqueConstraint(fields=["run", "reader", "body_part"], name="reader_estimate_unique_per_run")
        ]

    def __str__(self) -> str:
        return f"{self.reader} in run {self.run_id} ({self.body_part})"


class AdjudicatedLabel(models.Model):
    """A lead's final grade for one area; the newest per area is gold for the next run.

    Rows are never edited: a changed decision is a new row, so the history of decisions stays.
    """

    radiograph = models.ForeignKey(Radiograph, on_delete=models.CASCADE, related_name="adjudications")
    area = models.ForeignKey(JointArea, on_delete=models.PROTECT, related_name="adjudications")
    grade = models.PositiveSmallIntegerField()
    lead = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["radiograph", "area", "-created_at", "-id"]
        indexes = [models.Index(fields=["radiograph", "area", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.area.code}={self.grade} on {self.radiograph_id} by {self.lead}"
