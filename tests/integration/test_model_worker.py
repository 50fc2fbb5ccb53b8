"""Train, promote and suggest through a real Celery worker: the operator's loop end to end."""
from __future__ import annotations

import pytest

from annotation.models import Radiograph
from modeling import services
from modeling.demo import demo_seed
from modeling.ml.phantoms import PhantomConfig
from modeling.models import ModelVersion, Suggestion

from ..modeling.test_training_services import TINY
from .test_celery_worker import wait_for

pytestmark = pytest.mark.integration


def test_train_promote_and_suggestions_appear(schemes, celery_worker_process):
    project = demo_seed(slug="tiny-loop", patients=3, read_radiographs=4, seed=12, config=PhantomConfig(width=192, height=240)).project
    run = services.model_version_request(project=project, epochs=2, config=TINY, auto_promote=True)
    version = run.model_version

    assert wait_for(lambda: ModelVersion.objects.get(pk=version.pk).status == ModelVersion.Status.ACTIVE, timeout=240), (
        ModelVersion.objects.get(pk=version.pk).status, run.__class__.objects.get(pk=run.pk).error, celery_worker_process.read_text()[-3000:])
    waiting = Radiograph.objects.filter(project=project).exclude(status=Radiograph.Status.READ).count()
    assert wait_for(lambda: Suggestion.objects.filter(model_version=version).count() == waiting * 31, timeout=120), celery_worker_process.read_text()[-3000:]
    assert "model_train_task" in celery_worker_process.read_text() and "model_predict_task" in celery_worker_process.read_text()
