"""Celery tasks of the modeling app: training on the GPU queue, inference on the CPU queue."""
from __future__ import annotations

from celery import shared_task
from celery.signals import worker_init

from . import services


@worker_init.connect
def _torch_import(**kwargs) -> None:
    # Inference and training need torch, whose import takes seconds: done once in the worker's
    # main process, before its pool forks, instead of in the first task of every pool process.
    import torch  # noqa: F401


@shared_task(acks_late=True, soft_time_limit=4 * 3600, time_limit=4 * 3600 + 300)
def model_train_task(run_id: int) -> str:
    return services.model_version_train(run_id=run_id).status


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3600 + 120)
def model_predict_task(model_version_id: int) -> int:
    return services.suggestions_predict(model_version_id=model_version_id)


@shared_task(acks_late=True, soft_time_limit=2 * 3600, time_limit=2 * 3600 + 300)
def demo_seed_rest_task(project_id: int, plan: dict) -> int:
    from .demo import demo_plan_from_dict, demo_seed_rest

    return demo_seed_rest(project_id=project_id, plan=demo_plan_from_dict(plan), model_first=True)
