"""docker-compose.yml, the Caddyfile of the TLS proxy and the production settings guard.

Docker cannot run here, so the compose file is read; Caddy (Debian package) adapts the Caddyfile.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_VARIABLES = {
    "DJANGO_ENV", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL", "PLAIN_HTTP",
    "S3_BUCKET", "S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY",
}
APP_SERVICES = ["web", "worker", "gpu-worker"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_settings_read_every_variable_compose_must_provide():
    source = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'env_\w+\("([A-Z_0-9]+)"', source))
    assert SETTINGS_VARIABLES <= read


def test_compose_defines_every_service_the_settings_need(compose):
    assert {"proxy", "postgres", "redis", "minio", "web", "worker", "gpu-worker"} <= set(compose["services"])
    for name in APP_SERVICES:
        service = compose["services"][name]
        environment = service["environment"]
        assert SETTINGS_VARIABLES <= set(environment), name
        assert environment["DJANGO_ENV"] == "production"
        # One host runs everything by default; another host of a multi-host deployment sets the URLs.
        assert environment["DATABASE_URL"] == "${DATABASE_URL:-postgres://ra:${POSTGRES_PASSWORD:-ra}@postgres:5432/ra}"
        assert environment["CELERY_BROKER_URL"] == "${CELERY_BROKER_URL:-redis://redis:6379/0}"
        assert environment["S3_ENDPOINT_URL"] == "${S3_ENDPOINT_URL:-http://minio:9000}"
        # Web and workers share files only through the object store, so each can run on another machine.
        assert "volumes" not in service, name
        for dependency in ["postgres", "redis", "minio"]:
            assert service["depends_on"][dependency]["condition"] == "service_healthy", (name, dependency)
    for name in compose["services"]:
        assert "healthcheck" in compose["services"][name], name


def test_only_the_tls_proxy_is_published_and_it_fronts_gunicorn(compose):
    services = compose["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}
    assert "443:443" in services["proxy"]["ports"]
    assert services["proxy"]["environment"]["UPSTREAM"] == "${UPSTREAM:-web:8000}"
    assert "--bind 0.0.0.0:8000" in services["web"]["command"]
    assert services["proxy"]["depends_on"]["web"]["condition"] == "service_healthy"
    mounted = {volume.split(":")[0]: volume.split(":")[1] for volume in services["proxy"]["volumes"]}
    assert mounted["./deploy/Caddyfile"] == "/etc/caddy/Caddyfile"
    assert (ROOT / "deploy" / "Caddyfile").is_file()
    assert services["proxy"]["environment"]["TLS_MODE"] == "${TLS_MODE:-internal}"


def test_healthchecks_ask_django_for_readiness(compose):
    services = compose["services"]
    assert "http://127.0.0.1:8000/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "http://127.0.0.1:2080/" in services["proxy"]["healthcheck"]["test"]
    for name in ["worker", "gpu-worker"]:
        assert "python manage.py healthz" in services[name]["healthcheck"]["test"][1], name
    assert "prepare_media_storage" in services["web"]["command"]


def test_workers_listen_on_the_right_queues(compose):
    def queues(service: str) -> str:
        command = compose["services"][service]["command"]
        return command[command.index("-Q") + 1]

    assert queues("worker") == "default,inference"
    assert queues("gpu-worker") == "training"
    devices = compose["services"]["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert set(compose["volumes"]) == {"postgres-data", "redis-data", "minio-data", "caddy-data", "caddy-config"}


STRONG_KEY = "k3Y-" + "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"


def _caddy_adapt(**environment: str) -> dict:
    caddy = shutil.which("caddy")
    if caddy is None:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("the Caddyfile tests need caddy (Debian package 'caddy')")
        pytest.skip("the Caddyfile tests need caddy (Debian package 'caddy')")
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **environment}
    result = subprocess.run([caddy, "adapt", "--config", str(ROOT / "deploy" / "Caddyfile"), "--adapter", "caddyfile"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_caddyfile_terminates_tls_with_the_internal_ca_by_default_and_proxies_to_web():
    config = _caddy_adapt(SITE_ADDRESS="scores.example.org")
    servers = config["apps"]["http"]["servers"]
    site = next(server for server in servers.values() if ":443" in server["listen"])
    assert site["routes"][0]["match"][0]["host"] == ["scores.example.org"]
    text = json.dumps(site)
    assert '"dial": "web:8000"' in text and '"uri": "/livez"' in text
    policies = config["apps"]["tls"]["automation"]["policies"]
    assert policies[0]["subjects"] == ["scores.example.org"] and policies[0]["issuers"] == [{"module": "internal"}]
    assert config["apps"]["pki"]["certificate_authorities"]["local"]["install_trust"] is False
    assert config["admin"] == {"disabled": True}


def test_caddyfile_takes_the_operators_certificate_or_plain_http_when_told():
    with_files = _caddy_adapt(SITE_ADDRESS="scores.example.org", TLS_MODE="files")
    (loaded,) = with_files["apps"]["tls"]["certificates"]["load_files"]
    assert (loaded["certificate"], loaded["key"]) == ("/certs/cert.pem", "/certs/key.pem")
    plain = _caddy_adapt(SITE_ADDRESS="http://scores.internal", TLS_MODE="off")
    listens = [server["listen"] for server in plain["apps"]["http"]["servers"].values()]
    assert [":80"] in listens and not any(":443" in listen for listen in listens)
    assert "tls" not in plain["apps"]


def _start_django(env_overrides: dict[str, str], command: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in {"SECRET_KEY", "DEBUG", "DJANGO_ENV", "PLAIN_HTTP"}}
    env.update(env_overrides)
    return subprocess.run(
        command or [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


# What the README's production section has the operator write into .env, as compose passes it on.
DOCUMENTED_PRODUCTION = {
    "DJANGO_ENV": "production", "DEBUG": "0", "ALLOWED_HOSTS": "scores.example.org", "PLAIN_HTTP": "0",
    "S3_BUCKET": "radiographs", "S3_ENDPOINT_URL": "http://minio:9000", "S3_REGION": "us-east-1",
    "S3_ACCESS_KEY_ID": "ra-media", "S3_SECRET_ACCESS_KEY": "x" * 40, "DJANGO_SETTINGS_MODULE": "config.settings",
}


def test_check_deploy_is_clean_with_the_documented_production_environment():
    env = {**DOCUMENTED_PRODUCTION, "SECRET_KEY": secrets.token_urlsafe(50)}
    result = _start_django(env, [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_plain_http_is_explicit_and_check_deploy_names_what_it_gives_up():
    env = {**DOCUMENTED_PRODUCTION, "SECRET_KEY": secrets.token_urlsafe(50), "PLAIN_HTTP": "1"}
    result = _start_django(env, [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"])
    assert result.returncode != 0
    for warning in ["security.W004", "security.W008", "security.W012", "security.W016"]:
        assert warning in result.stdout + result.stderr, warning


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


def test_web_runs_gunicorn_with_the_measured_worker_settings_in_compose_and_the_image(compose):
    import runpy

    config = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    assert config["worker_class"] in {"sync", "gthread"} and 2 <= config["workers"] <= 5
    assert "-c deploy/gunicorn.conf.py" in compose["services"]["web"]["command"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY deploy/gunicorn.conf.py ./deploy/gunicorn.conf.py" in dockerfile
    assert '"-c", "deploy/gunicorn.conf.py"' in dockerfile
