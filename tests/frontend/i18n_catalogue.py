"""What the pages ask to translate, and what the compiled Russian catalogues hold.

Messages are extracted the way `makemessages` extracts them (Django's own `templatize` for
templates, the gettext family for JavaScript and Python), so a message found here is exactly the
msgid that must be in the catalogue. Used by the catalogue test and the Russian browser test.
"""
from __future__ import annotations

import ast
import gettext as gettext_module
import io
import re
import tokenize
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from django.utils.translation.template import templatize

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "frontend" / "locale" / "ru" / "LC_MESSAGES"
# Every template folder of the project's own apps (not the installed packages').
TEMPLATE_DIRS = sorted(p for p in ROOT.glob("*/templates") if p.is_dir())
SCRIPT_DIRS = sorted(p for p in ROOT.glob("*/static") if p.is_dir())
# Python modules whose gettext calls reach pages (views, page selectors, template filters).
PYTHON_SOURCES = ("frontend", "consensus", "modeling", "annotation")

GETTEXT_NAMES = {"gettext": 1, "gettext_lazy": 1, "_": 1, "ngettext": 2, "ngettext_lazy": 2,
                 "pgettext": 2, "pgettext_lazy": 2, "npgettext": 3, "npgettext_lazy": 3}


@dataclass(frozen=True)
class Message:
    msgid: str
    plural: str | None
    context: str | None
    source: str  # file:line, for the failure message

    @property
    def key(self) -> str | tuple[str, int]:
        """The key of this message in a compiled catalogue (`GNUTranslations._catalog`)."""
        msgid = f"{self.context}\x04{self.msgid}" if self.context else self.msgid
        return (msgid, 0) if self.plural is not None else msgid


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def template_files() -> list[Path]:
    return sorted(f for d in TEMPLATE_DIRS for f in d.rglob("*.html"))


def script_files() -> list[Path]:
    return sorted(f for d in SCRIPT_DIRS for f in d.rglob("*.js") if "vendor" not in f.parts)


def python_files() -> list[Path]:
    return sorted(
        f for app in PYTHON_SOURCES for f in (ROOT / app).rglob("*.py")
        if "migrations" not in f.parts and "ml" not in f.parts
    )


