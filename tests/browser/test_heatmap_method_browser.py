"""The workspace's heatmap method picker: the best-measured map first, the others on the reader's choice."""
from __future__ import annotations

import io

import pytest
from PIL import Image
from playwright.sync_api import expect

from annotation import services
from modeling.ml.explain import DEFAULT_METHOD

from .conftest import reader_in, screenshot
from .test_workspace_integrity_browser import _open_workspace, assisted_project  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (16, 20), (255, 0, 0, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_heatmap_uses_the_default_method_and_the_picker_asks_for_another(new_page, live_server, assisted_project, settings):  # noqa: F811
    settings.SUGGESTION_PROVIDER = "tests.browser.phantom_suggestions.from_phantom_truth_with_heatmaps"
    project, right, _ = assisted_project
    reader = reader_in(project, "method_reader")
    (assignment,) = services.assignments_create(radiograph=right, readers=[reader])
    requested: list[str] = []
    page = new_page()

    def answer(route):
        requested.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=_png())

    page.route("**/test-heatmaps/**", answer)
    _open_workspace(page, live_server, assignment, "method_reader")
    picker = page.get_by_role("combobox", name="Heatmap method")
    expect(picker).to_be_hidden()  # only while the heatmap is on

    page.keyboard.press("h")
    expect(picker).to_be_visible()
    expect(picker).to_have_value(DEFAULT_METHOD)
    expect(page.locator("[data-stage]")).to_have_attribute("data-heatmap", "shown")
    assert requested and "method=" not in requested[-1]  # the default needs no parameter

    picker.select_option("gradcam_hires")
    expect(page.locator("[data-stage]")).to_have_attribute("data-heatmap", "shown")
    assert requested[-1].endswith("method=gradcam_hires")
    screenshot(page, "workspace-heatmap-method")

    # Remembered in this browser: a reload asks for the chosen method again.
    page.reload()
    page.locator("#workspace[data-state=ready]").wait_for()
    page.keyboard.press("h")
    expect(picker).to_have_value("gradcam_hires")
    expect(page.locator("[data-stage]")).to_have_attribute("data-heatmap", "shown")
    assert requested[-1].endswith("method=gradcam_hires")
