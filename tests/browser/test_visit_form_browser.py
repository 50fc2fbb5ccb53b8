"""Reading by visit in real Chromium: a whole patient visit (both hands and a foot) graded on one
form by keyboard, joint by joint, and submitted in one request; the keystrokes to confirm a
pre-filled visit after looking at each joint, and to change one grade, measured for the README."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from annotation import services
from annotation.models import Assignment, Grade, JointArea, Landmark, Project
from consensus.models import ConsensusSettings
from consensus.services import consensus_settings_get
from frontend.scoresheet import score_rows
from tests.conftest import png_bytes

from .conftest import add_phantom_patient, log_in, reader_in, record_metrics, screenshot, url

pytestmark = pytest.mark.browser


def _by_visit_project(slug: str, suggestions: str = "off"):
    project = services.project_create(
        name=f"Visits {slug}", slug=slug, readers_per_radiograph=1, suggestions=suggestions, reading_unit=Project.ReadingUnit.VISIT
    )
    # Celery is eager here, so each submitted read would recompute the consensus inside the submit
    # request (a worker debounces them into one); these tests are about the form, not the consensus.
    ConsensusSettings.objects.filter(pk=consensus_settings_get(project=project).pk).update(auto_recompute=False)
    return project


def _wait_until_ready(page) -> None:
    page.locator("#visit[data-state=ready][data-image=painted]").wait_for()


def _joint_order(radiograph) -> list[str]:
    """The radiograph's cells in joint-by-joint order: erosion then JSN of each row of the form."""
    areas = JointArea.objects.filter(scheme=radiograph.project.scheme, body_part=radiograph.body_part).select_related("joint")
    rows = [row for row in score_rows(list(areas)) if not row.get("group_heading")]
    return [row[dimension]["code"] for row in rows for dimension in ("erosion", "jsn") if row[dimension]]


def _active_cell(page) -> str:
    return page.evaluate("`${document.activeElement.dataset.read}:${document.activeElement.dataset.code}`")


def test_a_whole_visit_is_graded_by_keyboard_joint_by_joint_and_submitted_in_one_request(new_page, live_server, schemes):
    project = _by_visit_project("visit-keys")
    right, left = add_phantom_patient(project, "PHANTOM-VISIT", seed=11, width=480, height=600)
    foot = services.radiograph_add(
        project=project, pseudonym="PHANTOM-VISIT", laterality="R", body_part="foot", image_bytes=png_bytes(480, 600, seed=12),
        image_suffix="png", width=480, height=600,
    ).radiograph
    reader = reader_in(project, "visit_keys_reader")
    reads = {}
    for radiograph, priority in [(right, 0.0), (left, 1.0), (foot, 2.0)]:
        (reads[radiograph.pk],) = services.assignments_create(radiograph=radiograph, readers=[reader], priority=priority)
    page = new_page()
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server, "visit_keys_reader", "pw-visit_keys_reader")
    page.goto(url(live_server, "worklist", project.pk))
    page.get_by_role("link", name="Open visit PHANTOM-VISIT baseline").click()
    expect(page).to_have_url(url(live_server, "visit-workspace", right.visit_id))
    _wait_until_ready(page)
    # One form: the right and left hands' 31 cells each and the right foot's 12; no left foot ("·").
    expect(page.locator("td[data-code]")).to_have_count(74)
    expect(page.get_by_role("gridcell", name="Left foot, MTP 1, Erosion: no radiograph")).to_have_text("·")
    page.keyboard.press("o")
    expect(page.get_by_role("button", name="Order: joints")).to_have_attribute("aria-pressed", "true")

    expected = [f"{reads[r.pk].pk}:{code}" for r in (right, left, foot) for code in _joint_order(r)]
    visited, typed, sides = [], {}, []
    for index in range(len(expected)):
        cell = _active_cell(page)
        visited.append(cell)
        sides.append(page.locator("#visit").get_attribute("data-side"))
        # Foot erosion goes to 10: "1" then "0" on its first cell; three digits cycle elsewhere.
        keys = ["1", "0"] if cell.endswith(":mtp_E__ip") else [("0", "2", "3")[index % 3]]
        for key in keys:
            page.keyboard.press(key)
        typed[cell] = int("".join(keys))
    assert visited == expected
    # The image shown follows the side of the selected cell: the right hand, the left, then the foot.
    assert sides[0] == "hand:R" and sides[31] == "hand:L" and sides[62] == "foot:R"
    assert len(set(sides[:31])) == len(set(sides[31:62])) == len(set(sides[62:])) == 1
    expect(page.locator('[data-total="visit"]')).to_have_text(str(sum(typed.values())))
    expect(page.locator('[data-total="foot:R:erosion"]')).to_have_text(str(sum(v for k, v in typed.items() if "mtp_E" in k)))
    screenshot(page, "visit-form-1366x768")

    page.keyboard.press("Control+Enter")
    expect(page).to_have_url(url(live_server, "worklist", project.pk))
    saved = {f"{g.assignment_id}:{g.area.code}": g.value for g in Grade.objects.filter(assignment__reader=reader).select_related("area")}
    assert saved == typed
    statuses = set(Assignment.objects.filter(reader=reader).values_list("status", flat=True))
    assert statuses == {"submitted"}
    assert Grade.objects.get(assignment=reads[foot.pk], area__code="mtp_E__ip").value == 10


