"""Labels that pages show in the reader's language: a radiograph's side, a project role.

Stored values are codes ("L" and "hand", "lead"); these filters turn them into words once, so no
page spells "Lhand" or an untranslated role.
"""
from __future__ import annotations

from django import template
from django.utils.translation import gettext

register = template.Library()


@register.filter
def side_label(radiograph) -> str:
    """ "Left hand", "Right foot", ... for a radiograph (or anything with laterality and body_part,
    attributes or keys)."""
    field = radiograph.get if isinstance(radiograph, dict) else lambda name, default: getattr(radiograph, name, default)
    left = field("laterality", "") == "L"
    if field("body_part", "hand") == "foot":
        return gettext("Left foot") if left else gettext("Right foot")
    return gettext("Left hand") if left else gettext("Right hand")


@register.filter
def role_label(role: str) -> str:
    """A project role in words: reader, lead, or staff (an operator who is no member)."""
    labels = {"reader": gettext("reader"), "lead": gettext("lead"), "staff": gettext("staff")}
    return labels.get(role, role)
