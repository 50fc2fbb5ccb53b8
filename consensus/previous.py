"""The consensus of a patient's previous film, shown beside each cell in order-known paired reading.

Only the fused consensus is ever shown, never another reader's own grades, so a blinded project
stays blinded; and only with the order known, where the reader knows which film came first anyway.
"""
from __future__ import annotations

import datetime

from annotation.models import Dimension, Project, Radiograph

from .models import ConsensusRun


def _when(radiograph: Radiograph) -> tuple:
    visit = radiograph.visit
    return (visit.acquired_on or datetime.date.max, visit.timepoint, radiograph.pk)


def previous_consensus_for(*, project: Project, radiographs: list[Radiograph]) -> dict[int, dict[str, int]]:
    """For each radiograph, the latest consensus grade per area code of the patient's previous film.

    The previous film is the one of the same patient, body part and side whose visit came just
    before (by acquisition date, then timepoint name). Empty for a radiograph with no earlier film,
    without a consensus yet, or when the project does not offer it (order hidden, or option off).
    """
    if not (project.reading_mode == Project.ReadingMode.PAIRED_KNOWN and project.show_previous_consensus):
        return {}
    previous: dict[int, int] = {}
    for radiograph in radiographs:
        films = sorted(
            Radiograph.objects.filter(
                project=project, visit__patient_id=radiograph.visit.patient_id,
                body_part=radiograph.body_part, laterality=radiograph.laterality,
            ).select_related("visit"),
            key=_when,
        )
        earlier = [film for film in films if _when(film) < _when(radiograph)]
        if earlier:
            previous[radiograph.pk] = earlier[-1].pk
    grades: dict[int, dict[str, int]] = {pk: {} for pk in previous.values()}
    for dimension in Dimension.values:
        run = (
            ConsensusRun.objects.filter(project=project, dimension=dimension, status=ConsensusRun.Status.OK)
            .order_by("-version").first()
        )
        if run is None:
            continue
        for radiograph_id, code, label in run.labels.filter(radiograph_id__in=grades).values_list("radiograph_id", "area__code", "label"):
            grades[radiograph_id][code] = label
    return {pk: grades[earlier] for pk, earlier in previous.items() if grades[earlier]}
