"""The save benchmark, and what it measures: a save's queries do not grow with its cells."""
from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from annotation.models import Project

pytestmark = pytest.mark.django_db


def _queries_a_save(cells: int) -> int:
    out = io.StringIO()
    call_command("bench_saves", saves=5, cells=cells, stdout=out)
    match = re.search(r"saves of (\d+) cells, one reader, \w+: median [\d.]+ ms, p95 [\d.]+ ms, (\d+) queries a save", out.getvalue())
    assert match and int(match.group(1)) == cells
    return int(match.group(2))


def test_a_save_costs_the_same_queries_for_any_number_of_cells_and_the_benchmark_leaves_nothing_behind(schemes) -> None:
    # New cells in one INSERT, edited ones in one UPDATE, their history in one INSERT; the answer
    # reads no area per cell.
    assert _queries_a_save(8) == _queries_a_save(2)
    assert not Project.objects.filter(slug__startswith="bench-saves-").exists()
