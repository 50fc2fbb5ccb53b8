"""Figures as JSON: numpy values and non-finite floats turned into what every database stores.

Shared by the consensus (run parameters) and the model (metrics) so that both store NaN the same
way: as null, which PostgreSQL's jsonb accepts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """`value` as JSON a JSONField stores on every database: string keys, numpy values as Python
    ones, and NaN or infinity as null (PostgreSQL's jsonb refuses them); anything else as text."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
