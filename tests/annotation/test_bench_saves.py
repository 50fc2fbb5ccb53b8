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


@pytest.mark.django_db(transaction=True)
def test_throughput_benchmark_saves_through_gunicorn_with_the_production_settings_and_cleans_up(schemes) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the throughput benchmark runs gunicorn against PostgreSQL")
    out = io.StringIO()
    # The server is another process: it must see the benchmark's readers, so they are committed.
    call_command("bench_save_throughput", configs=["gthread:1x2"], clients=2, seconds=2, port=18050, stdout=out)
    match = re.search(r"gthread 1 workers x 2 threads: ([\d.]+) saves/s .* p99 \d+ ms; (\d+) errors", out.getvalue())
    assert match, out.getvalue()
    assert float(match.group(1)) > 0 and match.group(2) == "0"
    assert not Project.objects.filter(slug__startswith="bench-throughput-").exists()
