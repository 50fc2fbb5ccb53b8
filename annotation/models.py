"""Studies, radiographs, scoring schemes, reader assignments and grades with their history."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .ra2 import side_code


class BodyPart(models.TextChoices):
    HAND = "hand", "Hand"
    FOOT = "foot", "Foot"


class Laterality(models.TextChoices):
    LEFT = "L", "Left"
    RIGHT = "R", "Right"


class Dimension(models.TextChoices):
    EROSION = "erosion", "Erosion"
    JSN = "jsn", "Joint space narrowing"


class Scheme(models.Model):
    """A scoring scheme: rows loaded from `annotation/data/schemes.json`, so a variant needs no code."""

    key = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # What the two grid columns are called where a scheme gives them another name (Larsen's one
    # grade per joint lives in the erosion column and is called "Larsen grade"), e.g. {"erosion": "Larsen"}.
    dimension_labels = models.JSONField(default=dict, blank=True)
    # The export's total columns: [{"column": "Overall_erosion", "dimensions": ["erosion"]}, ...];
    # empty means the RA2-DREAM three (Overall_Tol, Overall_erosion, Overall_narrowing).
    totals = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return self.key


class Joint(models.Model):
    """A point the model localises on a radiograph; it carries an erosion area, a JSN area or both."""

    scheme = models.ForeignKey(Scheme, on_delete=models.CASCADE, related_name="joints")
    body_part = models.CharField(max_length=8, choices=BodyPart.choices)
    name = models.SlugField(max_length=32)
    label = models.CharField(max_length=100)
    order = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["scheme", "body_part", "order"]
        constraints = [
            models.UniqueConstraint(fields=["scheme", "body_part", "name"], name="joint_unique_per_scheme")
        ]

    def __str__(self) -> str:
        return f"{self.scheme.key}:{self.body_part}:{self.name}"


class JointArea(models.Model):
    """A scored cell: one joint and one dimension, with an RA2-DREAM code such as `pip_E__2`."""

    scheme = models.ForeignKey(Scheme, on_delete=models.CASCADE, related_name="areas")
    joint = models.ForeignKey(Joint, on_delete=models.CASCADE, related_name="areas")
    body_part = models.CharField(max_length=8, choices=BodyPart.choices)
    code = models.CharField(max_length=32)
    dimension = models.CharField(max_length=8, choices=Dimension.choices)
    group = models.SlugField(max_length=16)
    # Grades are stored, fused and modelled as ordinal levels 0..max_grade; the grade a reader sees
    # and an export writes is level x grade_step (Genant erosion: 8 levels of 0.5, so 0-3.5).
    max_grade = models.PositiveSmallIntegerField(help_text="Highest level; the highest grade is max_grade x grade_step")
    grade_step = models.DecimalField(max_digits=4, decimal_places=2, default=1)
    # How many times the area counts in the totals (Larsen counts the wrist unit five times).
    total_weight = models.PositiveSmallIntegerField(default=1)
    label = models.CharField(max_length=100)
    order = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["scheme", "body_part", "dimension", "order"]
        constraints = [
            models.UniqueConstraint(fields=["scheme", "body_part", "code"], name="area_unique_per_scheme")
        ]

    def __str__(self) -> str:
        return f"{self.scheme.key}:{self.body_part}:{self.code}"


class Project(models.Model):
    class Suggestions(models.TextChoices):
        OFF = "off", "Off"
        ASSISTED = "assisted", "Assisted (model values pre-filled)"

    class ReadingMode(models.TextChoices):
        INDEPENDENT = "independent", _("Independent (each film alone)")
        PAIRED_KNOWN = "paired_known", _("Paired, order known")
        PAIRED_HIDDEN = "paired_hidden", _("Paired, order hidden")

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    description = models.TextField(blank=True)
    scheme = models.ForeignKey(Scheme, on_delete=models.PROTECT, related_name="projects")
    readers_per_radiograph = models.PositiveSmallIntegerField(default=3)
    blinded = models.BooleanField(
        default=True, help_text="Readers never see another reader's grades, the consensus or agreement figures."
    )
    suggestions = models.CharField(max_length=8, choices=Suggestions.choices, default=Suggestions.OFF)
    # Accept-all confirms only the cells the reader has looked at, so a read cannot be waved through.
    suggestions_need_look = models.BooleanField(
        default=True, help_text="In assisted reading, 'accept all' confirms only suggestions of cells the reader has visited."
    )
    # How a patient's films are read: alone, or side by side with the order known or hidden.
    reading_mode = models.CharField(max_length=16, choices=ReadingMode.choices, default=ReadingMode.INDEPENDENT)
    # Only in order-known paired reading, and only the consensus: never another reader's own grades.
    show_previous_consensus = models.BooleanField(
        default=False,
        help_text="In paired reading with the order known, show beside each cell the consensus grade of the patient's previous film.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class ReadingUnit(models.TextChoices):
        IMAGE = "image", "One radiograph at a time"
        VISIT = "visit", "One patient visit at a time (all its radiographs in one table)"

    # By visit, the worklist offers a patient visit and the reader scores it on one form, as on paper.
    reading_unit = models.CharField(max_length=8, choices=ReadingUnit.choices, default=ReadingUnit.IMAGE)

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    class Role(models.TextChoices):
        READER = "reader", "Reader"
        LEAD = "lead", "Lead"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=8, choices=Role.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "project"], name="one_membership_per_project")]

    def __str__(self) -> str:
        return f"{self.user} {self.role} in {self.project}"


class Patient(models.Model):
    """A pseudonymous patient; no identifying value is ever stored."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="patients")
    pseudonym = models.CharField(max_length=64)

    class Meta:
        ordering = ["project", "pseudonym"]
        constraints = [models.UniqueConstraint(fields=["project", "pseudonym"], name="pseudonym_unique_per_project")]

    def __str__(self) -> str:
        return self.pseudonym


