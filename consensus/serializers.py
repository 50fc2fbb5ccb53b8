"""The consensus API's validation boundary and the shapes of its answers."""
from __future__ import annotations

from rest_framework import serializers

from annotation.models import Dimension, JointArea, Project, Radiograph

from .aggregation import AGGREGATORS
from .models import AdjudicatedLabel, ConsensusRun, ConsensusSettings
from .selectors import Scale

# --------------------------------------------------------------------------- input


class ScaleQuerySerializer(serializers.Serializer):
    """Context: `scales` (the project's Scale list) and `groups`."""

    scale = serializers.CharField(required=False, help_text="e.g. erosion-hand; the first scale when absent")
    group = serializers.CharField(required=False, allow_blank=True, help_text="pip, mcp, wrist, ...; all when absent")

    def validate_scale(self, key: str) -> Scale:
        scales = {scale.key: scale for scale in self.context["scales"]}
        if key not in scales:
            raise serializers.ValidationError(f"'{key}' is not a scale of this project; choose one of {', '.join(scales)}.")
        return scales[key]

    def validate_group(self, group: str) -> str | None:
        if not group:
            return None
        if group not in self.context["groups"]:
            raise serializers.ValidationError(f"'{group}' is not a joint group of this project; choose one of {', '.join(self.context['groups'])}.")
        return group

    def validate(self, attrs: dict) -> dict:
        attrs.setdefault("scale", self.context["scales"][0])
        attrs.setdefault("group", None)
        return attrs


class DimensionQuerySerializer(serializers.Serializer):
    dimension = serializers.ChoiceField(choices=Dimension.choices, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=500, default=25)


class LabelQuerySerializer(serializers.Serializer):
    dimension = serializers.ChoiceField(choices=Dimension.choices)


class RecomputeSerializer(serializers.Serializer):
    aggregator = serializers.ChoiceField(choices=AGGREGATORS, required=False)


class AdjudicationCreateSerializer(serializers.Serializer):
    """Context: `project`. Resolves the radiograph and the area and checks the grade's range."""

    radiograph = serializers.IntegerField()
    area = serializers.CharField(max_length=32, help_text="area code, e.g. pip_E__2")
    grade = serializers.IntegerField(min_value=0)
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    def validate_radiograph(self, pk: int) -> Radiograph:
        project: Project = self.context["project"]
        radiograph = Radiograph.objects.filter(project=project, pk=pk).first()
        if radiograph is None:
            raise serializers.ValidationError(f"Radiograph {pk} is not in this project.")
        return radiograph

    def validate(self, attrs: dict) -> dict:
        radiograph: Radiograph = attrs["radiograph"]
        area = JointArea.objects.filter(
            scheme_id=radiograph.project.scheme_id, body_part=radiograph.body_part, code=attrs["area"]
        ).first()
        if area is None:
            raise serializers.ValidationError({"area": f"'{attrs['area']}' is not a joint area of this radiograph."})
        if attrs["grade"] > area.max_grade:
            raise serializers.ValidationError(
                {"grade": f"{area.get_dimension_display()} at {area.label} ({area.code}) is graded 0-{area.max_grade}; got {attrs['grade']}."}
            )
        attrs["area"] = area
        return attrs


# --------------------------------------------------------------------------- output


class ConsensusRunSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)  # null: automatic runs

    class Meta:
        model = ConsensusRun
        fields = [
            "id", "dimension", "version", "aggregator", "params", "status", "error", "trigger", "requested_by",
            "n_tasks", "n_readers", "n_labels", "n_gold", "iterations", "converged", "duration_s",
            "few_label_readers", "includes_model", "parts", "library_versions", "unreliable", "unreliable_reason",
            "created_at",
        ]


class ConsensusSettingsSerializer(serializers.ModelSerializer):
    pending = serializers.BooleanField(read_only=True)

    class Meta:
        model = ConsensusSettings
        fields = ["auto_recompute", "aggregator", "delay_seconds", "max_wait_seconds", "requested_at", "pending"]


class ScaleSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    dimension = serializers.CharField()
    body_part = serializers.CharField()
    max_grade = serializers.IntegerField()


class ReaderAgreementSerializer(serializers.Serializer):
    reader = serializers.CharField()
    reader_id = serializers.IntegerField(allow_null=True)
    is_model = serializers.BooleanField()
    n = serializers.IntegerField()
    weighted_accuracy = serializers.FloatField(allow_null=True)
    within_one = serializers.FloatField(allow_null=True, help_text="plain share within one grade of the consensus")
    within_one_balanced = serializers.FloatField(allow_null=True, help_text="within-one averaged over consensus grades")
    kappa = serializers.FloatField(allow_null=True, help_text="quadratic weighted kappa against the consensus")
    confusion = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()), help_text="rows = consensus grade")
    confusion_normalised = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))


