"""Schemathesis against a live server: every operation of the OpenAPI schema, a bounded number of
generated requests each, checked for server errors and for answers that match the schema.

`SCHEMATHESIS_EXAMPLES` sets the examples per operation (small by default, so the suite stays quick):

    SCHEMATHESIS_EXAMPLES=100 .venv/bin/python -m pytest tests/config/test_api_schemathesis.py -s
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rest_framework.authtoken.models import Token

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "5"))
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def _run(live_server, token: str, report: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("st")), "run", f"{live_server.url}/api/schema/?format=json",
            "--url", live_server.url, "--checks", CHECKS, "--max-examples", str(EXAMPLES), "--seed", "17",
            "--phases", "examples,coverage,fuzzing", "--workers", "1", "--no-shrink", "--no-color",
            "--generation-database", "none", "--request-timeout", "30",
            "-H", f"Authorization: Token {token}",
            "--report", "junit", "--report-junit-path", str(report),
        ],
        capture_output=True, text=True, timeout=900,
        cwd=report.parent,  # schemathesis keeps a cache folder in its working directory
    )


def test_every_operation_answers_without_server_errors_and_as_the_schema_says(live_server, world, tmp_path):
    # The lead of alpha: the role that reaches the most operations (leads see every reader's work).
    token = Token.objects.create(user=world.users["lead"]).key
    result = _run(live_server, token, tmp_path / "junit.xml")
    summary = "\n".join(result.stdout.splitlines()[-40:])
    print(f"\nschemathesis, {EXAMPLES} examples per operation:\n{summary}")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
