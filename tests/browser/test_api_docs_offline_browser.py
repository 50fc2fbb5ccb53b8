"""The API documentation works on a network with no internet: Swagger UI comes from this server."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from .conftest import screenshot, url

pytestmark = pytest.mark.browser


def test_api_docs_render_with_every_non_loopback_request_cut(new_page, live_server):
    page = new_page()
    cut: list[str] = []

    def only_loopback(route):
        host = urlsplit(route.request.url).hostname
        if host in {"localhost", "127.0.0.1", "::1"}:
            route.continue_()
        else:
            cut.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", only_loopback)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url(live_server, "api-docs"))

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("RA joint scoring API")
    # The operations come from the schema, so the page did not only draw its frame.
    expect(page.locator(".opblock-summary-path", has_text="/api/assignments/{assignment_id}/grades/").first).to_be_visible()
    screenshot(page, "api-docs-offline")
    assert errors == [], errors
    assert cut == [], cut  # nothing even tried to leave the machine
