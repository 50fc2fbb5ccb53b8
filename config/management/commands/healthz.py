"""Readiness from the command line, for a worker's healthcheck: the checks of /healthz, exit 1 if any fails."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from config.health import readiness


class Command(BaseCommand):
    help = "Check that the database, the Celery broker and the media storage answer (as GET /healthz)."

    def handle(self, *args, **options) -> None:
        ok, checks = readiness()
        self.stdout.write(json.dumps({"status": "ok" if ok else "unavailable", "checks": checks}))
        if not ok:
            raise CommandError("not ready: " + ", ".join(name for name, result in checks.items() if not result["ok"]))
