from __future__ import annotations

from config import celery_app


def route(task_name: str) -> dict:
    return celery_app.amqp.router.route({}, task_name)


def test_training_reaches_only_the_training_queue():
    queue = route("modeling.tasks.model_train_task")["queue"]
    assert (queue.name, queue.routing_key, queue.exchange.name) == ("training", "training", "training")


def test_inference_and_bookkeeping_queues_are_distinct():
    assert route("modeling.tasks.model_predict_task")["queue"].routing_key == "inference"
    assert route("annotation.tasks.radiograph_progress_update_task")["queue"].routing_key == "default"
