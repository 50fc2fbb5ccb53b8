"""gunicorn's settings for the production web service (docker-compose.yml's `web`, the Dockerfile).

The worker class and count were chosen by `manage.py bench_save_throughput` (README, benchmark
table): with a save down to a few milliseconds of CPU, plain sync workers answered more saves a
second than threaded ones (205-209/s against 160-183/s on 2 cores) with a shorter tail (p95 100 ms
against 156-174 ms), and 3 workers matched 2 while leaving a spare when one is busy or restarting.
Caddy in front holds the slow clients, so a sync worker is never tied up by a reader's network.
Each setting can be overridden from the environment, and gunicorn's own command-line flags win
over this file.
"""
from __future__ import annotations

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))  # used by the gthread class only
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# Browsers keep the connection to the proxy; the proxy's connections to gunicorn are reused too.
keepalive = 5
