"""The update after a read reads only the reads submitted or taken back since the stored run,
from the snapshot of grades that run kept, and ends with exactly the arrays a full read gives."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from annotation.models import Assignment, Grade, JointArea, Project
from consensus import label_store, services, studies
from consensus.arrays import grade_rows, grade_rows_update
from consensus.models import ConsensusRun

pytestmark = pytest.mark.django_db


def _project() -> Project:
    return studies.synthetic_project_create(slug="incremental-read", n_labels=3000, n_readers=4).project


def _erosion_areas(project: Project) -> list[int]:
    return sorted(JointArea.objects.filter(scheme_id=project.scheme_id, dimension="erosion").values_list("pk", flat=True))


def test_update_reads_only_changed_reads_and_its_rows_equal_a_full_read(schemes) -> None:
    project = _project()
    first = services.consensus_compute(project=project, dimension="erosion", warm_start=False)
    assert first.status == ConsensusRun.Status.OK
    snapshot = label_store.stored_state(project_id=project.pk, dimension="erosion").snapshot
    assert snapshot is not None and np.array_equal(snapshot.rows, grade_rows(project=project, area_ids=_erosion_areas(project)))

    reads = list(Assignment.objects.filter(radiograph__project=project).order_by("pk"))
    taken_back, resubmitted = reads[0], reads[5]
    Assignment.objects.filter(pk=taken_back.pk).update(status=Assignment.Status.IN_PROGRESS)
    # Reopened, regraded and submitted again: same read, new grades, a later submission time.
    regraded = list(Grade.objects.filter(assignment=resubmitted, area__dimension="erosion", value__lt=5).order_by("pk")[:2])
    Grade.objects.filter(pk__in=[g.pk for g in regraded]).update(value=5)
    Assignment.objects.filter(pk=resubmitted.pk).update(submitted_at=timezone.now() + timedelta(seconds=1))

    rows, fresh, changed = grade_rows_update(project=project, area_ids=_erosion_areas(project), snapshot=snapshot)
    full = grade_rows(project=project, area_ids=_erosion_areas(project))
    assert changed == 3  # one read gone; one read gone and back with new grades
    assert np.array_equal(rows, full) and np.array_equal(fresh.rows, full)
    assert len(full) == len(snapshot.rows) - 16
    mine = full[(full[:, 0] == resubmitted.radiograph_id) & (full[:, 2] == resubmitted.reader_id)]
    assert len(regraded) == 2 and all(mine[mine[:, 1] == g.area_id][0, 3] == 5 for g in regraded)

    update = services.consensus_compute(project=project, dimension="erosion")
    recompute = services.consensus_compute(project=project, dimension="erosion", warm_start=False)
    assert update.warm_start and update.n_labels == recompute.n_labels == len(full)
    warm = dict(((r, a), (lab, p)) for r, a, lab, p in update.labels.values_list("radiograph_id", "area_id", "label", "posterior"))
    cold = dict(((r, a), (lab, p)) for r, a, lab, p in recompute.labels.values_list("radiograph_id", "area_id", "label", "posterior"))
    assert warm.keys() == cold.keys()
    assert {k: v[0] for k, v in warm.items()} == {k: v[0] for k, v in cold.items()}
    assert max(np.abs(np.subtract(warm[k][1], cold[k][1])).max() for k in warm) <= 2 * label_store.POSTERIOR_TOLERANCE


def test_nothing_changed_reads_no_grade_and_another_scheme_area_set_reads_all(schemes) -> None:
    project = _project()
    services.consensus_compute(project=project, dimension="erosion", warm_start=False)
    snapshot = label_store.stored_state(project_id=project.pk, dimension="erosion").snapshot
    areas = _erosion_areas(project)
    rows, _fresh, changed = grade_rows_update(project=project, area_ids=areas, snapshot=snapshot)
    assert changed == 0 and rows is snapshot.rows
    rows, _fresh, changed = grade_rows_update(project=project, area_ids=areas[:-1], snapshot=snapshot)
    assert changed is None and not np.isin(rows[:, 1], areas[-1:]).any()
