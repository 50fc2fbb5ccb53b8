"""Every message a page asks to translate has a Russian translation in the compiled catalogue,
and the pages show no English text outside a translation tag.

Runs over whatever templates, scripts and page modules exist, so a page added later is checked
the same way: its missing entries are listed with file and line.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.frontend import i18n_catalogue as cat


def _listing(messages: list[cat.Message]) -> str:
    return "\n".join(f"  {m.source}: {m.msgid!r}" + (f" / plural {m.plural!r}" if m.plural else "") for m in messages)


def test_every_template_message_has_a_russian_translation():
    messages = [m for path in cat.template_files() for m in cat.template_messages(path)]
    assert len(messages) > 300, "the extractor found too few messages: it no longer reads the templates"
    missing = cat.untranslated(messages, cat.catalogue("django"))
    assert not missing, f"{len(missing)} template messages lack a Russian translation (append them to django.po, then compilemessages):\n{_listing(missing)}"


def test_every_script_message_has_a_russian_translation():
    messages = [m for path in cat.script_files() for m in cat.script_messages(path)]
    assert len(messages) > 50, "the extractor found too few messages: it no longer reads the scripts"
    missing = cat.untranslated(messages, cat.catalogue("djangojs"))
    assert not missing, f"{len(missing)} script messages lack a Russian translation (append them to djangojs.po):\n{_listing(missing)}"


def test_every_page_message_of_python_code_has_a_russian_translation():
    messages = [m for path in cat.python_files() for m in cat.python_messages(path)]
    assert messages, "the extractor found no gettext call in the page modules"
    missing = cat.untranslated(messages, cat.catalogue("django"))
    assert not missing, f"{len(missing)} messages of Python code lack a Russian translation:\n{_listing(missing)}"


@pytest.mark.parametrize("path", cat.template_files(), ids=lambda p: str(p.relative_to(cat.ROOT)))
def test_template_shows_no_text_outside_a_translation_tag(path: Path):
    assert not cat.bare_text(path), "English text outside {% translate %}:\n" + "\n".join(cat.bare_text(path))


# The checks above must be able to fail: each is run here on a sample that breaks it.


def test_the_extractor_finds_messages_of_every_tag_form(tmp_path):
    sample = tmp_path / "sample.html"
    sample.write_text(
        '{% load i18n %}<h1>{% translate "Plain" %}</h1>{% translate "Kept" as word %}'
        '<p title="{% translate \'In an attribute\' %}">{% blocktranslate with n=3 %}Has {{ n }} items{% endblocktranslate %}</p>'
        '{% blocktranslate count n=k %}{{ n }} hand{% plural %}{{ n }} hands{% endblocktranslate %}'
        '{% translate "May" context "month" %}'
    )
    found = {(m.msgid, m.plural, m.context) for m in cat.template_messages(sample)}
    assert found == {
        ("Plain", None, None), ("Kept", None, None), ("In an attribute", None, None),
        ("Has %(n)s items", None, None), ("%(n)s hand", "%(n)s hands", None), ("May", None, "month"),
    }


def test_a_message_missing_from_the_catalogue_is_reported():
    compiled = cat.catalogue("django")
    known = cat.Message("My projects", None, None, "x")
    unknown = cat.Message("A sentence nobody translated", None, None, "y")
    plural_known = cat.Message("%(n)s hand", "%(n)s hands", None, "z")
    assert cat.untranslated([known, unknown, plural_known], compiled) == [unknown]


def test_bare_text_is_found_in_text_and_shown_attributes_but_not_in_tags(tmp_path):
    sample = tmp_path / "sample.html"
    sample.write_text(
        '{% load i18n %}<h1>{% translate "Fine" %} {{ value }}</h1>\n'
        '<p>Promote now</p>\n'
        '<button aria-label="Close it" class="words here">×</button>\n'
        '<td>ICC(2,1) · SDC 1:1 n v</td>{# a comment #}<script>const a = "text";</script>\n'
        '{% blocktranslate %}Inside a block{% endblocktranslate %}'
    )
    found = cat.bare_text(sample)
    assert [f.split(": ", 1)[1] for f in found] == ["Promote now", 'aria-label="Close it"']
    assert found[0].endswith(":2: Promote now")
