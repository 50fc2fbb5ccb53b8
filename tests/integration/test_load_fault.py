"""The load-and-fault benchmark at a small size: readers through gunicorn, a web worker killed, the
Celery worker killed during a consensus recompute and during a training, and nothing acknowledged
lost, nothing half-stored, the serving model still serving. The README gives the 50-reader figures."""
from __future__ import annotations

import io

from django.core.management import call_command

from annotation.models import Grade, Project
from config import celery_app


def test_readers_lose_nothing_and_the_model_still_serves_when_web_and_celery_workers_are_killed(
    real_services, transactional_db, schemes
):
    # The benchmark's tasks must reach its own worker through Redis, not run in this process.
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    out = io.StringIO()
    try:
        call_command("bench_load_fault", readers=4, seconds=10, think=0.3, assignments=2, web_workers=2, port=17011, stdout=out)
    finally:
        celery_app.conf.task_always_eager = eager
    report = out.getvalue()
    print("\n" + report)
    assert "0 acknowledged grades missing, 0 acknowledged submissions missing, 0 half-stored consensus runs" in report
    assert "recompute after the crash: completed, serving model after the training crash: v1 (" in report
    assert "web still serving: True" in report
    assert "web worker" in report and "Celery worker killed" in report and "while training version 2" in report
    assert "0 server errors" in report
    # It cleans up after itself.
    assert not Project.objects.filter(slug__startswith="bench-load-").exists() and not Grade.objects.exists()
