"""The API's validation boundary: every 400 is raised here, naming the field."""
from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from rest_framework import serializers

from .imaging import ImageRefused
from .ingestion import CheckedUpload
from .models import Assignment, Grade, JointArea, Landmark, Project, Radiograph
from .sources import (
    TIMEPOINT_PATTERN,
    FileTarget,
    ManifestError,
    TargetMissing,
    manifest_read,
    max_file_bytes,
    target_from_filename,
)

MAX_SECONDS_PER_READ = 24 * 3600


class ProjectSerializer(serializers.ModelSerializer):
    scheme = serializers.SlugRelatedField(slug_field="key", read_only=True)
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "slug", "description", "scheme", "readers_per_radiograph", "blinded", "suggestions", "reading_unit", "role"]

    def get_role(self, project: Project) -> str | None:
        return self.context.get("roles", {}).get(project.pk)


class AreaSerializer(serializers.ModelSerializer):
    joint = serializers.CharField(source="joint.name")

    class Meta:
        model = JointArea
        # Grades are exchanged as levels 0..max_grade; the grade shown is level x grade_step.
        fields = ["code", "dimension", "group", "joint", "label", "max_grade", "grade_step", "total_weight"]


class LandmarkSerializer(serializers.ModelSerializer):
    joint = serializers.CharField(source="joint.name")

    class Meta:
        model = Landmark
        fields = ["joint", "x", "y", "source", "confidence"]


class GradeSerializer(serializers.ModelSerializer):
    area = serializers.CharField(source="area.code")
    reader = serializers.CharField(source="assignment.reader.username")

    class Meta:
        model = Grade
        fields = ["area", "value", "version", "source", "reader", "updated_at"]


class OwnGradeSerializer(GradeSerializer):
    class Meta(GradeSerializer.Meta):
        fields = ["area", "value", "version", "source", "updated_at"]


class RadiographSerializer(serializers.ModelSerializer):
    patient = serializers.CharField(source="visit.patient.pseudonym")
    timepoint = serializers.CharField(source="visit.timepoint", allow_null=True, help_text="null for readers in projects read in hidden order")
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = Radiograph
        fields = ["id", "project", "patient", "timepoint", "body_part", "laterality", "width", "height", "status", "image_url"]

    def get_image_url(self, radiograph: Radiograph) -> str:
        return reverse("api-radiograph-image", args=[radiograph.pk])

    def to_representation(self, radiograph: Radiograph) -> dict:
        data = super().to_representation(radiograph)
        # Read in hidden order, a reader must not learn which visit a film is; leads (context
        # `show_timepoint`) still do.
        if radiograph.project.reading_mode == Project.ReadingMode.PAIRED_HIDDEN and not self.context.get("show_timepoint"):
            data["timepoint"] = None
        return data


class AssignmentSummarySerializer(serializers.ModelSerializer):
    radiograph = RadiographSerializer(read_only=True)

    class Meta:
        model = Assignment
        fields = ["id", "status", "priority", "started_at", "submitted_at", "seconds_spent", "radiograph"]


class LeadAssignmentSerializer(AssignmentSummarySerializer):
    reader = serializers.CharField(source="reader.username")

    class Meta(AssignmentSummarySerializer.Meta):
        fields = AssignmentSummarySerializer.Meta.fields + ["reader"]


class GradeItemSerializer(serializers.Serializer):
    """One cell of a bulk save. Context: `areas`, the radiograph's scored areas by code."""

    area = serializers.CharField(max_length=32)
    value = serializers.IntegerField()
    version = serializers.IntegerField(min_value=0)
    source = serializers.ChoiceField(choices=Grade.Source.choices, default=Grade.Source.MANUAL)

    def validate_area(self, code: str) -> JointArea:
        areas: dict[str, JointArea] = self.context["areas"]
        if code in areas:
            return areas[code]
        other_dimension = code.replace("_E__", "_J__") if "_E__" in code else code.replace("_J__", "_E__")
        if other_dimension in areas:
            area = areas[other_dimension]
            raise serializers.ValidationError(
                f"'{code}' is not scored in this scheme: {area.label} is graded for {area.get_dimension_display().lower()} only."
            )
        raise serializers.ValidationError(f"'{code}' is not a joint area of this radiograph's scheme.")

    def validate(self, attrs: dict) -> dict:
        area: JointArea = attrs["area"]
        if not 0 <= attrs["value"] <= area.max_grade:
            raise serializers.ValidationError(
                {"value": f"{area.get_dimension_display()} at {area.label} ({area.code}) is graded 0-{area.max_grade}"
                 + (f" in levels (grades 0-{area.max_grade * float(area.grade_step):g} in steps of {float(area.grade_step):g})" if area.grade_step != 1 else "")
                 + f"; got {attrs['value']}."}
            )
        return attrs


