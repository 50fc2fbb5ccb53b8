"""Measured in Chromium on a 2,000 x 2,500 phantom: time to first image paint, and keystrokes to
confirm a pre-filled hand after looking at each cell and to change one grade. The figures go to the terminal and to
test-artifacts/workspace-metrics.json."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from annotation import services
from annotation.models import Assignment, Grade, Landmark

from .conftest import add_phantom_patient, log_in, reader_in, record_metrics, screenshot, url, wait_until_ready
from .phantom_suggestions import MODEL_VERSION

pytestmark = pytest.mark.browser

FIRST_PAINT_TARGET_MS = 1000
# With nothing cached the server decodes the 16-bit file first; on a busy 2-core machine that alone
# can take most of a second, so the cold figure is reported against the target and guarded looser.
COLD_PAINT_LIMIT_MS = 2000
WIDTH, HEIGHT = 2000, 2500


@pytest.fixture
def assisted_project(schemes, settings):
    settings.SUGGESTION_PROVIDER = "tests.browser.phantom_suggestions.from_phantom_truth"
    project = services.project_create(
        name="Assisted hands", slug="assisted", readers_per_radiograph=1, blinded=True, suggestions="assisted"
    )
    right, left = add_phantom_patient(project, "PHANTOM-BIG", seed=5, width=WIDTH, height=HEIGHT)
    return project, right, left


def _first_paint_ms(page) -> float:
    return page.evaluate("performance.getEntriesByName('radiograph-first-paint')[0].startTime")


def _screen_point(page, x: float, y: float) -> tuple[float, float]:
    """Where an image pixel is on screen while the viewer fits the image, as the reader sees it."""
    box = page.locator("[data-stage]").bounding_box()
    scale = min(box["width"] / WIDTH, box["height"] / HEIGHT)
    return (box["x"] + (box["width"] - WIDTH * scale) / 2 + x * scale, box["y"] + (box["height"] - HEIGHT * scale) / 2 + y * scale)


def test_prefilled_hand_is_confirmed_in_one_keystroke_per_cell_looked_at_and_one_grade_changes_in_one(
    new_page, live_server, assisted_project, capsys, record_property
):
    project, right, left = assisted_project
    reader = reader_in(project, "assisted_reader")
    (first,) = services.assignments_create(radiograph=right, readers=[reader], priority=0)
    (second,) = services.assignments_create(radiograph=left, readers=[reader], priority=1)
    truth = {side.pk: side.metadata["phantom_truth"] for side in (right, left)}
    page = new_page()
    log_in(page, live_server, "assisted_reader", "pw-assisted_reader")

    # Cold: the left hand is not "next", so nothing has fetched or rendered its image yet.
    page.goto(url(live_server, "worklist", project.pk))
    page.get_by_role("link", name="Open PHANTOM-BIG L").click()
    expect(page).to_have_url(url(live_server, "workspace", second.pk))
    wait_until_ready(page)
    cold_paint_ms = _first_paint_ms(page)
    suggested = page.locator("td.suggested")
    expect(suggested).to_have_count(31)
    screenshot(page, "workspace-prefilled-suggestions")

    keystrokes = 0

    def press(key: str) -> None:
        nonlocal keystrokes
        page.keyboard.press(key)
        keystrokes += 1

    # Confirm the whole pre-filled hand after looking at each cell, and submit it: Enter confirms
    # the suggestion under the cursor and moves on (A alone confirms only cells already looked at).
    for _ in range(31):
        press("Enter")
    expect(suggested).to_have_count(0)
    expect(page.get_by_role("status", name="Save state")).to_have_text("Saved")
    press("Control+Enter")
    expect(page).to_have_url(url(live_server, "workspace", first.pk))
    confirm_keystrokes = keystrokes
    second.refresh_from_db()
    assert second.status == Assignment.Status.SUBMITTED
    saved = list(Grade.objects.filter(assignment=second).select_related("area__joint"))
    assert len(saved) == 31 and {grade.source for grade in saved} == {"accepted"}
    assert all(grade.value == truth[left.pk][grade.area.dimension][grade.area.joint.name] for grade in saved)

    # The next hand, opened by the submit (its image was prefetched meanwhile): also pre-filled.
    wait_until_ready(page)
    next_paint_ms = _first_paint_ms(page)
    expect(suggested).to_have_count(31)

    # Change one grade: click the joint's marker on the image, then one digit.
    mcp3 = Landmark.objects.get(radiograph=right, joint__name="mcp3")
    page.mouse.click(*_screen_point(page, mcp3.x, mcp3.y))
    mcp3_erosion = page.get_by_role("gridcell", name="MCP 3, Erosion:")
    expect(mcp3_erosion).to_have_attribute("aria-selected", "true")
    suggested_value = truth[right.pk]["erosion"]["mcp3"]
    new_value = (suggested_value + 2) % 6
    keystrokes = 0
    press(str(new_value))
    change_keystrokes = keystrokes
    expect(mcp3_erosion).to_have_text(str(new_value))
    expect(page.get_by_role("status", name="Save state")).to_have_text("Saved")
    changed = Grade.objects.get(assignment=first, area__code="mcp_E__3")
    assert (changed.value, changed.source) == (new_value, "edited")
    assert Grade.objects.filter(assignment=first).count() == 1  # the rest are still only suggestions

    # Enter confirms the suggestion in the cell the cursor moved on to (MCP 4 erosion).
    page.keyboard.press("Enter")
    expect(page.get_by_role("status", name="Save state")).to_have_text("Saved")
    expect(page.locator("td.suggested")).to_have_count(29)
    confirmed = Grade.objects.get(assignment=first, area__code="mcp_E__4")
    assert (confirmed.value, confirmed.source) == (truth[right.pk]["erosion"]["mcp4"], "accepted")

    # Drag the MCP 2 marker: saved as this reader's landmark; the imported point stays.
    mcp2 = Landmark.objects.get(radiograph=right, joint__name="mcp2")
    start = _screen_point(page, mcp2.x, mcp2.y)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 12, start[1] + 8, steps=4)
    page.mouse.up()
    expect(page.get_by_role("alert")).to_have_text("Marker saved as your landmark.")
    corrected = Landmark.objects.get(radiograph=right, joint__name="mcp2", source=Landmark.Source.READER)
    assert corrected.created_by == reader and corrected.x > mcp2.x + 10
    assert Landmark.objects.filter(pk=mcp2.pk, x=mcp2.x).exists()

    # Zooming in past the display rendition brings the full-resolution image.
    for _ in range(5):
        page.keyboard.press("+")
    page.wait_for_function("performance.getEntriesByType('resource').some((entry) => entry.name.includes('/rendition/full/'))")
    page.keyboard.press("h")
    expect(page.get_by_role("status", name="Viewer notice")).to_have_text("No heatmap for this joint and dimension.")
    screenshot(page, "workspace-zoomed-full-resolution")

    # A reload paints from the browser's cache.
    page.keyboard.press("f")
    page.reload()
    wait_until_ready(page)
    cached_paint_ms = _first_paint_ms(page)
    expect(page.get_by_role("gridcell", name="MCP 3, Erosion:")).to_have_text(str(new_value))

    metrics = {
        "first_paint_ms_cold_2000x2500": round(cold_paint_ms),
        "first_paint_ms_next_after_submit": round(next_paint_ms),
        "first_paint_ms_reload_cached": round(cached_paint_ms),
        "keystrokes_confirm_prefilled_hand_after_looking_at_each_cell_and_submit": confirm_keystrokes,
        "keystrokes_change_one_grade_after_clicking_its_marker": change_keystrokes,
        "suggestions_model_version": MODEL_VERSION,
    }
    for name, value in metrics.items():
        record_property(name, value)
    path = record_metrics(metrics)
    with capsys.disabled():
        print(f"\nReader workspace metrics ({WIDTH} x {HEIGHT} phantom, Chromium headless, localhost): {metrics} -> {path}")

    assert confirm_keystrokes == 31 + 1 and change_keystrokes == 1
    assert next_paint_ms <= FIRST_PAINT_TARGET_MS, f"first paint of the next radiograph took {next_paint_ms:.0f} ms"
    assert cold_paint_ms <= COLD_PAINT_LIMIT_MS, f"first paint with nothing cached took {cold_paint_ms:.0f} ms"


def test_workspace_in_russian_shows_translated_controls(new_page, live_server, assisted_project):
    project, right, _ = assisted_project
    reader = reader_in(project, "russian_reader")
    (assignment,) = services.assignments_create(radiograph=right, readers=[reader])
    page = new_page(locale="ru-RU")
    page.goto(url(live_server, "login"))
    page.get_by_label("Имя пользователя").fill("russian_reader")
    page.get_by_label("Пароль").fill("pw-russian_reader")
    page.get_by_role("button", name="Войти").click()
    page.goto(url(live_server, "workspace", assignment.pk))
    wait_until_ready(page)
    expect(page.get_by_role("note").first).to_contain_text("Только для исследований")
    expect(page.get_by_role("status", name="Состояние сохранения")).to_have_text("Сохранено")
    expect(page.get_by_role("button", name=re.compile("^Принять все предложения"))).to_be_visible()
    expect(page.get_by_role("gridcell", name=re.compile(r"^PIP 2, Эрозия: \d, предложено"))).to_have_count(1)
    screenshot(page, "workspace-russian")