def _calls_in_python_source(text: str, origin: str) -> list[Message]:
    """gettext-family calls with literal arguments, found by tokens (as xgettext does)."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
              if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT)]
    found = []
    for i, tok in enumerate(tokens[:-2]):
        if tok.type != tokenize.NAME or tok.string not in GETTEXT_NAMES or tokens[i + 1].string != "(":
            continue
        if i and tokens[i - 1].string in (".", "def"):
            continue  # a method or the definition of a function with the same name
        args, j, current = [], i + 2, []
        while j < len(tokens) and len(args) < GETTEXT_NAMES[tok.string]:
            t = tokens[j]
            if t.type == tokenize.STRING:
                current.append(ast.literal_eval(t.string))
            elif t.string in (",", ")"):
                args.append("".join(current) if current and None not in current else None)
                current = []
                if t.string == ")":
                    break
            else:
                current = [None]  # not a literal: nothing to check
            j += 1
        args = [a if isinstance(a, str) or a is None else None for a in args]
        if any(a is None for a in args[: GETTEXT_NAMES[tok.string]]) or len(args) < GETTEXT_NAMES[tok.string]:
            continue
        name, line = tok.string, f"{origin}:{tok.start[0]}"
        if name.startswith("np"):
            found.append(Message(args[1], args[2], args[0], line))
        elif name.startswith("p"):
            found.append(Message(args[1], None, args[0], line))
        elif name.startswith("n"):
            found.append(Message(args[0], args[1], None, line))
        else:
            found.append(Message(args[0], None, None, line))
    return [m for m in found if m.msgid]


_LITERAL = r"""u?(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
TEMPLATIZED_CALL = re.compile(rf"\b(npgettext|ngettext|pgettext|gettext)\(((?:\s*{_LITERAL}\s*,?)+)")


def template_messages(path: Path) -> list[Message]:
    """The msgids `makemessages` would take from one template: Django's `templatize` turns every
    translation tag into a gettext call with repr() literals, read back here."""
    source = templatize(path.read_text(encoding="utf-8"), origin=str(path))
    found = []
    for line_no, line in enumerate(source.splitlines(), 1):
        for match in TEMPLATIZED_CALL.finditer(line):
            name = match.group(1)
            args = [ast.literal_eval(lit) for lit in re.findall(_LITERAL, match.group(2))]
            origin = f"{_shown(path)}:{line_no}"
            if name == "npgettext":
                found.append(Message(args[1], args[2], args[0], origin))
            elif name == "pgettext":
                found.append(Message(args[1], None, args[0], origin))
            elif name == "ngettext":
                found.append(Message(args[0], args[1], None, origin))
            else:
                found.append(Message(args[0], None, None, origin))
    return [m for m in found if m.msgid]


JS_CALL = re.compile(r"""\b(gettext|ngettext|pgettext)\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')(?:\s*,\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'))?""")


def script_messages(path: Path) -> list[Message]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in JS_CALL.finditer(text):
        name, first, second = match.group(1), match.group(2), match.group(3)
        if name == "gettext" and text[max(0, match.start() - 9):match.start()].endswith("function "):
            continue
        line = f"{_shown(path)}:{text.count(chr(10), 0, match.start()) + 1}"
        a = ast.literal_eval(first)
        b = ast.literal_eval(second) if second else None
        if name == "ngettext":
            found.append(Message(a, b, None, line))
        elif name == "pgettext":
            found.append(Message(b, None, a, line))
        else:
            found.append(Message(a, None, None, line))
    return found


def python_messages(path: Path) -> list[Message]:
    return _calls_in_python_source(path.read_text(encoding="utf-8"), _shown(path))


def catalogue(domain: str) -> dict:
    """The compiled Russian catalogue of `domain` ("django" or "djangojs") as gettext reads it."""
    with open(LOCALE / f"{domain}.mo", "rb") as handle:
        return gettext_module.GNUTranslations(handle)._catalog


def untranslated(messages: list[Message], compiled: dict) -> list[Message]:
    """Messages whose msgid is missing from the catalogue or has an empty translation."""
    return [m for m in messages if not compiled.get(m.key)]


# ---------------------------------------------------------------------------------------------
# Bare text: words a template shows without asking for a translation
# ---------------------------------------------------------------------------------------------

# Tokens that read the same in every language: units, symbols and the abbreviations of the
# field (ICC, SDC, SEM, JSN, CSV, JSON, API), which stay in Latin letters in Russian papers too.
TAG = re.compile(r"{%.*?%}|{{.*?}}|{#.*?#}", re.S)
BLOCK = re.compile(r"{%\s*blocktrans(?:late)?\b.*?{%\s*endblocktrans(?:late)?\s*%}", re.S)
COMMENT = re.compile(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", re.S)
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*[a-z][A-Za-z'’-]*")
SHOWN_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt"}
# Blocks whose content is a class name, not text (`{% block body_class %}`).
CLASS_BLOCK = re.compile(r"{%\s*block\s+\w*class\w*\s*%}.*?{%\s*endblock\b[^%]*%}", re.S)
# Key names and proper names read the same in every language.
SAME_IN_EVERY_LANGUAGE = re.compile(r"\b(?:Ctrl|Shift|Alt|Cmd)\+\w+|Sharp/van der Heijde")


class _BareText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str]] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "code", "svg"):
            self._skip += 1
        for name, value in attrs:
            if name in SHOWN_ATTRIBUTES and value and WORD.search(SAME_IN_EVERY_LANGUAGE.sub(" ", value)):
                self.found.append((self.getpos()[0], f'{name}="{value}"'))

    def handle_endtag(self, tag):
        if tag in ("script", "style", "code", "svg") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and WORD.search(SAME_IN_EVERY_LANGUAGE.sub(" ", data)):
            self.found.append((self.getpos()[0], data.strip()))


def bare_text(path: Path) -> list[str]:
    """Text and shown attributes of a template that contain a word outside any translation tag.

    Template tags are blanked (keeping line numbers), so `{% translate %}` and `{{ value }}` leave
    nothing behind; what remains with a lowercase Latin word is English a Russian reader would see.
    """
    text = path.read_text(encoding="utf-8")

    def blank(match: re.Match) -> str:
        return "\n" * match.group(0).count("\n") + " "

    text = COMMENT.sub(blank, text)
    text = CLASS_BLOCK.sub(blank, text)
    text = BLOCK.sub(blank, text)
    text = TAG.sub(blank, text)
    parser = _BareText()
    parser.feed(text)
    parser.close()
    return [f"{_shown(path)}:{line}: {snippet}" for line, snippet in parser.found]
