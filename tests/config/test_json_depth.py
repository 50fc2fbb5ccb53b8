"""A JSON body nested deeper than any request needs is a 400 on every JSON write endpoint."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import client_for

DEEP = "[" * 2000 + "]" * 2000  # 4 KB; Python's recursive decoder gives up near 1,000 levels


def _endpoints(world):
    a = world.a_own.pk
    return [
        ("put", reverse("api-grade-bulk-save", args=[a]), world.users["reader_a"]),
        ("put", reverse("api-assignment-landmarks", args=[a]), world.users["reader_a"]),
        ("post", reverse("api-assignment-submit", args=[a]), world.users["reader_a"]),
        ("post", reverse("api-consensus-adjudications", args=[world.alpha.pk]), world.users["lead"]),
        ("post", reverse("api-consensus-recompute", args=[world.alpha.pk]), world.users["lead"]),
    ]


@pytest.mark.parametrize("body", [DEEP, '{"grades": ' + "[" * 5000 + "]" * 5000 + "}", '{"a":' * 3000 + "1" + "}" * 3000])
def test_deeply_nested_json_gets_400_on_every_json_write_endpoint(world, body):
    for method, url, user in _endpoints(world):
        response = getattr(client_for(user), method)(url, data=body, content_type="application/json")
        assert response.status_code == 400, (url, response.status_code)
        assert "nests" in response.json()["detail"], url


def test_json_at_a_reasonable_depth_is_still_parsed(world):
    # 60 levels: deeper than any real request, within the limit; refused by the serializer, not the parser.
    body = '{"grades": [' + "[" * 59 + "]" * 59 + "]}"
    response = client_for(world.users["reader_a"]).put(
        reverse("api-grade-bulk-save", args=[world.a_own.pk]), data=body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "grades" in response.json()
