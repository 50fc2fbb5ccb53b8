"""The visit form (and the series form built on it) in real Chromium on scales other than SvdH's
whole grades, typed as on the single-image page: Genant erosion in half steps ("2" then "." is
2.5, stored as level 5), the 0-10 foot erosion keys ("1" "0" is 10; a "1" is held until the next
key or a moment without one), and Larsen's wrist counting five times in the totals."""
from __future__ import annotations

import datetime
import re

import pytest
from playwright.sync_api import expect

from annotation import services
from annotation.models import Assignment, Grade, Project
from consensus.models import ConsensusSettings
from consensus.services import consensus_settings_get
from tests.conftest import png_bytes

from .conftest import add_phantom_patient, log_in, reader_in, screenshot, url

pytestmark = pytest.mark.browser


def _by_visit_project(slug: str, scheme_key: str):
    project = services.project_create(
        name=f"Visits {slug}", slug=slug, scheme_key=scheme_key, readers_per_radiograph=1, reading_unit=Project.ReadingUnit.VISIT
    )
    # Celery is eager here: no consensus inside the submit request, these tests are about the form.
    ConsensusSettings.objects.filter(pk=consensus_settings_get(project=project).pk).update(auto_recompute=False)
    return project


def _open_visit(page, live_server, username: str, visit_id: int) -> None:
    log_in(page, live_server, username, f"pw-{username}")
    page.goto(url(live_server, "visit-workspace", visit_id))
    page.locator("#visit[data-state=ready][data-image=painted]").wait_for()


def _column(page, read_id: int, marker: str) -> list[str]:
    """The codes of one radiograph's cells whose code holds `marker` ("_E__", "_J__"), top to bottom."""
    codes = [cell.get_attribute("data-code") for cell in page.locator(f'td[data-read="{read_id}"]').all()]
    return [code for code in codes if marker in code]


def _cell(page, read_id: int, code: str):
    return page.locator(f'td[data-read="{read_id}"][data-code="{code}"]')


def _selected(page) -> str:
    return page.evaluate("`${document.activeElement.dataset.read}:${document.activeElement.dataset.code}`")


def _levels(reader) -> dict[str, int]:
    return {f"{g.assignment_id}:{g.area.code}": g.value for g in Grade.objects.filter(assignment__reader=reader).select_related("area")}


