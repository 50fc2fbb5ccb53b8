"""Real services for integration tests: PostgreSQL, Redis and a Celery worker process.

`.ci/run` starts PostgreSQL and Redis and sets REQUIRE_SERVICES=1, so a missing service fails the
run there; on a developer's machine without them these tests are skipped with the reason.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config import celery_app

ROOT = Path(__file__).resolve().parents[2]


def _missing_services() -> list[str]:
    missing = []
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        missing.append("PostgreSQL (DATABASE_URL=postgres://...)")
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        missing.append("Redis (CELERY_BROKER_URL=redis://...)")
    else:
        try:
            with celery_app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1)
        except Exception as error:  # noqa: BLE001 - any failure means the broker is not there
            missing.append(f"Redis at {settings.CELERY_BROKER_URL} ({error})")
    return missing


@pytest.fixture(scope="session")
def real_services():
    missing = _missing_services()
    if missing:
        message = "integration tests need " + ", ".join(missing)
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def celery_worker_process(real_services, transactional_db, tmp_path):
    """A `celery worker` process on every queue, pointed at the test database."""
    db = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)  # the test's files, which the worker reads and writes
    celery_app.control.purge()
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=INFO",
             "-Q", "default,inference,training", "-n", f"test-{uuid.uuid4().hex[:8]}@%h"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while b"ready." not in log_path.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Celery worker did not start:\n" + log_path.read_text(errors="replace"))
            time.sleep(0.2)
        previous = celery_app.conf.task_always_eager
        celery_app.conf.task_always_eager = False  # this test wants the real broker and worker
        yield log_path
    finally:
        celery_app.conf.task_always_eager = previous if "previous" in locals() else False
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
