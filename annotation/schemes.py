"""Scoring schemes as data: `data/schemes.json` is the single source of joints and areas."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

SCHEMES_FILE = Path(__file__).resolve().parent / "data" / "schemes.json"


def scheme_definitions(path: Path = SCHEMES_FILE) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)["schemes"]


def schemes_load(*, scheme_model, joint_model, area_model, path: Path = SCHEMES_FILE) -> int:
    """Create or update every scheme of the file; takes model classes so a migration can call it.

    Returns the number of areas written. Existing rows are updated in place, never deleted, because
    grades point at areas.
    """
    written = 0
    # An older migration calls this with historical models that predate the later columns.
    scheme_fields = {field.name for field in scheme_model._meta.get_fields()}
    area_fields = {field.name for field in area_model._meta.get_fields()}
    for definition in scheme_definitions(path):
        scheme_defaults = {"name": definition["name"], "description": definition.get("description", "")}
        for name, empty in (("dimension_labels", {}), ("totals", [])):
            if name in scheme_fields:
                scheme_defaults[name] = definition.get(name, empty)
        scheme, _ = scheme_model.objects.update_or_create(key=definition["key"], defaults=scheme_defaults)
        joints = {}
        for order, item in enumerate(definition["landmarks"]):
            joint, _ = joint_model.objects.update_or_create(
                scheme=scheme,
                body_part=item["body_part"],
                name=item["name"],
                defaults={"label": item["label"], "order": order},
            )
            joints[(item["body_part"], item["name"])] = joint
        for order, item in enumerate(definition["areas"]):
            area_defaults = {
                "joint": joints[(item["body_part"], item["landmark"])],
                "dimension": item["dimension"],
                "group": item["group"],
                "max_grade": item["max_grade"],
                "label": item["label"],
                "order": order,
            }
            for name in ("grade_step", "total_weight"):
                if name in area_fields:
                    area_defaults[name] = Decimal(str(item.get(name, 1))) if name == "grade_step" else item.get(name, 1)
            area_model.objects.update_or_create(
                scheme=scheme, body_part=item["body_part"], code=item["code"], defaults=area_defaults
            )
            written += 1
    return written
