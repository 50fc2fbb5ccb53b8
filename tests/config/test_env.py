from __future__ import annotations

import pytest

from config.env import ConfigurationError, database_from_url, env_bool, env_int, env_list


def test_postgres_url_becomes_django_settings():
    db = database_from_url("postgres://ra:p%40ss@db.example:5433/scores", base_dir="/srv")
    assert (db["ENGINE"], db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (
        "django.db.backends.postgresql", "scores", "ra", "p@ss", "db.example", "5433")


def test_relative_sqlite_path_is_under_the_base_dir():
    assert database_from_url("sqlite:///var/db.sqlite3", base_dir="/srv")["NAME"] == "/srv/var/db.sqlite3"
    assert database_from_url("sqlite:////tmp/x.db", base_dir="/srv")["NAME"] == "/tmp/x.db"


@pytest.mark.parametrize("url", ["mysql://x/y", "postgres://host/", "sqlite://"])
def test_unsupported_or_incomplete_database_url_is_refused(url):
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        database_from_url(url, base_dir="/srv")


def test_typed_helpers_parse_and_refuse(monkeypatch):
    monkeypatch.setenv("FLAG", "yes")
    monkeypatch.setenv("COUNT", "12")
    monkeypatch.setenv("HOSTS", "a.org, b.org,")
    assert env_bool("FLAG", False) is True
    assert env_int("COUNT", 0) == 12
    assert env_list("HOSTS", []) == ["a.org", "b.org"]
    monkeypatch.setenv("COUNT", "twelve")
    with pytest.raises(ConfigurationError, match="COUNT must be an integer"):
        env_int("COUNT", 0)
