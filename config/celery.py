"""The Celery app. Queues: `default` (bookkeeping), `inference` (CPU), `training` (GPU worker)."""
from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("ra_scoring")
app.config_from_object("django.conf:settings", namespace="CELERY")
# One exchange and routing key per queue, so a task routed to `training` can only reach a worker
# that consumes `training` (the GPU worker), never the CPU worker's `default` queue.
app.conf.task_queues = [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in ("default", "inference", "training")]
app.autodiscover_tasks()

