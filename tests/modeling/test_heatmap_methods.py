"""The heatmap API's method choice: the best-measured default, the others on request, each cached once.

Personas: the film's own reader may fetch its maps; anyone may list the methods once logged in.
"""
from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from annotation.models import Assignment, Radiograph
from modeling import heatmaps, promotion, services
from modeling.ml.explain import DEFAULT_METHOD, METHODS

from ..conftest import client_for
from .test_training_services import TINY, seeded  # noqa: F401  (the fixture)


def test_the_method_list_starts_with_the_best_measured_default(client, schemes) -> None:
    from ..conftest import make_user

    body = client_for(make_user("reader_a")).get(reverse("api-heatmap-methods")).json()
    assert [item["key"] for item in body][0] == DEFAULT_METHOD and body[0]["default"] is True
    assert sorted(item["key"] for item in body) == sorted(METHODS)
    assert [item["default"] for item in body[1:]] == [False] * (len(METHODS) - 1)


@pytest.mark.django_db
def test_each_method_is_computed_once_per_version_and_area_and_an_unknown_one_is_refused(
    seeded, django_capture_on_commit_callbacks, monkeypatch  # noqa: F811
) -> None:
    version = services.model_version_train(run_id=services.model_version_request(project=seeded, epochs=1, config=TINY, enqueue=False).pk)
    with django_capture_on_commit_callbacks(execute=True):
        promotion.model_version_promote(version=version)
    assignment = Assignment.objects.filter(radiograph__project=seeded).exclude(radiograph__status=Radiograph.Status.READ).first()
    client = client_for(assignment.reader)
    url = reverse("api-radiograph-heatmap", args=[assignment.radiograph_id, "mcp_E__2"])
    folder = f"heatmaps/v{version.pk}/{assignment.radiograph_id}"

    default = client.get(url)
    gradcam = client.get(url, {"method": "gradcam"})
    assert default.status_code == gradcam.status_code == 200
    assert default.content != gradcam.content  # two methods, two maps
    assert default_storage.exists(f"{folder}/mcp_E__2.{DEFAULT_METHOD}.png")
    assert default_storage.exists(f"{folder}/mcp_E__2.gradcam.png")

    # Cached: asked again, neither map needs the network.
    monkeypatch.setattr(heatmaps, "_model", lambda pk: pytest.fail("a cached map was computed again"))
    assert client.get(url).content == default.content
    assert client.get(url, {"method": "gradcam"}).content == gradcam.content

    refused = client.get(url, {"method": "saliency"})
    assert refused.status_code == 400
    assert "Unknown heatmap method 'saliency'" in refused.json()["method"][0]
    assert not default_storage.exists(f"{folder}/mcp_E__2.saliency.png")