class GradeBulkSaveSerializer(serializers.Serializer):
    """Context: `assignment` and `areas`."""

    grades = GradeItemSerializer(many=True, allow_empty=False, min_length=1, max_length=200)

    def validate(self, attrs: dict) -> dict:
        assignment: Assignment = self.context["assignment"]
        if assignment.status == Assignment.Status.SUBMITTED:
            raise serializers.ValidationError({"assignment": "This assignment is already submitted; its grades are final."})
        seen: set[str] = set()
        for item in attrs["grades"]:
            code = item["area"].code
            if code in seen:
                raise serializers.ValidationError({"grades": f"Area '{code}' appears more than once in one request."})
            seen.add(code)
        return attrs


class AssignmentSubmitSerializer(serializers.Serializer):
    """Context: `assignment` and `areas`."""

    seconds_spent = serializers.IntegerField(min_value=0, max_value=MAX_SECONDS_PER_READ, default=0)

    def validate(self, attrs: dict) -> dict:
        assignment: Assignment = self.context["assignment"]
        if assignment.status == Assignment.Status.SUBMITTED:
            raise serializers.ValidationError({"assignment": "This assignment is already submitted."})
        graded = set(assignment.grades.values_list("area__code", flat=True))
        missing = [code for code in self.context["areas"] if code not in graded]
        if missing:
            raise serializers.ValidationError(
                {"grades": f"{len(missing)} area(s) are not graded yet: {', '.join(missing[:10])}" + ("…" if len(missing) > 10 else "")}
            )
        return attrs


def radiograph_name(radiograph: Radiograph) -> str:
    """How a 4xx names one radiograph of a visit: its side, its body part and its id."""
    side = "Left" if radiograph.laterality == "L" else "Right"
    return f"{side} {radiograph.body_part} (radiograph {radiograph.pk})"


class VisitReadSerializer(serializers.Serializer):
    assignment = serializers.IntegerField()
    grades = serializers.ListField(child=serializers.DictField(), max_length=200, default=list)


class VisitSubmitSerializer(serializers.Serializer):
    """A whole visit in one request: each read's grades still to save, then every read submitted.

    Context: `reads`, the reader's assignments on the visit by pk. Each refusal names the radiograph
    (side, body part, id) and the area, so a reader of four images knows which cell to fix.
    """

    reads = VisitReadSerializer(many=True, max_length=8, default=list)
    seconds_spent = serializers.IntegerField(min_value=0, max_value=MAX_SECONDS_PER_READ, default=0)

    def validate(self, attrs: dict) -> dict:
        reads: dict[int, Assignment] = self.context["reads"]
        if all(read.status == Assignment.Status.SUBMITTED for read in reads.values()):
            raise serializers.ValidationError({"assignment": "This visit is already submitted; its grades are final."})
        items: dict[int, list] = {}
        errors: list[str] = []
        for entry in attrs["reads"]:
            assignment = reads.get(entry["assignment"])
            if assignment is None:
                raise serializers.ValidationError(
                    {"reads": f"Assignment {entry['assignment']} is not one of your radiographs of this visit."}
                )
            name = radiograph_name(assignment.radiograph)
            if assignment.pk in items:
                raise serializers.ValidationError({"reads": f"{name} appears more than once in one request."})
            if assignment.status == Assignment.Status.SUBMITTED and entry["grades"]:
                raise serializers.ValidationError({"reads": f"{name} is already submitted; its grades are final."})
            areas = {area.code: area for area in JointArea.objects.filter(
                scheme_id=assignment.radiograph.project.scheme_id, body_part=assignment.radiograph.body_part
            ).select_related("joint")}
            grades = GradeItemSerializer(data=entry["grades"], many=True, context={"areas": areas})
            if not grades.is_valid():
                # Keyed by the failing items' positions (a list of all items in older DRF versions).
                failures = grades.errors.items() if isinstance(grades.errors, dict) else enumerate(grades.errors)
                for index, error in failures:
                    raw = entry["grades"][index]
                    for field, messages in (error or {}).items():
                        area = raw.get("area") if isinstance(raw, dict) else None
                        where = f"{name}, {area}" if area and field != "area" else name
                        errors += [f"{where}: {field}: {message}" for message in messages]
                continue
            codes = [item["area"].code for item in grades.validated_data]
            if len(codes) != len(set(codes)):
                raise serializers.ValidationError({"reads": f"{name}: an area appears more than once."})
            items[assignment.pk] = grades.validated_data
        if errors:
            raise serializers.ValidationError({"reads": errors})
        attrs["items"] = items
        return attrs