class ReaderEstimateSerializer(serializers.Serializer):
    reader = serializers.CharField()
    reader_id = serializers.IntegerField()
    n_labels = serializers.IntegerField()
    few_labels = serializers.BooleanField()
    confusion = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()), help_text="rows = true grade")
    support = serializers.ListField(child=serializers.FloatField())


class ReaderPairSerializer(serializers.Serializer):
    reader_a = serializers.CharField()
    reader_b = serializers.CharField()
    n_shared = serializers.IntegerField()
    exact = serializers.FloatField(allow_null=True)
    kappa = serializers.FloatField(allow_null=True)
    confusion = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()), help_text="rows = reader_a's grade")


class ReliabilitySerializer(serializers.Serializer):
    alpha = serializers.FloatField(allow_null=True)
    alpha_units = serializers.IntegerField()
    icc = serializers.FloatField(allow_null=True)
    icc_ci_low = serializers.FloatField(allow_null=True)
    icc_ci_high = serializers.FloatField(allow_null=True)
    sem = serializers.FloatField(allow_null=True)
    sdc = serializers.FloatField(allow_null=True)
    icc_subjects = serializers.IntegerField()
    icc_readers = serializers.ListField(child=serializers.CharField())
    icc_note = serializers.CharField()


class AgreementReportSerializer(serializers.Serializer):
    scale = ScaleSerializer()
    group = serializers.CharField(allow_null=True)
    run = ConsensusRunSerializer(allow_null=True)
    n_units = serializers.IntegerField()
    readers = ReaderAgreementSerializer(many=True)
    estimates = ReaderEstimateSerializer(many=True)
    pairs = ReaderPairSerializer(many=True)
    reliability = ReliabilitySerializer()


class ChangedTaskSerializer(serializers.Serializer):
    patient = serializers.CharField()
    side = serializers.CharField()
    area_code = serializers.CharField()
    label = serializers.IntegerField()
    others = serializers.DictField(child=serializers.IntegerField())
    grades = serializers.ListField(child=serializers.IntegerField())


class AggregatorComparisonSerializer(serializers.Serializer):
    dimension = serializers.CharField()
    run = serializers.IntegerField(source="run.pk")
    aggregators = serializers.ListField(child=serializers.CharField())
    n_tasks = serializers.IntegerField()
    n_changed = serializers.IntegerField()
    matrix = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField(allow_null=True)))
    examples = ChangedTaskSerializer(many=True)


class DisputedItemSerializer(serializers.Serializer):
    radiograph_id = serializers.IntegerField()
    patient = serializers.CharField()
    timepoint = serializers.CharField()
    side = serializers.CharField()
    area_code = serializers.CharField()
    area_label = serializers.CharField()
    dimension = serializers.CharField()
    max_grade = serializers.IntegerField()
    label = serializers.IntegerField()
    probability = serializers.FloatField()
    uncertainty = serializers.FloatField()
    spread = serializers.IntegerField()
    no_reader_agrees = serializers.BooleanField()
    reader_grades = serializers.SerializerMethodField()

    def get_reader_grades(self, item) -> list[dict]:
        return [{"reader": reader, "grade": grade} for reader, grade in item.reader_grades]


class ConsensusLabelSerializer(serializers.Serializer):
    radiograph_id = serializers.IntegerField()
    patient = serializers.CharField(source="radiograph.visit.patient.pseudonym")
    side = serializers.SerializerMethodField()
    area = serializers.CharField(source="area.code")
    label = serializers.IntegerField()
    posterior = serializers.ListField(child=serializers.FloatField())
    is_gold = serializers.BooleanField()
    uncertainty = serializers.FloatField()

    def get_side(self, label) -> str:
        return label.radiograph.side


class AdjudicatedLabelSerializer(serializers.ModelSerializer):
    patient = serializers.CharField(source="radiograph.visit.patient.pseudonym")
    side = serializers.SerializerMethodField()
    area = serializers.CharField(source="area.code")
    lead = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = AdjudicatedLabel
        fields = ["id", "radiograph", "patient", "side", "area", "grade", "lead", "note", "created_at"]

    def get_side(self, label) -> str:
        return label.radiograph.side
