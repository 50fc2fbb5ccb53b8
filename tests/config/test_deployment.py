"""docker-compose.yml and the production settings guard (Docker cannot run here, so the file is read)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_VARIABLES = {"DJANGO_ENV", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL", "MEDIA_ROOT"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_settings_read_every_variable_compose_must_provide():
    source = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'env_\w+\("([A-Z_]+)"', source))
    assert SETTINGS_VARIABLES <= read


def test_compose_defines_every_service_the_settings_need(compose):
    assert {"postgres", "redis", "web", "worker", "gpu-worker"} <= set(compose["services"])
    for name in ["web", "worker", "gpu-worker"]:
        environment = compose["services"][name]["environment"]
        assert SETTINGS_VARIABLES <= set(environment), name
        assert environment["DJANGO_ENV"] == "production"
        assert environment["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in environment["DATABASE_URL"]
        assert environment["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        assert "media:/media" in compose["services"][name]["volumes"]
        assert compose["services"][name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in compose["services"]:
        assert "healthcheck" in compose["services"][name], name


def test_workers_listen_on_the_right_queues(compose):
    def queues(service: str) -> str:
        command = compose["services"][service]["command"]
        return command[command.index("-Q") + 1]

    assert queues("worker") == "default,inference"
    assert queues("gpu-worker") == "training"
    devices = compose["services"]["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert set(compose["volumes"]) == {"postgres-data", "redis-data", "media"}


STRONG_KEY = "k3Y-" + "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"


def _start_django(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in {"SECRET_KEY", "DEBUG", "DJANGO_ENV"}}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


def test_production_refuses_to_start_without_secret_key():
    result = _start_django({"DJANGO_ENV": "production", "ALLOWED_HOSTS": "example.org", "DJANGO_SETTINGS_MODULE": "config.settings"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_debug():
    result = _start_django({"DJANGO_ENV": "production", "SECRET_KEY": "x" * 50, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "config.settings"})
    assert result.returncode != 0
    assert "DEBUG=1 is refused with DJANGO_ENV=production" in result.stderr


def test_production_starts_with_a_key_and_no_debug():
    result = _start_django({"DJANGO_ENV": "production", "SECRET_KEY": STRONG_KEY, "DJANGO_SETTINGS_MODULE": "config.settings"})
    assert result.returncode == 0, result.stderr


def test_malformed_boolean_is_refused_with_its_name():
    result = _start_django({"DEBUG": "maybe", "DJANGO_SETTINGS_MODULE": "config.settings"})
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr
