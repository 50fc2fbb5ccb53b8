"""gunicorn's settings for the production web service (docker-compose.yml's `web`, the Dockerfile).

The worker class and count were chosen by `manage.py bench_save_throughput` (README, benchmark
table): readers' saves are short requests that mostly wait on PostgreSQL, so a few threads per
process keep a core busy while one request waits, without a process (and its memory) per request.
Each setting can be overridden from the environment, and gunicorn's own command-line flags win
over this file.
"""
from __future__ import annotations

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# Browsers keep the connection to the proxy; the proxy's connections to gunicorn are reused too.
keepalive = 5