def test_a_genant_visit_shows_types_totals_and_saves_half_grades_as_the_workspace_does(new_page, live_server, schemes):
    project = _by_visit_project("visit-genant", "genant")
    right, left = add_phantom_patient(project, "PHANTOM-VG", seed=41, width=480, height=600)
    reader = reader_in(project, "visit_genant_reader")
    r_read = services.assignments_create(radiograph=right, readers=[reader], priority=0.0)[0]
    l_read = services.assignments_create(radiograph=left, readers=[reader], priority=1.0)[0]
    page = new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _open_visit(page, live_server, "visit_genant_reader", right.visit_id)

    expect(page.locator('[data-column-head="R:erosion"]')).to_have_attribute("title", "Erosion 0–3.5")
    expect(page.locator('[data-column-head="L:jsn"]')).to_have_attribute("title", "JSN 0–4")
    r_erosion, r_jsn = _column(page, r_read.pk, "_E__"), _column(page, r_read.pk, "_J__")
    l_erosion, l_jsn = _column(page, l_read.pk, "_E__"), _column(page, l_read.pk, "_J__")
    assert (len(r_erosion), len(r_jsn), len(l_erosion), len(l_jsn)) == (14, 13, 14, 13)
    assert _selected(page) == f"{r_read.pk}:{r_erosion[0]}"
    # The picker offers the half steps, written as grades: 0, 0.5, ... 3.5.
    picker = page.get_by_role("group", name="Set grade")
    expect(picker.get_by_role("button", name=re.compile(r"^Grade "))).to_have_count(8)
    expect(picker.get_by_role("button", name="Grade 2.5")).to_be_visible()

    # "2" "." -> 2.5; "3" "." -> 3.5; "4" is beyond 3.5: refused where the cursor stands; "1" "." -> 1.5.
    for key in ["2", ".", "3", "."]:
        page.keyboard.press(key)
    page.keyboard.press("4")
    expect(page.locator("[data-sheet-notice]")).to_contain_text("0–3.5")
    assert _selected(page) == f"{r_read.pk}:{r_erosion[2]}"
    for key in ["1", "."]:
        page.keyboard.press(key)
    r_rest = "01230123012"  # the other right erosion cells, whole grades, one key each
    for key in r_rest + "0123401234012":  # then right JSN, 0-4
        page.keyboard.press(key)
    # The left hand: "0" "." -> 0.5 on its first erosion cell, the rest zeros; JSN has no half.
    assert _selected(page) == f"{l_read.pk}:{l_erosion[0]}"
    for key in ["0", "."] + ["0"] * 13:
        page.keyboard.press(key)
    assert _selected(page) == f"{l_read.pk}:{l_jsn[0]}"
    page.keyboard.press("2")
    page.keyboard.press(".")
    expect(page.locator("[data-sheet-notice]")).to_contain_text("JSN has no half grades")
    for key in "0" * 12:
        page.keyboard.press(key)
    expect(page.get_by_role("status", name="Save state")).to_have_text("Saved")

    # Shown as grades, as on the single-image page; stored as levels (grade / 0.5).
    shown = [_cell(page, r_read.pk, code).inner_text() for code in r_erosion[:4]]
    assert shown == ["2.5", "3.5", "1.5", "0"]
    expect(_cell(page, l_read.pk, l_erosion[0])).to_have_text("0.5")
    expect(_cell(page, r_read.pk, r_erosion[4])).to_have_text("1")
    expected = {f"{r_read.pk}:{r_erosion[0]}": 5, f"{r_read.pk}:{r_erosion[1]}": 7, f"{r_read.pk}:{r_erosion[2]}": 3}
    expected |= {f"{r_read.pk}:{code}": 2 * int(k) for code, k in zip(r_erosion[3:], r_rest)}
    expected |= {f"{r_read.pk}:{code}": int(k) for code, k in zip(r_jsn, "0123401234012")}
    expected |= {f"{l_read.pk}:{l_erosion[0]}": 1} | {f"{l_read.pk}:{code}": 0 for code in l_erosion[1:] + l_jsn[1:]}
    expected |= {f"{l_read.pk}:{l_jsn[0]}": 2}
    assert _levels(reader) == expected

    # Totals in grade points, like the single-image page's: 2.5 + 3.5 + 1.5 + the whole grades.
    r_erosion_total = 2.5 + 3.5 + 1.5 + sum(int(k) for k in r_rest)
    r_jsn_total = sum(int(k) for k in "0123401234012")
    expect(page.locator('[data-total="hand:R:erosion"]')).to_have_text(f"{r_erosion_total:g}")
    expect(page.locator('[data-total="hand:R:jsn"]')).to_have_text(str(r_jsn_total))
    expect(page.locator('[data-total="hand:R"]')).to_have_text(f"{r_erosion_total + r_jsn_total:g}")
    expect(page.locator('[data-total="hand:L:erosion"]')).to_have_text("0.5")
    expect(page.locator('[data-total="visit"]')).to_have_text(f"{r_erosion_total + r_jsn_total + 0.5 + 2:g}")
    # Named as the scheme names its total, as on the single-image page.
    expect(page.get_by_role("row", name=re.compile("^Genant total, visit"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("^Genant total, each hand"))).to_be_visible()
    screenshot(page, "visit-form-genant-half-grades")

    page.keyboard.press("Control+Enter")
    expect(page).to_have_url(url(live_server, "worklist", project.pk))
    assert set(Assignment.objects.filter(reader=reader).values_list("status", flat=True)) == {"submitted"}
    assert _levels(reader) == expected
    assert errors == []


def test_the_visit_forms_foot_keys_set_a_ten_a_held_one_and_the_next_key_each_in_its_own_cell(new_page, live_server, schemes):
    project = _by_visit_project("visit-feet-keys", "svdh")
    foot = services.radiograph_add(
        project=project, pseudonym="PHANTOM-VF", laterality="R", body_part="foot", image_bytes=png_bytes(480, 600, seed=42),
        image_suffix="png", width=480, height=600,
    ).radiograph
    reader = reader_in(project, "visit_feet_reader")
    (read,) = services.assignments_create(radiograph=foot, readers=[reader])
    page = new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _open_visit(page, live_server, "visit_feet_reader", foot.visit_id)
    assert _column(page, read.pk, "_E__") == ["mtp_E__1", "mtp_E__2", "mtp_E__3", "mtp_E__4", "mtp_E__5", "mtp_E__ip"]
    expect(page.locator('[data-column-head="R:erosion"]')).to_have_attribute("title", "Erosion 0–10")

    # MTP 1 "1 0" = 10; MTP 2 "1" then "2" at once: the 1 is set by the next key and the 2 lands
    # on MTP 3, not on MTP 2; MTP 4 "1" then "." (no half grades on this scale): the 1 is set
    # and the cursor stays for the notice.
    for key in ["1", "0", "1", "2", "1", "."]:
        page.keyboard.press(key)
    expect(page.locator("[data-sheet-notice]")).to_contain_text("no half grades")
    assert _selected(page) == f"{read.pk}:mtp_E__4"
    # A lone "1" on MTP 4's next cell: set after a moment, without another key.
    page.keyboard.press("ArrowDown")
    page.keyboard.press("1")
    expect(_cell(page, read.pk, "mtp_E__5")).to_have_text("1")
    assert _selected(page) == f"{read.pk}:mtp_E__ip"
    expect(page.get_by_role("status", name="Save state")).to_have_text("Saved")
    assert _levels(reader) == {f"{read.pk}:mtp_E__1": 10, f"{read.pk}:mtp_E__2": 1, f"{read.pk}:mtp_E__3": 2,
                               f"{read.pk}:mtp_E__4": 1, f"{read.pk}:mtp_E__5": 1}
    texts = [_cell(page, read.pk, f"mtp_E__{n}").inner_text() for n in (1, 2, 3, 4)]
    assert texts == ["10", "1", "2", "1"]
    expect(page.locator('[data-total="foot:R:erosion"]')).to_have_text("15")
    assert errors == []


def test_a_larsen_visit_counts_the_wrist_five_times_in_its_totals(new_page, live_server, schemes):
    project = _by_visit_project("visit-larsen", "larsen")
    right, _left = add_phantom_patient(project, "PHANTOM-VL", seed=43, width=480, height=600)
    reader = reader_in(project, "visit_larsen_reader")
    (read,) = services.assignments_create(radiograph=right, readers=[reader])
    page = new_page()
    _open_visit(page, live_server, "visit_larsen_reader", right.visit_id)
    order = _column(page, read.pk, "_E__")
    assert len(order) == 11 and order[-1] == "wrist_E__unit"
    expect(page.locator('[data-column-head="R:erosion"]')).to_have_text("Larsen grade")
    expect(page.locator('[data-column-head="R:erosion"]')).to_have_attribute("title", "Larsen grade 0–5")
    page.keyboard.press(".")  # no half grades on this scale: said, nothing saved
    expect(page.locator("[data-sheet-notice]")).to_contain_text("Larsen grade has no half grades")
    for key in "1111111111" + "3":
        page.keyboard.press(key)
    expect(page.get_by_role("status", name="Save state")).to_have_text("Saved")
    # Ten joints at 1 and the wrist's 3 counted five times.
    expect(page.locator('[data-total="hand:R"]')).to_have_text("25")
    expect(page.locator('[data-total="visit"]')).to_have_text("25")
    expect(page.get_by_role("row", name=re.compile("^Larsen total, visit"))).to_be_visible()
    assert Grade.objects.get(assignment=read, area__code="wrist_E__unit").value == 3


def test_a_genant_series_in_known_order_shows_half_grades_and_their_change_on_each_film(new_page, live_server, schemes):
    project = services.project_create(
        name="Genant series", slug="genant-series", scheme_key="genant", readers_per_radiograph=1,
        reading_mode=Project.ReadingMode.PAIRED_KNOWN,
    )
    ConsensusSettings.objects.filter(pk=consensus_settings_get(project=project).pk).update(auto_recompute=False)
    reader = reader_in(project, "genant_series_reader")
    reads = {}
    for timepoint, acquired, seed in [("baseline", "2019-05-02", 44), ("month12", "2020-05-14", 45)]:
        radiograph = services.radiograph_add(
            project=project, pseudonym="PHANTOM-GS", laterality="R", image_bytes=png_bytes(480, 600, seed=seed), image_suffix="png",
            width=480, height=600, timepoint=timepoint, acquired_on=datetime.date.fromisoformat(acquired),
        ).radiograph
        (reads[timepoint],) = services.assignments_create(radiograph=radiograph, readers=[reader])
    page = new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server, "genant_series_reader", "pw-genant_series_reader")
    page.goto(url(live_server, "series-workspace", reads["baseline"].radiograph.visit.patient_id, "RH"))
    page.locator("#visit[data-state=ready][data-image=painted]").wait_for()
    first, later = reads["baseline"].pk, reads["month12"].pk
    erosion = _column(page, first, "_E__")
    assert _selected(page) == f"{first}:{erosion[0]}"
    # Baseline: 2.5 on the first erosion site, 0 elsewhere; month 12: 3 there and 0.5 on the second.
    for key in ["2", "."] + ["0"] * 26:
        page.keyboard.press(key)
    assert _selected(page) == f"{later}:{erosion[0]}"
    expect(page.locator('[data-total="change"]')).to_have_text("·")
    for key in ["3", "0", "."] + ["0"] * 25:
        page.keyboard.press(key)
    expect(page.get_by_role("status", name="Save state")).to_have_text("Saved")
    expect(_cell(page, first, erosion[0])).to_have_text("2.5")
    expect(_cell(page, later, erosion[1])).to_have_text("0.5")
    # The change, first to last film, in grade points: (3 + 0.5) - 2.5 (in levels it would be 2).
    expect(page.locator('[data-total="change"]')).to_have_text("1")
    levels = _levels(reader)
    assert (levels[f"{first}:{erosion[0]}"], levels[f"{later}:{erosion[0]}"], levels[f"{later}:{erosion[1]}"]) == (5, 6, 1)
    assert sum(levels.values()) == 12 and len(levels) == 54
    assert errors == []
