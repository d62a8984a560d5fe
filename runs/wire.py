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


# --- Which bytes of a run's log came from stderr ---------------------------------------------------------
# The runner merges a script's stdout and stderr into one log, in the order they arrive, and says
# which byte ranges were stderr as it ships each chunk (``?stderr=120-180,300-342``: [start, end)
# offsets in the log); the studio marks the lines in them.


def encode_ranges(ranges: list[tuple[int, int]]) -> str:
    return ",".join(f"{start}-{end}" for start, end in ranges)


def decode_ranges(text: str) -> list[tuple[int, int]]:
    """``"120-180,300-342"`` as [(120, 180), (300, 342)]; raises ValueError for anything else (a
    range backwards or empty, ranges out of order or overlapping)."""
    ranges: list[tuple[int, int]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        start_text, sep, end_text = item.partition("-")
        if not sep or not start_text.isdigit() or not end_text.isdigit():
            raise ValueError(f"{item!r} is not a byte range such as 120-180")
        start, end = int(start_text), int(end_text)
        if end <= start or (ranges and start < ranges[-1][1]):
            raise ValueError(f"{item!r}: ranges go forwards, in order, without overlapping")
        ranges.append((start, end))
    return ranges
