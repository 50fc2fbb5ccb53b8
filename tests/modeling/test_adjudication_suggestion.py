"""The adjudication viewer shows the serving model's suggestion and its heatmap beside the readers'.

Personas (tests/conftest.py): lead leads alpha, which here takes suggestions (assisted) from an
active version.
"""
from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import JointArea, Project
from consensus import services as consensus_services
from modeling.models import ModelVersion, Suggestion

from ..consensus.conftest import areas_of, submit_grades


@pytest.mark.django_db
def test_the_viewer_puts_the_models_suggestion_and_heatmap_beside_the_readers_grades(client, world):
    Project.objects.filter(pk=world.alpha.pk).update(suggestions=Project.Suggestions.ASSISTED)
    zeros = {a.code: 0 for a in areas_of(world.alpha)}
    submit_grades(world.r1, world.users["reader_a"], zeros | {"pip_E__2": 1})
    submit_grades(world.r1, world.users["reader_b"], zeros | {"pip_E__2": 3})
    consensus_services.consensus_compute(project=world.alpha, dimension="erosion", aggregator="MajorityVote", compare_with=())
    version = ModelVersion.objects.create(project=world.alpha, number=3, status=ModelVersion.Status.ACTIVE)
    area = JointArea.objects.get(scheme=world.alpha.scheme, body_part="hand", code="pip_E__2")
    Suggestion.objects.create(radiograph=world.r1, model_version=version, area=area,
                              distribution=[0.05, 0.1, 0.6, 0.2, 0.05, 0.0], label=2)

    client.force_login(world.users["lead"])
    response = client.get(reverse("consensus-adjudication-viewer", args=[world.alpha.pk, world.r1.pk, "pip_E__2"]))

    page = response.content.decode()
    assert response.context["model_version"] == "v3" and response.context["suggestion"]["label"] == 2
    assert '<strong data-suggestion>2</strong>' in page and "60%" in page
    assert response.context["config"]["urls"]["heatmap"] == reverse("api-radiograph-heatmap", args=[world.r1.pk, "pip_E__2"])
    # Another area of the same film: the model made no suggestion there, and the page says so.
    other = client.get(reverse("consensus-adjudication-viewer", args=[world.alpha.pk, world.r1.pk, "mcp_E__3"])).content.decode()
    assert "The serving model made no suggestion for this area." in other
