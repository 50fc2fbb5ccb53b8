"""Reads of the modeling app: the serving version and its suggestions."""
from __future__ import annotations

from annotation.models import Project, Radiograph

from .models import ModelVersion, Suggestion


def model_version_active(*, project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, status=ModelVersion.Status.ACTIVE).first()


def suggestions_for_radiograph(*, radiograph: Radiograph) -> tuple[ModelVersion | None, dict[str, dict]]:
    """The active version's suggestions by area code: `{code: {"label": g, "distribution": [p0..pk]}}`.

    Empty when the project does not use suggestions: a suggestion-off project never shows model values.
    """
    project = radiograph.project
    if project.suggestions != Project.Suggestions.ASSISTED:
        return None, {}
    version = model_version_active(project=project)
    if version is None:
        return None, {}
    rows = Suggestion.objects.filter(radiograph=radiograph, model_version=version).select_related("area")
    return version, {row.area.code: {"label": row.label, "distribution": row.distribution} for row in rows}
