"""Saves per second through gunicorn on the configured database, per worker class and count:
many readers saving with no pause, each save a real `PUT /api/assignments/{id}/grades/` over
loopback, so the figure includes HTTP parsing, authentication, the transaction and the answer."""
from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from annotation.models import JointArea, Membership, Patient, Project, Radiograph, Visit
from annotation.services import assignments_create, membership_set, project_create

CONFIG = settings.BASE_DIR / "deploy" / "gunicorn.conf.py"


class Command(BaseCommand):
    help = (
        "Start gunicorn with the production settings (deploy/gunicorn.conf.py) once per configuration given "
        "(CLASS:WORKERS or gthread:WORKERSxTHREADS), have --clients readers save 4 cells at a time with no think "
        "time for --seconds, and print saves per second and the latency percentiles of each; loopback only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--configs", nargs="+", default=["sync:3", "gthread:3x4"])
        parser.add_argument("--clients", type=int, default=16)
        parser.add_argument("--seconds", type=float, default=20.0)
        parser.add_argument("--port", type=int, default=18010)

    def handle(self, *args, configs: list[str], clients: int, seconds: float, port: int, **options) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("run it on PostgreSQL (DATABASE_URL=postgres://...)")
        parsed = [_parse(text) for text in configs]
        stamp = uuid.uuid4().hex[:8]
        project = project_create(name=f"Save throughput {stamp}", slug=f"bench-throughput-{stamp}")
        try:
            for index, (worker_class, workers, threads) in enumerate(parsed):
                # Fresh readers and a port per configuration: every run starts on empty reads, and
                # the previous server's sockets may still linger.
                tokens = _readers(project, clients, prefix=f"{index}")
                self._one(worker_class, workers, threads, tokens, seconds, port + index)
        finally:
            Project.objects.filter(pk=project.pk).delete()
            get_user_model().objects.filter(username__startswith=f"{project.slug}-").delete()

    def _one(self, worker_class: str, workers: int, threads: int, tokens: list, seconds: float, port: int) -> None:
        db = connection.settings_dict
        env = dict(os.environ)
        env.update(
            DATABASE_URL=f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            DEBUG="0", LOG_LEVEL="WARNING", ALLOWED_HOSTS="127.0.0.1,localhost",
        )  # fmt: skip
        command = [
            sys.executable, "-m", "gunicorn", "config.wsgi:application", "-c", str(CONFIG), "--bind", f"127.0.0.1:{port}",
            "--worker-class", worker_class, "--workers", str(workers), "--threads", str(threads), "--log-level", "warning",
        ]  # fmt: skip
        server = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait(base, server)
            latencies: list[float] = []
            errors = [0]
            lock = threading.Lock()
            stop = time.monotonic() + seconds
            runners = [
                threading.Thread(target=_saver, args=(base, token, assignment, codes, stop, latencies, errors, lock), daemon=True)
                for token, assignment, codes in tokens
            ]
            load_before = os.getloadavg()[0]
            started = time.monotonic()
            for runner in runners:
                runner.start()
            for runner in runners:
                runner.join(seconds + 60)
            elapsed = time.monotonic() - started
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        if not latencies:
            raise CommandError(f"no save succeeded ({errors[0]} errors)")
        ms = np.asarray(latencies) * 1000
        name = f"{worker_class} {workers} workers" + (f" x {threads} threads" if worker_class == "gthread" else "")
        self.stdout.write(
            f"{name}: {len(ms) / elapsed:.1f} saves/s over {elapsed:.0f} s, {len(tokens)} clients; "
            f"p50 {np.percentile(ms, 50):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms, p99 {np.percentile(ms, 99):.0f} ms; "
            f"{errors[0]} errors (load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after)"
        )


def _parse(text: str) -> tuple[str, int, int]:
    try:
        worker_class, count = text.split(":")
        workers, _, threads = count.partition("x")
        parsed = (worker_class, int(workers), int(threads or 1))
    except ValueError:
        raise CommandError(f"bad configuration {text!r}: write CLASS:WORKERS or gthread:WORKERSxTHREADS") from None
    if worker_class not in ("sync", "gthread") or parsed[1] < 1 or parsed[2] < 1:
        raise CommandError(f"bad configuration {text!r}: the class is sync or gthread, counts at least 1")
    return parsed


def _readers(project: Project, clients: int, prefix: str) -> list[tuple[str, int, list[str]]]:
    """One reader per client, each with one assignment on a film of its own."""
    from rest_framework.authtoken.models import Token

    codes = list(JointArea.objects.filter(scheme_id=project.scheme_id, body_part="hand").values_list("code", flat=True))
    out = []
    for index in range(clients):
        user = get_user_model().objects.create_user(username=f"{project.slug}-{prefix}-{index:03d}", password=None)
        membership_set(user=user, project=project, role=Membership.Role.READER)
        visit = Visit.objects.create(patient=Patient.objects.create(project=project, pseudonym=f"T{prefix}-{index:04d}"), timepoint="baseline")
        film = Radiograph.objects.create(
            project=project, visit=visit, laterality="R", image="", width=8, height=8, checksum=f"{project.slug}-{prefix}-{index}"
        )
        (assignment,) = assignments_create(radiograph=film, readers=[user])
        out.append((Token.objects.create(user=user).key, assignment.pk, codes))
    return out


def _wait(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CommandError("gunicorn did not start")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=5):
                return
        except (OSError, urllib.error.HTTPError):
            time.sleep(0.3)
    raise CommandError("gunicorn did not answer within 60 s")


def _saver(base, token, assignment, codes, stop, latencies, errors, lock) -> None:
    versions: dict[str, int] = {}
    i = 0
    while time.monotonic() < stop:
        picked = [codes[(i * 4 + j) % len(codes)] for j in range(4)]
        body = json.dumps({"grades": [{"area": c, "value": (i + j) % 2, "version": versions.get(c, 0)} for j, c in enumerate(picked)]})
        request = urllib.request.Request(f"{base}/api/assignments/{assignment}/grades/", data=body.encode(), method="PUT")
        request.add_header("Authorization", f"Token {token}")
        request.add_header("Content-Type", "application/json")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.loads(response.read())
        except (OSError, urllib.error.HTTPError, ValueError) as error:
            with lock:
                errors[0] += 1
                if errors[0] == 1:
                    print(f"first error: {error!r}", file=sys.stderr)
            time.sleep(0.05)
            continue
        elapsed = time.monotonic() - started
        for grade in answer["grades"]:
            versions[grade["area"]] = grade["version"]
        with lock:
            latencies.append(elapsed)
        i += 1
