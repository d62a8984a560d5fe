"""Writes filters in the run query language (parsed on the server by ``runs/query.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def quote(value: str) -> str:
    """A string literal of the query language; the server's parser reads it back as ``value``."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _keyed(prefix: str, selection: Any) -> list[str]:
    """``tags="k"``: the key exists; ``tags={"k": "v"}``: exact value (None: the key exists)."""
    if selection is None:
        return []
    if isinstance(selection, str):
        return [f"{prefix}.{quote(selection)}"]
    if isinstance(selection, Mapping):
        return [
            f"{prefix}.{quote(key)}" if value is None else f"{prefix}.{quote(key)} = {quote(str(value))}"
            for key, value in selection.items()
        ]
    if isinstance(selection, Iterable):
        return [f"{prefix}.{quote(key)}" for key in selection]
    raise TypeError(f"{prefix} must be a string, a dict or a list of keys")


def run_filter(
    *,
    experiment: str | None = None,
    tags: Any = None,
    properties: Any = None,
    type: str | None = None,
    status: str | Iterable[str] | None = None,
) -> str:
    terms = []
    if experiment is not None:
        terms.append(f"experiment = {quote(experiment)}")
    terms += _keyed("tags", tags)
    terms += _keyed("properties", properties)
    if type is not None:
        terms.append(f"type = {quote(type)}")
    if isinstance(status, str):
        terms.append(f"status = {quote(status)}")
    elif status is not None:
        terms.append(f"status in ({', '.join(quote(s) for s in status)})")
    return " and ".join(terms)