def _screen_point(page, stage, x: float, y: float, width: int, height: int) -> tuple[float, float]:
    box = page.locator(f'[data-stage="{stage}"]').bounding_box()
    scale = min(box["width"] / width, box["height"] / height)
    return (box["x"] + (box["width"] - width * scale) / 2 + x * scale, box["y"] + (box["height"] - height * scale) / 2 + y * scale)


def test_a_prefilled_visit_is_confirmed_one_key_per_joint_looked_at_and_one_grade_changes_in_one_key(
    new_page, live_server, schemes, settings, capsys, record_property
):
    settings.SUGGESTION_PROVIDER = "tests.browser.phantom_suggestions.from_phantom_truth"
    project = _by_visit_project("visit-metrics", suggestions="assisted")
    first = add_phantom_patient(project, "PHANTOM-V1", seed=21, width=480, height=600)
    second = add_phantom_patient(project, "PHANTOM-V2", seed=22, width=480, height=600)
    reader = reader_in(project, "visit_metrics_reader")
    for priority, radiograph in enumerate([*first, *second]):
        services.assignments_create(radiograph=radiograph, readers=[reader], priority=priority)
    truth = {r.pk: r.metadata["phantom_truth"] for r in [*first, *second]}
    page = new_page()
    log_in(page, live_server, "visit_metrics_reader", "pw-visit_metrics_reader")
    page.goto(url(live_server, "worklist-next", project.pk))
    expect(page).to_have_url(url(live_server, "visit-workspace", first[0].visit_id))
    _wait_until_ready(page)
    suggested = page.locator("td.suggested")
    expect(suggested).to_have_count(62)

    keystrokes = 0

    def press(key: str) -> None:
        nonlocal keystrokes
        page.keyboard.press(key)
        keystrokes += 1

    # `A` before looking confirms nothing: no joint has been visited yet.
    page.keyboard.press("a")
    expect(suggested).to_have_count(62)
    expect(page.get_by_role("alert")).to_contain_text("0 suggestions confirmed; 62 not looked at yet")
    # Enter confirms the suggestion under the cursor and moves on, through both hands.
    for _ in range(62):
        press("Enter")
    expect(suggested).to_have_count(0)
    press("Control+Enter")
    expect(page).to_have_url(url(live_server, "visit-workspace", second[0].visit_id))
    confirm_keystrokes = keystrokes
    grades = list(Grade.objects.filter(assignment__radiograph__in=first).select_related("area__joint", "assignment"))
    assert len(grades) == 62 and {grade.source for grade in grades} == {"accepted"}
    assert all(g.value == truth[g.assignment.radiograph_id][g.area.dimension][g.area.joint.name] for g in grades)
    assert set(Assignment.objects.filter(radiograph__in=first).values_list("status", flat=True)) == {"submitted"}

    # The next visit: click the right hand's MCP 3 marker, then one digit.
    _wait_until_ready(page)
    expect(suggested).to_have_count(62)
    right, left = second
    mcp3 = Landmark.objects.get(radiograph=right, joint__name="mcp3")
    right_read = Assignment.objects.get(radiograph=right)
    page.mouse.click(*_screen_point(page, right_read.pk, mcp3.x, mcp3.y, right.width, right.height))
    expect(page.get_by_role("gridcell", name="Right hand, MCP 3, Erosion:")).to_have_attribute("aria-selected", "true")
    keystrokes = 0
    new_value = (truth[right.pk]["erosion"]["mcp3"] + 2) % 6
    press(str(new_value))
    change_keystrokes = keystrokes
    # The same joint on the other hand: S shows the left hand at MCP 3 erosion, then one digit.
    keystrokes = 0
    press("ArrowUp")  # back to MCP 3 (the digit moved on)
    press("s")
    expect(page.locator("#visit")).to_have_attribute("data-side", "hand:L")
    left_value = (truth[left.pk]["erosion"]["mcp3"] + 3) % 6
    press(str(left_value))
    other_side_keystrokes = keystrokes
    expect(page.get_by_role("status", name="Save state")).to_have_text("Saved")
    changed = {
        g.assignment.radiograph_id: (g.value, g.source)
        for g in Grade.objects.filter(assignment__radiograph__in=second, area__code="mcp_E__3").select_related("assignment")
    }
    assert changed == {right.pk: (new_value, "edited"), left.pk: (left_value, "edited")}
    screenshot(page, "visit-form-prefilled")
    # At 1366 x 768 both hands' rows and the visit's totals fit without scrolling the table.
    page.set_viewport_size({"width": 1366, "height": 768})
    scroller = page.locator(".scores-scroll")
    expect(scroller).to_have_js_property("scrollTop", 0)
    assert scroller.evaluate("(element) => element.scrollHeight <= element.clientHeight + 1"), "the visit form scrolls"
    box = page.locator('[data-total="visit"]').bounding_box()
    assert box["y"] + box["height"] <= 768
    screenshot(page, "visit-form-hands-1366x768")

    metrics = {
        "keystrokes_confirm_prefilled_visit_two_hands_after_looking_at_each_cell_and_submit": confirm_keystrokes,
        "keystrokes_change_one_grade_of_a_visit_after_clicking_its_marker": change_keystrokes,
        "keystrokes_change_the_same_joint_on_the_other_hand_of_a_visit": other_side_keystrokes,
    }
    for name, value in metrics.items():
        record_property(name, value)
    path = record_metrics(metrics)
    with capsys.disabled():
        print(f"\nVisit form metrics (two 480 x 600 phantom hands, Chromium headless, localhost): {metrics} -> {path}")
    assert (confirm_keystrokes, change_keystrokes, other_side_keystrokes) == (62 + 1, 1, 3)


