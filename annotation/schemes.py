"""Scoring schemes as data: `data/schemes.json` is the single source of joints and areas."""
from __future__ import annotations

import json
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
    for definition in scheme_definitions(path):
        scheme, _ = scheme_model.objects.update_or_create(
            key=definition["key"],
            defaults={"name": definition["name"], "description": definition.get("description", "")},
        )
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
            area_model.objects.update_or_create(
                scheme=scheme,
                body_part=item["body_part"],
                code=item["code"],
                defaults={
                    "joint": joints[(item["body_part"], item["landmark"])],
                    "dimension": item["dimension"],
                    "group": item["group"],
                    "max_grade": item["max_grade"],
                    "label": item["label"],
                    "order": order,
                },
            )
            written += 1
    return written