class Visit(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="visits")
    timepoint = models.CharField(max_length=32, default="baseline")
    # Shifted by a per-patient offset during ingestion, so intervals survive and real dates do not.
    acquired_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["patient", "timepoint"]
        constraints = [models.UniqueConstraint(fields=["patient", "timepoint"], name="timepoint_unique_per_patient")]

    def __str__(self) -> str:
        return f"{self.patient}/{self.timepoint}"


def radiograph_upload_path(instance: "Radiograph", filename: str) -> str:
    # Named by checksum, never by the uploaded name, which may carry a patient's name.
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else "png"
    return f"radiographs/{instance.project_id}/{instance.checksum[:2]}/{instance.checksum}.{suffix}"


class Radiograph(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting for readers"
        IN_READING = "in_reading", "Being read"
        READ = "read", "Read by all assigned readers"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="radiographs")
    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="radiographs")
    body_part = models.CharField(max_length=8, choices=BodyPart.choices, default=BodyPart.HAND)
    laterality = models.CharField(max_length=1, choices=Laterality.choices)
    image = models.FileField(upload_to=radiograph_upload_path)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the stored pixels' file")
    metadata = models.JSONField(default=dict, blank=True, help_text="Whitelisted technical tags only")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.WAITING)
    submitted_reads = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "id"]
        constraints = [models.UniqueConstraint(fields=["project", "checksum"], name="radiograph_unique_by_checksum")]

    def __str__(self) -> str:
        return f"{self.visit} {self.laterality}{self.body_part}"

    @property
    def side(self) -> str:
        """'LH', 'RH', 'LF' or 'RF' (RA2-DREAM's image suffix)."""
        return side_code(body_part=self.body_part, laterality=self.laterality)


class Landmark(models.Model):
    class Source(models.TextChoices):
        MODEL = "model", "Model"
        READER = "reader", "Reader correction"
        IMPORT = "import", "Imported"

    radiograph = models.ForeignKey(Radiograph, on_delete=models.CASCADE, related_name="landmarks")
    joint = models.ForeignKey(Joint, on_delete=models.CASCADE, related_name="+")
    x = models.FloatField()
    y = models.FloatField()
    source = models.CharField(max_length=8, choices=Source.choices)
    confidence = models.FloatField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["radiograph", "joint__order"]
        indexes = [models.Index(fields=["radiograph", "source"])]

    def __str__(self) -> str:
        return f"{self.joint.name}@{self.radiograph_id} ({self.source})"


class Assignment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_PROGRESS = "in_progress", "In progress"
        SUBMITTED = "submitted", "Submitted"

    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    radiograph = models.ForeignKey(Radiograph, on_delete=models.CASCADE, related_name="assignments")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    # Lower comes first; the active-learning ranking rewrites it after each model promotion.
    priority = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    seconds_spent = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["priority", "id"]
        constraints = [models.UniqueConstraint(fields=["reader", "radiograph"], name="one_assignment_per_reader")]

    def __str__(self) -> str:
        return f"{self.reader} on {self.radiograph_id} ({self.status})"


class Grade(models.Model):
    class Source(models.TextChoices):
        MANUAL = "manual", "Entered by the reader"
        ACCEPTED = "accepted", "Suggestion accepted"
        EDITED = "edited", "Suggestion edited"

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="grades")
    area = models.ForeignKey(JointArea, on_delete=models.PROTECT, related_name="grades")
    value = models.PositiveSmallIntegerField()
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.MANUAL)
    # Optimistic concurrency: a save names the version it edits; a stale version is refused.
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["assignment", "area__order"]
        constraints = [models.UniqueConstraint(fields=["assignment", "area"], name="one_grade_per_area")]

    def __str__(self) -> str:
        return f"{self.area.code}={self.value} v{self.version}"


class GradeChange(models.Model):
    """Append-only history: who changed which grade, when, from what to what."""

    grade = models.ForeignKey(Grade, on_delete=models.CASCADE, related_name="history")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    changed_at = models.DateTimeField(auto_now_add=True)
    old_value = models.PositiveSmallIntegerField(null=True, blank=True)
    new_value = models.PositiveSmallIntegerField()
    source = models.CharField(max_length=8, choices=Grade.Source.choices)
    version = models.PositiveIntegerField()

    class Meta:
        ordering = ["grade", "version"]
        constraints = [models.UniqueConstraint(fields=["grade", "version"], name="one_change_per_version")]

    def __str__(self) -> str:
        return f"{self.grade_id}: {self.old_value} -> {self.new_value} (v{self.version})"


class ServedSuggestion(models.Model):
    """The model's suggestion as the reader's page received it for one area of one reading.

    The server decides a grade's source (accepted, edited, manual) from this row, never from the
    client's word, and the suggestion figures count a suggestion as seen only where one exists.
    The newest suggestion served replaces an older one for the same area.
    """

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="served_suggestions")
    area = models.ForeignKey(JointArea, on_delete=models.CASCADE, related_name="+")
    label = models.PositiveSmallIntegerField()
    model_version = models.CharField(max_length=64)
    served_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["assignment", "area"], name="one_served_suggestion_per_area")]

    def __str__(self) -> str:
        return f"{self.area.code}={self.label} served to {self.assignment_id} ({self.model_version})"
