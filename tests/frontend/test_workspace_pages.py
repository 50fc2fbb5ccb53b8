"""Server side of the reader workspace: worklist, next, the workspace page, CSV, print and translations."""
from __future__ import annotations

import csv
import io
import json

from django.urls import reverse

from annotation import services
from annotation.models import Assignment, JointArea
from annotation.services import GradeInput


def _grade(assignment, user, **values):
    areas = {area.code: area for area in JointArea.objects.filter(scheme=assignment.radiograph.project.scheme, body_part="hand")}
    items = [GradeInput(area=areas[code], value=value, version=0) for code, value in values.items()]
    services.grade_bulk_save(assignment=assignment, user=user, items=items)


def _config(response) -> dict:
    page = response.content.decode()
    start = page.index('<script id="workspace-config" type="application/json">') + len('<script id="workspace-config" type="application/json">')
    return json.loads(page[start:page.index("</script>", start)])


def test_worklist_lists_my_reads_in_priority_order_with_progress(client, world):
    client.force_login(world.users["reader_b"])
    _grade(world.b_on_r2, world.users["reader_b"], pip_E__2=1)
    page = client.get(reverse("worklist", args=[world.alpha.pk])).content.decode()
    assert page.index("ALPHA-PSEUDO-001") < page.index("ALPHA-PSEUDO-002")  # r1 has priority 0, r2 1
    assert "0 of 2 radiographs submitted" in page and "1 in progress" in page and "1 not started" in page
    assert "1 / 31" in page
    assert reverse("worklist-next", args=[world.alpha.pk]) in page


def test_worklist_of_a_project_i_am_not_in_is_not_found(client, world):
    client.force_login(world.users["reader_a"])
    assert client.get(reverse("worklist", args=[world.beta.pk])).status_code == 404


