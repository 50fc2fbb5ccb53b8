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


class HeatmapMethodSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    default = serializers.BooleanField()
