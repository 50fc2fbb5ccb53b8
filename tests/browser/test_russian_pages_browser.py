"""The pages readers and leads see, in Russian, show no message the catalogue would translate.

Every English msgid the templates and scripts ask to translate (see `tests/frontend/i18n_catalogue`)
is looked for in the text and the shown attributes of each page opened with a Russian browser;
one found means a string reached the page without going through the catalogue.
"""
from __future__ import annotations

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from annotation.models import Assignment, Project
from consensus.services import consensus_compute
from modeling.demo import DEMO_PASSWORDS, demo_seed
from modeling.demo_model import demo_model_install
from modeling.ml.phantoms import PhantomConfig
from tests.browser.conftest import screenshot
from tests.frontend import i18n_catalogue as cat

pytestmark = [pytest.mark.browser]

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|<[^>]+>")
# Shown text: every text node and every attribute a reader perceives (screen readers included).
PAGE_TEXT = """() => {
  const parts = [document.title, document.body.innerText];
  for (const el of document.querySelectorAll('[title],[aria-label],[placeholder],[alt]')) {
    for (const name of ['title', 'aria-label', 'placeholder', 'alt']) {
      if (el.hasAttribute(name)) parts.push(el.getAttribute(name));
    }
  }
  for (const el of document.querySelectorAll('option')) parts.push(el.textContent);
  return parts.join('\\n');
}"""


def english_fragments() -> list[str]:
    """Pieces of English msgids (split at their placeholders) that would be noticed on a page:
    two words or more, or one capitalised word of five letters or more."""
    messages = [m for p in cat.template_files() for m in cat.template_messages(p)]
    messages += [m for p in cat.script_files() for m in cat.script_messages(p)]
    fragments = set()
    for m in messages:
        for text in (m.msgid, m.plural or ""):
            for piece in PLACEHOLDER.split(text):
                piece = piece.strip(" .,:;·()–-")
                if len(piece.split()) >= 2 or re.fullmatch(r"[A-Z][a-z]{4,}", piece):
                    fragments.add(piece)
    return sorted(fragments, key=len, reverse=True)


def untranslated_on(page, fragments: list[str]) -> list[str]:
    text = page.evaluate(PAGE_TEXT)
    return [f for f in fragments if re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", text)]


def test_russian_pages_of_readers_and_leads_contain_no_untranslated_message(new_page, live_server, schemes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        report = demo_seed(slug="demo-ru", patients=2, read_radiographs=2, seed=3, config=PhantomConfig(width=512, height=640))
        project: Project = report.project
        for dimension in ("erosion", "jsn"):
            consensus_compute(project=project, dimension=dimension, announce=False)
        assert demo_model_install(project=project) is not None
    fragments = english_fragments()
    assert "Agreement and consensus" in fragments and "Start next" in fragments
    open_assignment = Assignment.objects.filter(radiograph__project=project, reader__username="reader1").exclude(status="submitted").first()

    def visit(page, username: str, pages: list[tuple[str, str]]) -> dict[str, list[str]]:
        page.goto(live_server.url + reverse("login"))
        page.locator("#id_username").fill(username)
        page.locator("#id_password").fill(DEMO_PASSWORDS["lead" if username == "lead" else "reader"])
        page.locator("form button[type=submit]").last.click()
        page.wait_for_url(live_server.url + reverse("home"))
        found = {}
        for name, path in pages:
            page.goto(live_server.url + path)
            expect(page.locator("html")).to_have_attribute("lang", "ru")
            if name == "workspace":
                page.locator("#workspace[data-state=ready]").wait_for()
            screenshot(page, f"russian-{username}-{name}")
            found[name] = untranslated_on(page, fragments)
        return found

    reader = visit(new_page(locale="ru-RU"), "reader1", [
        ("home", reverse("home")),
        ("worklist", reverse("worklist", args=[project.pk])),
        ("workspace", reverse("workspace", args=[open_assignment.pk])),
    ])
    lead = visit(new_page(locale="ru-RU"), "lead", [
        ("home", reverse("home")),
        ("agreement", reverse("consensus-dashboard", args=[project.pk])),
        ("model", reverse("model-dashboard", args=[project.pk])),
    ])
    found = {f"reader {k}": v for k, v in reader.items() if v} | {f"lead {k}": v for k, v in lead.items() if v}
    assert not found, f"English messages on Russian pages: {found}"


def test_the_page_check_finds_the_messages_of_an_english_page(new_page, live_server, schemes):
    # The same check on the English home page must find the messages it shows.
    page = new_page(locale="en-US")
    page.goto(live_server.url + reverse("login"))
    found = untranslated_on(page, english_fragments())
    assert "Log in" in found and "Research use only. Not for clinical diagnosis or patient management" in found