def test_start_next_opens_started_work_first_then_says_nothing_is_left(client, world):
    client.force_login(world.users["reader_b"])
    _grade(world.b_on_r2, world.users["reader_b"], pip_E__2=1)
    response = client.get(reverse("worklist-next", args=[world.alpha.pk]))
    assert response["Location"] == reverse("workspace", args=[world.b_on_r2.pk])
    Assignment.objects.filter(reader=world.users["reader_b"]).update(status=Assignment.Status.SUBMITTED)
    response = client.get(reverse("worklist-next", args=[world.alpha.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("worklist", args=[world.alpha.pk])
    assert "Nothing left to read in this project." in response.content.decode()


def test_a_reader_cannot_open_another_readers_workspace(client, world):
    client.force_login(world.users["reader_a"])
    for name in ("workspace", "workspace-csv", "workspace-print"):
        assert client.get(reverse(name, args=[world.b_on_r2.pk])).status_code == 404
    client.force_login(world.users["outsider"])
    assert client.get(reverse("workspace", args=[world.a_own.pk])).status_code == 404


def test_workspace_asks_anonymous_visitors_to_log_in(client, world):
    response = client.get(reverse("workspace", args=[world.a_own.pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_workspace_table_follows_the_paper_form(client, world):
    client.force_login(world.users["reader_a"])
    response = client.get(reverse("workspace", args=[world.a_own.pk]))
    config = _config(response)
    headings = [row["label"] for row in config["rows"] if row.get("group_heading")]
    assert headings == ["PIP", "Thumb IP and MCP", "Wrist"]
    joints = [row["joint"] for row in config["rows"] if not row.get("group_heading")]
    assert joints[:5] == ["pip2", "pip3", "pip4", "pip5", "ip1"] and len(joints) == 22
    by_joint = {row["joint"]: row for row in config["rows"] if not row.get("group_heading")}
    assert by_joint["mna"]["erosion"] is None and by_joint["mna"]["jsn"]["code"] == "wrist_J__mna"
    assert by_joint["nav"]["jsn"] is None and by_joint["nav"]["erosion"]["max_grade"] == 5
    assert config["urls"]["display_image"] == reverse("api-radiograph-rendition", args=[world.r1.pk, "display"])
    page = response.content.decode()
    assert "Research use only" in page and 'rel="preload" as="image"' in page


def test_prototype_scheme_shows_dip_rows_and_cmc1_without_jsn(client, world):
    prototype = services.project_create(name="Prototype", slug="proto", scheme_key="prototype")
    from tests.conftest import make_radiograph

    radiograph = make_radiograph(prototype, "P-1")
    services.membership_set(user=world.users["reader_a"], project=prototype, role="reader")
    (assignment,) = services.assignments_create(radiograph=radiograph, readers=[world.users["reader_a"]])
    client.force_login(world.users["reader_a"])
    config = _config(client.get(reverse("workspace", args=[assignment.pk])))
    assert [row["label"] for row in config["rows"] if row.get("group_heading")] == ["DIP", "PIP", "Thumb IP and MCP", "Wrist"]
    cmc1 = next(row for row in config["rows"] if row.get("joint") == "cmc1")
    assert cmc1["jsn"] is None and cmc1["erosion"]["code"] == "wrist_E__mc1"


def test_blinded_workspace_carries_none_of_the_other_readers_values(client, world):
    _grade(world.a_own, world.users["reader_a"], pip_E__2=4, pip_J__2=3)
    client.force_login(world.users["reader_b"])
    config = _config(client.get(reverse("workspace", args=[world.b_on_r1.pk])))
    assert config["grades"] == [] and config["visit_totals"] == []


def test_csv_download_is_the_saved_table_with_x_where_not_scored(client, world):
    _grade(world.a_own, world.users["reader_a"], pip_E__2=3, pip_J__2=2, wrist_J__mna=1)
    client.force_login(world.users["reader_a"])
    response = client.get(reverse("workspace-csv", args=[world.a_own.pk]))
    assert response["Content-Disposition"] == 'attachment; filename="ALPHA-PSEUDO-001-baseline-RH-scores.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_joint = {row["joint"]: row for row in rows}
    assert (by_joint["PIP 2"]["erosion"], by_joint["PIP 2"]["jsn"]) == ("3", "2")
    assert (by_joint["Multangular-navicular"]["erosion"], by_joint["Multangular-navicular"]["jsn"]) == ("X", "1")
    assert by_joint["PIP 3"]["erosion"] == ""
    assert (by_joint["total"]["erosion"], by_joint["total"]["jsn"], by_joint["svdh_total"]["erosion"]) == ("3", "3", "6")
    assert len(rows) == 22 + 4  # the totals of the image, then the visit total (empty: one hand only) and the maximum
    assert (by_joint["svdh_visit_total"]["erosion"], by_joint["svdh_max"]["erosion"]) == ("", "448")


def test_print_page_shows_saved_values_totals_and_the_disclaimer(client, world):
    _grade(world.a_own, world.users["reader_a"], pip_E__2=3, mcp_J__1=4)
    client.force_login(world.users["reader_a"])
    page = client.get(reverse("workspace-print", args=[world.a_own.pk])).content.decode()
    assert "Research use only" in page and "ALPHA-PSEUDO-001" in page
    assert "Not submitted: saved grades so far" in page
    assert '<td colspan="2">7</td>' in page


def test_workspace_speaks_russian_in_templates_and_scripts(client, world):
    client.force_login(world.users["reader_a"])
    response = client.get(reverse("workspace", args=[world.a_own.pk]), HTTP_ACCEPT_LANGUAGE="ru")
    page = response.content.decode()
    assert "Только для исследований" in page and "Эрозия" in page and "Сохранено" in page
    rows = _config(response)["rows"]
    assert [row["label"] for row in rows if row.get("group_heading")][-1] == "Запястье"
    assert next(row for row in rows if row.get("joint") == "nav")["label"] == "Ладьевидная"
    catalog = client.get(reverse("javascript-catalog"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Saving\\u2026" in catalog or "Saving…" in catalog
    assert "\\u0421\\u043e\\u0445\\u0440\\u0430\\u043d\\u0435\\u043d\\u0438\\u0435" in catalog or "Сохранение" in catalog


def test_the_workspace_names_each_other_film_of_the_visit_in_words(client, world):
    from tests.conftest import make_radiograph

    left = make_radiograph(world.alpha, "ALPHA-PSEUDO-001", laterality="L")  # same patient and visit as r1
    (mine_left,) = services.assignments_create(radiograph=left, readers=[world.users["reader_a"]])
    _grade(mine_left, world.users["reader_a"], pip_E__2=3)
    client.force_login(world.users["reader_a"])
    config = _config(client.get(reverse("workspace", args=[world.a_own.pk])))
    assert [(other["label"], other["graded"], other["areas"]) for other in config["visit_totals"]] == [("Left hand", 1, 31)]
    config = _config(client.get(reverse("workspace", args=[world.a_own.pk]), HTTP_ACCEPT_LANGUAGE="ru"))
    assert [other["label"] for other in config["visit_totals"]] == ["Левая кисть"]
