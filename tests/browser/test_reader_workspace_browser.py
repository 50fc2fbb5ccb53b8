"""The reader workspace in real Chromium: keyboard grading, autosave, offline, blinding, access by URL."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from annotation import services
from annotation.models import Assignment, Grade, JointArea
from annotation.services import GradeInput

from .conftest import add_phantom_patient, log_in, reader_in, screenshot, url, wait_until_ready

pytestmark = pytest.mark.browser

# Erosion cells come first on the form (16 in svdh), then JSN (15), each in table order.
EROSION_KEYS = "0123450123450123"
JSN_KEYS = "012340123401234"


def _cell(page, joint: str, dimension: str):
    return page.get_by_role("gridcell", name=f"{joint}, {dimension}:")


def _graded_cells(page) -> list[str]:
    return page.locator("td[data-code]").all_inner_texts()


@pytest.fixture
def hands_project(schemes):
    project = services.project_create(name="Hands reading", slug="hands", readers_per_radiograph=2, blinded=True)
    right, left = add_phantom_patient(project, "PHANTOM-001", seed=11, width=640, height=800)
    return project, right, left


def test_reader_grades_a_hand_by_keyboard_and_loses_nothing(new_page, live_server, hands_project):
    project, right, left = hands_project
    reader = reader_in(project, "keyboard_reader")
    (first,) = services.assignments_create(radiograph=right, readers=[reader], priority=0)
    (second,) = services.assignments_create(radiograph=left, readers=[reader], priority=1)
    page = new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    log_in(page, live_server, "keyboard_reader", "pw-keyboard_reader")
    page.get_by_role("link", name="Start next").click()
    expect(page).to_have_url(url(live_server, "workspace", first.pk))
    wait_until_ready(page)

    # Moving around: arrows and Tab between joints, J and E between the columns.
    def selected() -> str:
        return page.locator('td[aria-selected="true"]').get_attribute("data-code")

    assert selected() == "pip_E__2"
    for key, expected_cell in [("ArrowDown", "pip_E__3"), ("j", "pip_J__3"), ("Tab", "pip_J__4"),
                               ("Shift+Tab", "pip_J__3"), ("ArrowUp", "pip_J__2"), ("e", "pip_E__2")]:
        page.keyboard.press(key)
        assert selected() == expected_cell, key

    # The whole hand by keyboard: one digit per cell, the cursor moves on by itself.
    for key in EROSION_KEYS + JSN_KEYS:
        page.keyboard.press(key)
    save_state = page.get_by_role("status", name="Save state")
    expect(save_state).to_have_text("Saved")
    areas = list(JointArea.objects.filter(scheme=project.scheme, body_part="hand"))
    order = [cell.get_attribute("data-code") for cell in page.locator("td[data-code]").all()]
    erosion_codes = [code for code in order if "_E__" in code]
    jsn_codes = [code for code in order if "_J__" in code]
    expected = dict(zip(erosion_codes, map(int, EROSION_KEYS))) | dict(zip(jsn_codes, map(int, JSN_KEYS)))
    saved = dict(Grade.objects.filter(assignment=first).values_list("area__code", "value"))
    assert saved == expected and len(saved) == len(areas) == 31
    assert set(Grade.objects.filter(assignment=first).values_list("source", flat=True)) == {"manual"}

    # Undo takes back the last grade locally; redo puts it back.
    last_jsn = _cell(page, "Radiocarpal", "JSN")
    page.keyboard.press("Control+z")
    expect(page.get_by_role("gridcell", name=re.compile(r"^Radiocarpal, JSN: not graded"))).to_have_count(1)
    page.keyboard.press("Control+y")
    expect(last_jsn).to_have_text(JSN_KEYS[-1])
    expect(save_state).to_have_text("Saved")
    expect(page.get_by_role("row", name=re.compile("^Hand total"))).to_have_text(re.compile(r"Hand total\s*36\s*30"))
    screenshot(page, "workspace-graded-by-keyboard")

    # A reload shows what the server has.
    page.reload()
    wait_until_ready(page)
    assert "".join(_graded_cells(page)) == "".join(
        str(expected[code]) for code in order
    )

    # Offline: edits stay in the page and in localStorage, even across a reload, and reach the
    # server once it answers again. (The radiograph itself stays reachable, as it would from the
    # browser's cache.)
    page.route("**/api/assignments/**", lambda route: route.abort())
    _cell(page, "PIP 3", "Erosion").click()
    page.keyboard.press("5")  # PIP 3 erosion 1 -> 5, cursor moves to PIP 4
    page.keyboard.press("4")  # PIP 4 erosion 2 -> 4
    expect(save_state).to_contain_text("Offline")
    expect(save_state).to_contain_text("2 changes kept in this browser")
    screenshot(page, "workspace-offline")
    page.reload()
    wait_until_ready(page)
    expect(_cell(page, "PIP 3", "Erosion")).to_have_text("5")
    expect(_cell(page, "PIP 4", "Erosion")).to_have_text("4")
    expect(save_state).to_contain_text("Offline")

    # Meanwhile another window of the same reader saved PIP 3 erosion as 2: the page must show
    # both values and let the reader choose instead of overwriting either.
    pip3 = Grade.objects.get(assignment=first, area__code="pip_E__3")
    services.grade_bulk_save(
        assignment=first, user=reader, items=[GradeInput(area=pip3.area, value=2, version=pip3.version)]
    )
    page.unroute("**/api/assignments/**")
    dialog = page.get_by_role("dialog", name="These grades were changed elsewhere")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("radio", name="Keep mine: 5")).to_be_checked()
    expect(dialog.get_by_role("radio", name="Use the saved value: 2")).to_be_visible()
    screenshot(page, "workspace-conflict")
    dialog.get_by_role("button", name="Apply my choices").click()
    expect(save_state).to_have_text("Saved")
    saved = dict(Grade.objects.filter(assignment=first).values_list("area__code", "value"))
    assert (saved["pip_E__3"], saved["pip_E__4"]) == (5, 4)

    # Submit: done on the server, and the next radiograph opens.
    page.keyboard.press("Control+Enter")
    expect(page).to_have_url(url(live_server, "workspace", second.pk))
    wait_until_ready(page)
    first.refresh_from_db()
    assert first.status == Assignment.Status.SUBMITTED and first.seconds_spent >= 1
    expect(page.get_by_role("heading", name=re.compile("PHANTOM-001 · baseline · Left hand"))).to_be_visible()
    screenshot(page, "workspace-next-after-submit")
    assert errors == []


def test_second_reader_in_a_blinded_project_sees_none_of_the_first_readers_values(new_page, live_server, hands_project):
    project, right, _ = hands_project
    first_reader, second_reader = reader_in(project, "first_reader"), reader_in(project, "second_reader")
    (theirs,) = services.assignments_create(radiograph=right, readers=[first_reader])
    (mine,) = services.assignments_create(radiograph=right, readers=[second_reader])
    areas = JointArea.objects.filter(scheme=project.scheme, body_part="hand")
    services.grade_bulk_save(
        assignment=theirs, user=first_reader,
        items=[GradeInput(area=area, value=min(3, area.max_grade), version=0) for area in areas],
    )
    page = new_page()
    log_in(page, live_server, "second_reader", "pw-second_reader")
    page.goto(url(live_server, "worklist", project.pk))
    page.get_by_role("link", name="Start next").click()
    expect(page).to_have_url(url(live_server, "workspace", mine.pk))
    wait_until_ready(page)
    assert set(_graded_cells(page)) == {"–"}
    expect(page.locator('[data-total="image"]')).to_have_text("0")
    # No model in this project: the heatmap toggle says so rather than showing nothing.
    page.get_by_role("button", name="Model heatmap").click()
    expect(page.get_by_role("status", name="Viewer notice")).to_contain_text("No model yet")
    screenshot(page, "workspace-blinded-second-reader")


def test_a_reader_cannot_open_another_readers_assignment_by_url(new_page, live_server, hands_project):
    project, right, left = hands_project
    owner, other = reader_in(project, "owner_reader"), reader_in(project, "curious_reader")
    (owned,) = services.assignments_create(radiograph=left, readers=[owner])
    services.assignments_create(radiograph=right, readers=[other])
    page = new_page()
    log_in(page, live_server, "curious_reader", "pw-curious_reader")
    response = page.goto(url(live_server, "workspace", owned.pk))
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_role("note")).to_have_text("Research use only. Not for clinical diagnosis or patient management.")
    expect(page.locator("td[data-code]")).to_have_count(0)
    api = page.request.get(url(live_server, "api-assignment-detail", owned.pk))
    assert api.status == 404
    screenshot(page, "workspace-other-readers-assignment")
