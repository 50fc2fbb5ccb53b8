"""Liveness (`/livez`) and readiness (`/healthz`) answers for load balancers and healthchecks.

`/livez` says the process answers. `/healthz` also reaches the database, the Celery broker and the
media storage, each with a short timeout, and answers 503 naming what failed. The answer names the
kind of failure only (the exception's class): connection errors can carry host names and
credentials, which go to the server's log instead.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

LIVENESS_PATH = "/livez"
READINESS_PATH = "/healthz"
BROKER_TIMEOUT_SECONDS = 3.0


def database_reachable() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def broker_reachable() -> None:
    from config import celery_app

    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS)


def storage_reachable() -> None:
    from django.core.files.storage import default_storage

    bucket = getattr(default_storage, "bucket_name", None)
    if bucket:
        # One HEAD on the bucket: proves the endpoint, the credentials and the bucket, reads nothing.
        default_storage.connection.meta.client.head_bucket(Bucket=bucket)
        return
    location = Path(default_storage.location)
    existing = next(folder for folder in [location, *location.parents] if folder.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError("media folder is not writable")


CHECKS: dict[str, Callable[[], None]] = {
    "database": database_reachable,
    "broker": broker_reachable,
    "storage": storage_reachable,
}


def readiness() -> tuple[bool, dict[str, dict]]:
    """Run every check; (all passed, {name: {"ok": bool, "seconds": float[, "error": class name]}})."""
    results: dict[str, dict] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
            results[name] = {"ok": True}
        except Exception as error:  # noqa: BLE001 - any failure makes the service not ready
            logger.warning("health check %s failed: %s: %s", name, type(error).__name__, error)
            results[name] = {"ok": False, "error": type(error).__name__}
        results[name]["seconds"] = round(time.perf_counter() - started, 3)
    return all(result["ok"] for result in results.values()), results


class HealthCheckMiddleware:
    """Answers the two health paths before host validation, the HTTPS redirect and sessions."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD") or request.path not in (LIVENESS_PATH, READINESS_PATH):
            return self.get_response(request)
        if request.path == LIVENESS_PATH:
            response = JsonResponse({"status": "ok"})
        else:
            ok, checks = readiness()
            response = JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)
        response["Cache-Control"] = "no-store"
        return response
