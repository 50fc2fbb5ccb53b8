"""Genant and Larsen projects in real Chromium: read by keyboard, submitted, fused and exported.

The grid, the keys and the totals come from the scheme rows: half grades by "2" then "." on
Genant erosion, a "Larsen grade" column whose wrist counts five times.
"""
from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from annotation import services
from annotation.models import Assignment, Grade
from consensus import exports
from consensus import services as consensus_services

from ..consensus.conftest import areas_of, submit_grades
from .conftest import add_phantom_patient, log_in, reader_in, screenshot, url, wait_until_ready

pytestmark = pytest.mark.browser


def _selected(page) -> str:
    return page.locator('td[aria-selected="true"]').get_attribute("data-code")


def _open_first(page, live_server, username: str, assignment) -> None:
    log_in(page, live_server, username, f"pw-{username}")
    page.get_by_role("link", name="Start next").click()
    expect(page).to_have_url(url(live_server, "workspace", assignment.pk))
    wait_until_ready(page)


def test_a_genant_hand_is_read_in_half_grades_by_keyboard_then_fused_and_exported(new_page, live_server, schemes):
    project = services.project_create(name="Genant reading", slug="genant", scheme_key="genant", readers_per_radiograph=1)
    right, _left = add_phantom_patient(project, "PHANTOM-G01", seed=12, width=480, height=600)
    reader = reader_in(project, "genant_reader")
    (assignment,) = services.assignments_create(radiograph=right, readers=[reader])
    page = new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _open_first(page, live_server, "genant_reader", assignment)

    expect(page.locator('[data-dimension-head="erosion"]')).to_contain_text("0–3.5")
    expect(page.locator('[data-dimension-head="jsn"]')).to_contain_text("0–4")
    order = [cell.get_attribute("data-code") for cell in page.locator("td[data-code]").all()]
    erosion = [code for code in order if "_E__" in code]
    jsn = [code for code in order if "_J__" in code]
    assert (len(erosion), len(jsn)) == (14, 13) and _selected(page) == erosion[0]

    # "2" "." -> 2.5; "3" "." -> 3.5; "4" is beyond 3.5 and refused where the cursor stands.
    for key in ["2", ".", "3", "."]:
        page.keyboard.press(key)
    page.keyboard.press("4")
    expect(page.locator("[data-sheet-notice]")).to_contain_text("0–3.5")
    assert _selected(page) == erosion[2]
    # The rest of erosion whole grades (one key each), then JSN 0-4.
    rest = "012301230123"
    for key in rest + "0123401234012":
        page.keyboard.press(key)
    expect(page.get_by_role("status", name="Save state")).to_have_text("Saved")
    expected_levels = {erosion[0]: 5, erosion[1]: 7} | {code: 2 * int(k) for code, k in zip(erosion[2:], rest)}
    expected_levels |= {code: int(k) for code, k in zip(jsn, "0123401234012")}
    saved = dict(Grade.objects.filter(assignment=assignment).values_list("area__code", "value"))
    assert saved == expected_levels
    texts = dict(zip(order, page.locator("td[data-code]").all_inner_texts()))
    assert (texts[erosion[0]], texts[erosion[1]], texts[erosion[3]]) == ("2.5", "3.5", "1")
    erosion_total = 2.5 + 3.5 + sum(int(k) for k in rest)
    jsn_total = sum(int(k) for k in "0123401234012")
    expect(page.get_by_role("row", name=re.compile("^Hand total"))).to_have_text(
        re.compile(rf"Hand total\s*{erosion_total:g}\s*{jsn_total}")
    )
    expect(page.get_by_role("row", name=re.compile("^Genant total, this image"))).to_contain_text(f"{erosion_total + jsn_total:g}")
    screenshot(page, "workspace-genant-half-grades")

    page.keyboard.press("Control+Enter")
    expect(page).to_have_url(re.compile(r"/worklist|/workspace/"))
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.SUBMITTED
    assert errors == []

    # The other hand, graded by the same reader outside the browser, completes the patient's totals.
    submit_grades(_left, reader, {area.code: 0 for area in areas_of(project)})
    for dimension in ("erosion", "jsn"):
        run = consensus_services.consensus_compute(project=project, dimension=dimension, compare_with=())
        assert run.status == "ok", run.error
    (row,) = list(csv.DictReader(io.StringIO(exports.consensus_ra2_csv(project=project))))
    assert (row[f"RH_{erosion[0]}"], row[f"RH_{erosion[1]}"]) == ("2.5", "3.5")
    assert float(row["Overall_erosion"]) == erosion_total and float(row["Overall_narrowing"]) == jsn_total


def test_a_larsen_hand_is_read_by_keyboard_and_its_wrist_counts_five_times(new_page, live_server, schemes):
    project = services.project_create(name="Larsen reading", slug="larsen", scheme_key="larsen", readers_per_radiograph=1)
    _right, left = add_phantom_patient(project, "PHANTOM-L01", seed=13, width=480, height=600)
    reader = reader_in(project, "larsen_reader")
    (assignment,) = services.assignments_create(radiograph=left, readers=[reader])
    page = new_page()
    _open_first(page, live_server, "larsen_reader", assignment)

    expect(page.locator('[data-dimension-head="erosion"]')).to_contain_text("Larsen grade")
    expect(page.locator('[data-dimension-head="erosion"]')).to_contain_text("0–5")
    order = [cell.get_attribute("data-code") for cell in page.locator("td[data-code]").all()]
    assert len(order) == 11 and order[-1] == "wrist_E__unit"
    page.keyboard.press(".")  # no half grades on this scale: said, nothing saved
    expect(page.locator("[data-sheet-notice]")).to_contain_text("no half grades")
    keys = "1111111111" + "3"
    for key in keys:
        page.keyboard.press(key)
    expect(page.get_by_role("status", name="Save state")).to_have_text("Saved")
    expect(page.get_by_role("row", name=re.compile("^Larsen total, this image"))).to_contain_text("25")
    screenshot(page, "workspace-larsen")
    page.keyboard.press("Control+Enter")
    expect(page).to_have_url(re.compile(r"/worklist|/workspace/"))
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.SUBMITTED

    submit_grades(_right, reader, {area.code: 0 for area in areas_of(project)})
    consensus_services.consensus_compute(project=project, dimension="erosion", compare_with=())
    text = exports.consensus_ra2_csv(project=project)
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["Larsen_total"] == "25" and row["LH_wrist_E__unit"] == "3"