def test_a_reload_of_the_visit_form_right_after_typing_shows_what_the_database_holds(new_page, live_server, schemes):
    project = _by_visit_project("visit-reload")
    right, left = add_phantom_patient(project, "PHANTOM-VR", seed=31, width=480, height=600)
    reader = reader_in(project, "visit_reload_reader")
    reads = {r.pk: services.assignments_create(radiograph=r, readers=[reader])[0] for r in (right, left)}
    page = new_page()
    log_in(page, live_server, "visit_reload_reader", "pw-visit_reload_reader")
    page.goto(url(live_server, "visit-workspace", right.visit_id))
    _wait_until_ready(page)
    for key in "2301":  # right hand, down the erosion column
        page.keyboard.press(key)
    page.keyboard.press("s")  # the same joint of the left hand
    for key in "432":
        page.keyboard.press(key)
    # At once, before the autosave's pause is over: the page's last saves leave on `pagehide`.
    page.reload()
    _wait_until_ready(page)
    expect(page.get_by_role("status", name="Save state")).to_have_text("Saved")
    grid = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('td[data-code]')].filter((td) => td.textContent !== '–')"
        ".map((td) => [`${td.dataset.read}:${td.dataset.code}`, td.textContent]))"
    )
    database = {f"{g.assignment_id}:{g.area.code}": str(g.value) for g in Grade.objects.filter(assignment__reader=reader).select_related("area")}
    assert grid == database and len(database) == 7
    assert sorted({key.split(":")[0] for key in database}) == sorted(str(read.pk) for read in reads.values())
    assert page.locator("dialog[open]").count() == 0  # no conflict with the reader's own earlier page
    # The reload goes on where the reader was: the left hand, whose marker moves like on the single page.
    expect(page.locator("#visit")).to_have_attribute("data-side", "hand:L")
    mcp2 = Landmark.objects.get(radiograph=left, joint__name="mcp2")
    start = _screen_point(page, reads[left.pk].pk, mcp2.x, mcp2.y, left.width, left.height)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 12, start[1] + 8, steps=4)
    page.mouse.up()
    expect(page.get_by_role("alert")).to_have_text("Marker saved as your landmark.")
    moved = Landmark.objects.get(radiograph=left, joint__name="mcp2", source=Landmark.Source.READER)
    assert moved.created_by == reader and moved.x > mcp2.x + 5