class LandmarkCorrectionItemSerializer(serializers.Serializer):
    """One moved marker. Context: `joints` (the scheme's joints by name) and `radiograph`."""

    joint = serializers.CharField(max_length=32)
    x = serializers.FloatField(min_value=0)
    y = serializers.FloatField(min_value=0)

    def validate_joint(self, name: str):
        joints = self.context["joints"]
        if name not in joints:
            raise serializers.ValidationError(f"'{name}' is not a joint of this radiograph's scheme.")
        return joints[name]

    def validate(self, attrs: dict) -> dict:
        radiograph: Radiograph = self.context["radiograph"]
        if attrs["x"] > radiograph.width or attrs["y"] > radiograph.height:
            raise serializers.ValidationError(
                {"x": f"The point ({attrs['x']:.0f}, {attrs['y']:.0f}) lies outside the {radiograph.width} x {radiograph.height} image."}
            )
        return attrs


class LandmarkCorrectionSerializer(serializers.Serializer):
    """Context: `joints`, `radiograph` and `assignment`."""

    landmarks = LandmarkCorrectionItemSerializer(many=True, allow_empty=False, min_length=1, max_length=100)

    def validate(self, attrs: dict) -> dict:
        if self.context["assignment"].status == Assignment.Status.SUBMITTED:
            raise serializers.ValidationError({"assignment": "This assignment is already submitted; its landmarks are final."})
        names = [item["joint"].name for item in attrs["landmarks"]]
        if len(names) != len(set(names)):
            raise serializers.ValidationError({"landmarks": "A joint appears more than once in one request."})
        return attrs


# Ingestion -------------------------------------------------------------------------------------

# Bulk imports go through `manage.py import_radiographs`; an upload request stays small enough to
# decode whole before anything is stored.
MAX_FILES_PER_UPLOAD = 20


class RadiographUploadSerializer(serializers.Serializer):
    """Multipart upload of radiographs. Every file is decoded and checked here, at the boundary,
    so one refused file refuses the request and nothing is stored; the 400 names each bad file:
    `{"files": {"scan.png": ["The image is truncated or corrupt (...)."]}}`.
    """

    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True), allow_empty=False, min_length=1, max_length=MAX_FILES_PER_UPLOAD
    )
    manifest = serializers.FileField(required=False, help_text="CSV: file, patient, timepoint, laterality, body_part")
    timepoint = serializers.RegexField(TIMEPOINT_PATTERN, max_length=32, default="baseline")
    allow_colour = serializers.BooleanField(default=False, help_text="Import colour photographs as grey instead of refusing them.")

    def validate_manifest(self, upload) -> dict:
        try:
            return manifest_read(upload.read().decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise serializers.ValidationError("The manifest is not UTF-8 text.") from None
        except ManifestError as exc:
            raise serializers.ValidationError(exc.errors) from None

    def validate(self, attrs: dict) -> dict:
        rows = attrs.get("manifest")
        max_pixels = settings.MAX_IMAGE_PIXELS
        checked: list[CheckedUpload] = []
        errors: dict[str, list[str]] = {}
        for upload in attrs["files"]:
            name = upload.name
            if name in errors or any(item.name == name for item in checked):
                errors[name] = ["The same file name appears twice in one upload."]
                continue
            if rows is not None and name not in rows:
                errors[name] = ["Not listed in the manifest."]
                continue
            if upload.size == 0:
                errors[name] = ["The file is empty (0 bytes)."]
                continue
            if upload.size > max_file_bytes(max_pixels):
                errors[name] = [f"The file is too large ({upload.size:,} bytes) for an image of at most {max_pixels:,} pixels."]
                continue
            declared = (rows[name].target if rows is not None else FileTarget()).over(target_from_filename(name) or FileTarget())
            item = CheckedUpload(
                name=name, upload=upload, declared=declared, default_timepoint=attrs["timepoint"], allow_colour=attrs["allow_colour"]
            )
            try:
                # Decoded to check it, then let go: only one file's pixels are held at a time, and the
                # store step decodes each again (radiographs_ingest).
                item.prepare()
            except (ImageRefused, TargetMissing) as refusal:
                errors[name] = [str(refusal)]
                continue
            checked.append(item)
        if errors:
            raise serializers.ValidationError({"files": errors})
        attrs["checked"] = checked
        return attrs
