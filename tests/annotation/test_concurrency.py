"""Two browser tabs save the same cell from the same version at the same moment."""
from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.urls import reverse

from annotation.models import GradeChange

from ..conftest import client_for


def race(world, grades_by_client: list[list[dict]]) -> list[int]:
    barrier = threading.Barrier(len(grades_by_client))
    codes: list[int] = [0] * len(grades_by_client)

    def put(index: int, grades: list[dict]) -> None:
        client = client_for(world.users["reader_a"])
        try:
            barrier.wait()
            response = client.put(reverse("api-grade-bulk-save", args=[world.a_own.pk]), {"grades": grades}, format="json")
            codes[index] = response.status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=put, args=(i, grades)) for i, grades in enumerate(grades_by_client)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return codes


@pytest.mark.django_db(transaction=True)
def test_concurrent_edits_of_one_version_one_wins_other_gets_409(world):
    client_for(world.users["reader_a"]).put(
        reverse("api-grade-bulk-save", args=[world.a_own.pk]), {"grades": [{"area": "mcp_J__2", "value": 1, "version": 0}]}, format="json"
    )
    codes = race(world, [[{"area": "mcp_J__2", "value": 2, "version": 1}], [{"area": "mcp_J__2", "value": 3, "version": 1}]])
    assert sorted(codes) == [200, 409]
    winner_value = 2 if codes[0] == 200 else 3
    history = list(GradeChange.objects.filter(grade__area__code="mcp_J__2").values_list("old_value", "new_value", "version"))
    assert history == [(None, 1, 1), (1, winner_value, 2)]


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_saves_of_one_cell_one_wins_other_gets_409(world):
    codes = race(world, [[{"area": "mcp_J__3", "value": 2, "version": 0}], [{"area": "mcp_J__3", "value": 4, "version": 0}]])
    assert sorted(codes) == [200, 409]
    winner_value = 2 if codes[0] == 200 else 4
    history = list(GradeChange.objects.filter(grade__area__code="mcp_J__3").values_list("old_value", "new_value", "version"))
    assert history == [(None, winner_value, 1)]
