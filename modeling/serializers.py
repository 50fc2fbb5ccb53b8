"""The modeling API's validation boundary and the shapes of its answers."""
from __future__ import annotations

from rest_framework import serializers

from .models import ModelVersion, TrainingRun

# --------------------------------------------------------------------------- input


class VersionQuerySerializer(serializers.Serializer):
    """Context: `project`. An absent version means every version's suggestions."""

    version = serializers.IntegerField(required=False, min_value=1, help_text="a version number of this project")

    def validate_version(self, number: int) -> ModelVersion:
        version = ModelVersion.objects.filter(project=self.context["project"], number=number).first()
        if version is None:
            raise serializers.ValidationError(f"This project has no model version {number}.")
        return version


# --------------------------------------------------------------------------- output


class TrainingRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = ["status", "device", "epochs", "progress", "queued_at", "started_at", "finished_at", "error"]


class VersionSummarySerializer(serializers.Serializer):
    number = serializers.IntegerField(source="version.number")
    status = serializers.ChoiceField(source="version.status", choices=ModelVersion.Status.choices)
    label_source = serializers.CharField(source="version.label_source")
    created_at = serializers.DateTimeField(source="version.created_at")
    trained_at = serializers.DateTimeField(source="version.trained_at", allow_null=True)
    promoted_at = serializers.DateTimeField(source="version.promoted_at", allow_null=True)
    evaluated_on = serializers.CharField(allow_null=True, help_text="the held-out part the figures come from: test or val")
    train_hands = serializers.IntegerField(allow_null=True)
    localisation_accuracy = serializers.FloatField(allow_null=True)
    erosion_weighted_accuracy = serializers.FloatField(allow_null=True)
    jsn_weighted_accuracy = serializers.FloatField(allow_null=True)
    promotion = serializers.DictField(allow_null=True, help_text="the automatic promotion decision, with both scores")
    training = TrainingRunSerializer(allow_null=True)


class SecondsSummarySerializer(serializers.Serializer):
    reads = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True)
    median = serializers.FloatField(allow_null=True)


class KeptFiguresSerializer(serializers.Serializer):
    reference = serializers.CharField()
    compared = serializers.IntegerField()
    wrong = serializers.IntegerField(help_text="graded areas whose served suggestion differs from the reference")
    wrong_kept = serializers.IntegerField()
    wrong_kept_rate = serializers.FloatField(allow_null=True)
    right = serializers.IntegerField()
    right_kept = serializers.IntegerField()
    right_kept_rate = serializers.FloatField(allow_null=True)


class SuggestionAnalyticsSerializer(serializers.Serializer):
    graded_areas_with_suggestion = serializers.IntegerField()
    accepted = serializers.IntegerField()
    edited = serializers.IntegerField()
    manual = serializers.IntegerField()
    acceptance_rate = serializers.FloatField(allow_null=True)
    edit_rate = serializers.FloatField(allow_null=True)
    manual_rate = serializers.FloatField(allow_null=True)
    mean_edit_distance = serializers.FloatField(allow_null=True)
    edit_distances = serializers.DictField(child=serializers.IntegerField(), help_text="grades moved by d: count")
    seconds_with_suggestions = SecondsSummarySerializer()
    seconds_without_suggestions = SecondsSummarySerializer()
    against_other_readers = KeptFiguresSerializer()
    against_gold = KeptFiguresSerializer()
    single_reader_areas = serializers.IntegerField(help_text="graded areas left out of the leave-one-out figures: no other reader")
    tied_other_readers = serializers.IntegerField(help_text="graded areas left out: the other readers tie")


class TrainingStartSerializer(serializers.Serializer):
    """The training page's form: how to train a new version."""

    epochs = serializers.IntegerField(min_value=1, max_value=1000)
    device = serializers.ChoiceField(choices=[("cpu", "CPU"), ("cuda", "GPU (CUDA)")])
    time_budget_min = serializers.FloatField(
        required=False, allow_null=True, min_value=0.1, max_value=24 * 60,
        help_text="minutes of training at most; empty: no limit",
    )
    labels = serializers.ChoiceField(choices=TrainingRun.Labels.choices)
    auto_promote = serializers.BooleanField(required=False, default=False)

    def to_internal_value(self, data):
        # An empty field of the HTML form means "no limit", not an invalid number.
        if hasattr(data, "get") and data.get("time_budget_min") in ("", None):
            data = {key: data.get(key) for key in data if key != "time_budget_min"}
        return super().to_internal_value(data)


class HeatmapMethodSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    default = serializers.BooleanField()
