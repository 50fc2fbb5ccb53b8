"""A lead adjudicates disputes in the radiograph viewer by keyboard, in real Chromium."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from annotation.models import Membership
from annotation import services as annotation_services
from consensus import services as consensus_services
from consensus.models import AdjudicatedLabel

from ..conftest import make_user
from ..consensus.conftest import areas_of, submit_grades
from .conftest import add_phantom_patient, log_in, screenshot, url

pytestmark = pytest.mark.browser

VIEWER = re.compile(r"/agreement/adjudicate/(\d+)/(\w+)/$")


@pytest.fixture
def disputed(schemes):
    """One phantom right hand read by two readers who disagree on four areas; consensus computed."""
    project = annotation_services.project_create(name="Adjudication", slug="adjudication", readers_per_radiograph=2, blinded=True)
    right, _left = add_phantom_patient(project, "PHANTOM-ADJ", seed=21, width=640, height=800)
    readers = [make_user(name) for name in ("reader_one", "reader_two")]
    for reader in readers:
        annotation_services.membership_set(user=reader, project=project, role=Membership.Role.READER)
    lead = make_user("adj_lead")
    annotation_services.membership_set(user=lead, project=project, role=Membership.Role.LEAD)
    zeros = {a.code: 0 for a in areas_of(project)}
    submit_grades(right, readers[0], zeros | {"pip_E__2": 0, "mcp_E__3": 1, "mcp_J__2": 1, "pip_J__4": 0})
    submit_grades(right, readers[1], zeros | {"pip_E__2": 4, "mcp_E__3": 3, "mcp_J__2": 3, "pip_J__4": 2})
    for dimension in ("erosion", "jsn"):
        consensus_services.consensus_compute(project=project, dimension=dimension, aggregator="MajorityVote", compare_with=())
    return project, right


def _shown(page) -> tuple[int, str]:
    match = VIEWER.search(page.url)
    assert match, page.url
    return int(match.group(1)), match.group(2)


def test_lead_adjudicates_three_disputes_from_the_viewer_by_keyboard(new_page, live_server, disputed):
    project, right = disputed
    page = new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server, "adj_lead", "pw-adj_lead")
    page.goto(url(live_server, "consensus-dashboard", project.pk) + "#queue")
    queue_links = page.locator("#queue a.cs-nowrap")
    expect(queue_links).to_have_count(4)
    queue_links.first.click()
    page.locator("#adjudication[data-state=ready]").wait_for()
    first = _shown(page)
    assert first[0] == right.pk

    # Both readers' grades, the consensus and the keys are on the page beside the film.
    expect(page.get_by_role("table", name="Readers' grades")).to_contain_text("reader_one")
    expect(page.get_by_role("table", name="Consensus posterior")).to_be_visible()
    expect(page.get_by_role("button", name="Final grade 4")).to_be_visible()
    expect(page.get_by_text("dispute 1 of 4")).to_be_visible()
    screenshot(page, "adjudication-viewer")

    # Next and previous by keyboard.
    page.keyboard.press("n")
    page.wait_for_url(VIEWER)
    page.locator("#adjudication[data-state=ready]").wait_for()
    assert _shown(page) != first
    expect(page.get_by_text("dispute 2 of 4")).to_be_visible()
    page.keyboard.press("ArrowLeft")
    page.locator("#adjudication[data-state=ready]").wait_for()
    expect(page.get_by_text("dispute 1 of 4")).to_be_visible()
    assert _shown(page) == first

    # Three final grades, each by one key; each opens the next dispute and says what was saved.
    decided = []
    for key in ("2", "3", "1"):
        radiograph_id, area = _shown(page)
        page.keyboard.press(key)
        expect(page.locator(".messages")).to_contain_text(f"Final grade {key} saved for {area} of PHANTOM-ADJ")
        expect(page.locator(".messages")).to_be_in_viewport()
        page.locator("#adjudication[data-state=ready]").wait_for()
        decided.append((radiograph_id, area, int(key)))
        assert _shown(page)[1] != area
    screenshot(page, "adjudication-after-three")

    saved = list(AdjudicatedLabel.objects.order_by("created_at", "id").values_list("radiograph_id", "area__code", "grade"))
    assert saved == decided
    assert len({area for _r, area, _g in decided}) == 3
    expect(page.get_by_text("dispute 1 of 1")).to_be_visible()
    assert not errors
