"""`manage.py validate_progression` at a small size: through the real import, reading and consensus path."""
from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Project

pytestmark = pytest.mark.django_db


def test_validate_progression_prints_readers_and_both_fusions_and_the_longitudinal_one_never_regresses(schemes, tmp_path) -> None:
    out = io.StringIO()
    plot = tmp_path / "cpp.png"
    call_command("validate_progression", seed=2, patients=3, readers=2, modes=["independent"], plot=plot, stdout=out)
    lines = out.getvalue().splitlines()
    rows = {tuple(line.split()[:2]): line.split() for line in lines if line.startswith("independent")}
    assert set(rows) == {("independent", "readers"), ("independent", "per_film"), ("independent", "longitudinal")}
    # A consensus whose joints never fall cannot show a falling total: its regression share is 0.
    assert rows[("independent", "longitudinal")][-1] == "0.00"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    project = Project.objects.get(slug="progression-validation-2-independent")
    assert project.reading_mode == Project.ReadingMode.INDEPENDENT
    assert set(project.consensus_runs.values_list("fusion", flat=True)) == {"per_film", "longitudinal"}
    assert project.radiographs.filter(visit__acquired_on__isnull=True).count() == 0


def test_validate_progression_refuses_a_single_reader(schemes) -> None:
    with pytest.raises(CommandError, match="--readers"):
        call_command("validate_progression", readers=1)
