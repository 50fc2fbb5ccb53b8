"""The layout of the reader's score table: joints as rows grouped like the paper form, Erosion and JSN as columns."""
from __future__ import annotations

from collections.abc import Sequence

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from annotation.models import JointArea

# Reading order of the groups on the form; the thumb IP belongs to the MCP group in RA2 codes.
GROUP_ORDER = ("dip", "pip", "mcp", "wrist", "mtp")
GROUP_HEADINGS = {
    "dip": gettext_noop("DIP"),
    "pip": gettext_noop("PIP"),
    "mcp": gettext_noop("Thumb IP and MCP"),
    "wrist": gettext_noop("Wrist"),
    "mtp": gettext_noop("MTP"),
}

# Rows placed after the rest of their group, as on the paper form: the foot lists MTP 1-5, then
# the hallux IP (the scheme data lists the IP first, as RA2-DREAM's columns do).
FORM_LAST = ("mtp_ip",)

# Scheme labels are data; the ones the shipped schemes use are listed here so they get translated.
JOINT_LABELS = (
    gettext_noop("Thumb IP"),
    gettext_noop("Base of 1st metacarpal"),
    gettext_noop("Trapezium + trapezoid"),
    gettext_noop("Scaphoid"),
    gettext_noop("Lunate"),
    gettext_noop("Distal radius"),
    gettext_noop("Distal ulna"),
    gettext_noop("Multangular-navicular"),
    gettext_noop("Capitate-navicular-lunate"),
    gettext_noop("Radiocarpal"),
    gettext_noop("Hallux IP"),
    gettext_noop("Wrist (one unit)"),
    gettext_noop("Larsen grade"),
    gettext_noop("Larsen total"),
    gettext_noop("Genant total"),
)

def score_rows(areas: Sequence[JointArea]) -> list[dict]:
    """Group headings and one row per joint; a dimension the scheme does not score is None ("X")."""
    joints: dict[str, dict] = {}
    for area in sorted(areas, key=lambda item: (item.joint.order, item.dimension)):
        row = joints.setdefault(
            area.joint.name,
            {"joint": area.joint.name, "label": _(area.label), "group": area.group, "order": area.joint.order,
             "erosion": None, "jsn": None},
        )
        if area.dimension == "erosion":
            row["label"] = _(area.label)  # the erosion label names the bone where the two differ
        row[area.dimension] = {
            "code": area.code, "max_grade": area.max_grade, "step": float(area.grade_step), "weight": area.total_weight,
        }
    ordered = sorted(
        joints.values(),
        key=lambda row: (
            GROUP_ORDER.index(row["group"]) if row["group"] in GROUP_ORDER else len(GROUP_ORDER),
            row["joint"] in FORM_LAST,
            row["order"],
        ),
    )
    rows: list[dict] = []
    for row in ordered:
        if not rows or rows[-1]["group"] != row["group"]:
            rows.append({"group_heading": True, "group": row["group"], "label": _(GROUP_HEADINGS.get(row["group"], row["group"].upper()))})
        rows.append(row)
    return rows
