"""A foot film in real Chromium: the paper form's rows, keyboard grading up to 10, the foot total."""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from annotation import services
from annotation.models import Grade, Joint, Landmark

from .conftest import log_in, reader_in, screenshot, url, wait_until_ready

pytestmark = pytest.mark.browser


@pytest.fixture
def foot_film(schemes):
    from modeling.ml.foot_phantoms import generate_foot
    from modeling.ml.phantoms import PhantomConfig

    project = services.project_create(name="Feet reading", slug="feet", readers_per_radiograph=1, blinded=True)
    foot = generate_foot(17, "R", config=PhantomConfig(width=480, height=600))
    buffer = io.BytesIO()
    Image.fromarray(foot.image).save(buffer, format="PNG", compress_level=1)
    radiograph = services.radiograph_add(
        project=project, pseudonym="PHANTOM-FEET-001", laterality="R", body_part="foot",
        image_bytes=buffer.getvalue(), image_suffix="png", width=foot.width, height=foot.height,
    ).radiograph
    joints = {joint.name: joint for joint in Joint.objects.filter(scheme=project.scheme, body_part="foot")}
    Landmark.objects.bulk_create(
        Landmark(radiograph=radiograph, joint=joints[name], x=x, y=y, source=Landmark.Source.IMPORT)
        for name, (x, y) in foot.landmarks.items()
    )
    return project, radiograph


def test_reader_grades_a_foot_by_keyboard_including_a_ten(new_page, live_server, foot_film):
    project, radiograph = foot_film
    reader = reader_in(project, "foot_reader")
    (assignment,) = services.assignments_create(radiograph=radiograph, readers=[reader])
    page = new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server, "foot_reader", "pw-foot_reader")
    page.goto(url(live_server, "workspace", assignment.pk))
    wait_until_ready(page)

    # The paper form: MTP 1-5, then the hallux IP.
    order = [cell.get_attribute("data-code") for cell in page.locator("td[data-code]").all()]
    assert [code for code in order if "_E__" in code] == ["mtp_E__1", "mtp_E__2", "mtp_E__3", "mtp_E__4", "mtp_E__5", "mtp_E__ip"]
    assert page.locator('td[aria-selected="true"]').get_attribute("data-code") == "mtp_E__1"
    # The picker offers the whole 0-10 foot erosion scale.
    expect(page.get_by_role("group", name="Set grade").get_by_role("button", name=re.compile(r"^Grade \d+$"))).to_have_count(11)

    # Erosion: MTP 1 "1 0" = 10; MTP 2 7; MTP 3 "1" then MTP 4 "2" (the 1 is set by the next key,
    # and the 2 lands on MTP 4, not on MTP 3); MTP 5 "1 0" = 10; IP "1", set by the JSN digit after it.
    # JSN (0-4): MTP 1..5 then IP.
    for key in ["1", "0", "7", "1", "2", "1", "0", "1", "1", "2", "3", "4", "0", "1"]:
        page.keyboard.press(key)
    expected = {"mtp_E__1": 10, "mtp_E__2": 7, "mtp_E__3": 1, "mtp_E__4": 2, "mtp_E__5": 10, "mtp_E__ip": 1,
                "mtp_J__1": 1, "mtp_J__2": 2, "mtp_J__3": 3, "mtp_J__4": 4, "mtp_J__5": 0, "mtp_J__ip": 1}
    expect(page.get_by_role("status", name="Save state")).to_have_text("Saved")
    assert dict(Grade.objects.filter(assignment=assignment).values_list("area__code", "value")) == expected
    expect(page.get_by_role("row", name=re.compile("^Foot total"))).to_have_text(re.compile(r"Foot total\s*31\s*11"))

    # A lone "1" on a 0-10 cell is set after a moment without another key.
    page.get_by_role("gridcell", name=re.compile(r"^MTP 2, Erosion:")).click()
    page.keyboard.press("1")
    expect(page.get_by_role("gridcell", name=re.compile(r"^MTP 2, Erosion:"))).to_have_text("1")
    expect(page.get_by_role("status", name="Save state")).to_have_text("Saved")
    assert Grade.objects.get(assignment=assignment, area__code="mtp_E__2").value == 1
    screenshot(page, "foot-graded-by-keyboard")
    assert errors == []
