"""The save benchmark, and what it measures: a save's queries grow by one per cell, not three."""
from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from annotation.models import Project

pytestmark = pytest.mark.django_db


def _queries_a_save(cells: int) -> int:
    out = io.StringIO()
    call_command("bench_saves", saves=4, cells=cells, stdout=out)
    match = re.search(r"saves of (\d+) cells, one reader, \w+: median [\d.]+ ms, p95 [\d.]+ ms, (\d+) queries a save", out.getvalue())
    assert match and int(match.group(1)) == cells
    return int(match.group(2))


def test_a_save_costs_one_query_per_extra_cell_and_the_benchmark_leaves_nothing_behind(schemes) -> None:
    # One write per cell; the history rows go in one INSERT and the answer reads no area per cell.
    assert _queries_a_save(8) - _queries_a_save(2) == 6
    assert not Project.objects.filter(slug__startswith="bench-saves-").exists()
