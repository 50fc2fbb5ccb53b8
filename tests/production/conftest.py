"""The production configuration as shipped, on real services: an S3 API server, gunicorn with
DJANGO_ENV=production behind Caddy (the Caddyfile of docker-compose.yml), a Celery worker.

The S3 server is moto's server mode (`moto[server]` from PyPI): MinIO, which docker-compose.yml
runs, is on neither PyPI nor Debian. Caddy is the Debian package. Every process listens on
loopback ports 16000-16099 and is stopped at the end of the module.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

from config import celery_app
from tests.browser.conftest import browser  # noqa: F401 - the shared Chromium, re-used here
from tests.integration.conftest import real_services  # noqa: F401 - PostgreSQL and Redis, or skip/fail

ROOT = Path(__file__).resolve().parents[2]
S3_PORT = 16010
GUNICORN_PORT = 16001
HTTPS_PORT = 16043
HTTP_PORT = 16080
PROXY_HEALTH_PORT = 16081
BUCKET = "radiographs-test"
S3_CREDENTIALS = {"S3_ACCESS_KEY_ID": "test-access", "S3_SECRET_ACCESS_KEY": "test-secret", "S3_REGION": "us-east-1"}


def _needed(what: str) -> None:
    message = f"the production-stack tests need {what}"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _wait(predicate, *, timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs if log.exists())
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s\n{tails}")


def _answers(url: str) -> bool:
    import ssl

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the proxy's internal CA
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return response.status == 200
    except Exception:  # noqa: BLE001 - not up yet
        return False


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory) -> Iterator[str]:
    """moto's S3 server on loopback, shared by every test here (each uses its own bucket)."""
    if not _port_free(S3_PORT):
        pytest.fail(f"port {S3_PORT} is taken; the production-stack tests use 16000-16099")
    log_path = tmp_path_factory.mktemp("s3") / "s3.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(S3_PORT)],
                                   cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: process.poll() is None and not _port_free(S3_PORT), timeout=60, what="the S3 server", logs=[log_path])
        yield f"http://127.0.0.1:{S3_PORT}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class Stack:
    """The running stack: where to reach it, and the environment its Django processes share."""

    base_url: str
    gunicorn_url: str
    http_url: str
    s3_endpoint: str
    bucket: str
    env: dict[str, str]
    media_root: Path
    logs: dict[str, Path] = field(default_factory=dict)

    def s3(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.s3_endpoint, region_name=S3_CREDENTIALS["S3_REGION"],
            aws_access_key_id=S3_CREDENTIALS["S3_ACCESS_KEY_ID"], aws_secret_access_key=S3_CREDENTIALS["S3_SECRET_ACCESS_KEY"],
        )

    def log_tails(self) -> str:
        return "\n".join(f"--- {name}\n{path.read_text(errors='replace')[-2500:]}" for name, path in self.logs.items())


@pytest.fixture(scope="module")
def production_stack(real_services, s3_endpoint, django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Stack]:  # noqa: F811
    caddy = shutil.which("caddy")
    if caddy is None:
        _needed("caddy (Debian package 'caddy')")
    busy = [port for port in (GUNICORN_PORT, HTTPS_PORT, HTTP_PORT, PROXY_HEALTH_PORT) if not _port_free(port)]
    if busy:
        pytest.fail(f"ports {busy} are taken; the production-stack tests use 16000-16099")
    work = tmp_path_factory.mktemp("production")
    from django.db import connection

    db = connection.settings_dict
    env = {key: value for key, value in os.environ.items()
           if key not in {"DEBUG", "PLAIN_HTTP", "CELERY_TASK_ALWAYS_EAGER", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update({
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "S3_BUCKET": BUCKET,
        "S3_ENDPOINT_URL": s3_endpoint,
        **S3_CREDENTIALS,
        "STATIC_ROOT": str(work / "static"),
        # Set only to prove that nothing lands there: media must all go to the object store.
        "MEDIA_ROOT": str(work / "media"),
        "PYTHONUNBUFFERED": "1",
    })
    stack = Stack(
        base_url=f"https://localhost:{HTTPS_PORT}", gunicorn_url=f"http://127.0.0.1:{GUNICORN_PORT}",
        http_url=f"http://localhost:{HTTP_PORT}", s3_endpoint=env["S3_ENDPOINT_URL"], bucket=BUCKET,
        env=env, media_root=work / "media",
    )
    processes: list[subprocess.Popen] = []

    def start(name: str, command: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        stack.logs[name] = work / f"{name}.log"
        with open(stack.logs[name], "wb") as log:
            process = subprocess.Popen(command, cwd=ROOT, env={**env, **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        return process

    def manage(*arguments: str) -> None:
        result = subprocess.run([sys.executable, "manage.py", *arguments], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=180)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}\n{stack.log_tails()}")

    try:
        manage("prepare_media_storage")
        manage("collectstatic", "--noinput", "-v", "0")
        celery_app.control.purge()
        start("gunicorn", [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-c", "deploy/gunicorn.conf.py",
                           "--bind", f"127.0.0.1:{GUNICORN_PORT}", "--workers", "2", "--access-logfile", "-"])
        start("worker", [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=INFO",
                         "-Q", "default,inference,training", "-n", f"production-test-{uuid.uuid4().hex[:8]}@%h"])
        caddy_home = work / "caddy"
        start("caddy", [caddy, "run", "--config", str(ROOT / "deploy" / "Caddyfile"), "--adapter", "caddyfile"], {
            "SITE_ADDRESS": f"localhost:{HTTPS_PORT}", "HTTPS_PORT": str(HTTPS_PORT), "HTTP_PORT": str(HTTP_PORT),
            "PROXY_HEALTH_PORT": str(PROXY_HEALTH_PORT), "UPSTREAM": f"127.0.0.1:{GUNICORN_PORT}", "TLS_MODE": "internal",
            "HOME": str(caddy_home), "XDG_DATA_HOME": str(caddy_home / "data"), "XDG_CONFIG_HOME": str(caddy_home / "config"),
        })
        # The proxy's own healthcheck: Django's readiness (database, broker, storage) through Caddy.
        _wait(lambda: _answers(f"http://127.0.0.1:{PROXY_HEALTH_PORT}/"), timeout=90, what="gunicorn behind Caddy",
              logs=list(stack.logs.values()))
        # Caddy's active check of gunicorn (/livez every 10 s) marks the upstream up.
        _wait(lambda: _answers(f"{stack.base_url}/livez"), timeout=30, what="the HTTPS site", logs=list(stack.logs.values()))
        _wait(lambda: b"ready." in stack.logs["worker"].read_bytes(), timeout=90, what="the Celery worker",
              logs=list(stack.logs.values()))
        previous = celery_app.conf.task_always_eager
        celery_app.conf.task_always_eager = False  # tasks the test process enqueues go to the worker
        yield stack
        celery_app.conf.task_always_eager = previous
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
