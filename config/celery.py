"""The Celery app. Queues: `default` (bookkeeping), `inference` (CPU), `training` (GPU worker)."""
from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("ra_scoring")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue("default"), Queue("inference"), Queue("training")]
app.autodiscover_tasks()

