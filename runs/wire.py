"""How metric values travel as JSON, shared by the server and the SDK (no Django here).

JSON has no NaN or infinity, and PostgreSQL's jsonb refuses them too, so a non-finite float is
written as ``{"$float": "NaN" | "Infinity" | "-Infinity"}`` wherever it appears, and read back
as a float.
"""

from __future__ import annotations

import math
from typing import Any

_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode(value: Any) -> Any:
    """Return ``value`` with every non-finite float replaced by its ``$float`` object."""
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return {"$float": "NaN"}
        return {"$float": "Infinity" if value > 0 else "-Infinity"}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    return value


def is_special_float(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and value.get("$float") in _NAMES


def decode(value: Any) -> Any:
    """Inverse of :func:`encode`."""
    if isinstance(value, dict):
        if is_special_float(value):
            return _NAMES[value["$float"]]
        return {key: decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode(item) for item in value]
    return value
