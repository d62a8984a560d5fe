"""The API's JSON parser: DRF's, refusing bodies no view should have to walk.

- Python's JSON decoder recurses once per level, so a body nested a few thousand levels deep raised
  RecursionError (a 500) on every JSON endpoint, and one nested less deeply could do the same in any code
  that walks it. No body the API reads nests deeper than a few levels: past ``JSON_MAX_DEPTH`` it is
  malformed (400).
- PostgreSQL text cannot hold NUL, so a NUL in any string, even one only looked up, failed the query
  (a 500 there, while SQLite answered). No field takes one, so the body is refused naming where it is.
"""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from runs.validation import InvalidValue

JSON_MAX_DEPTH = 64


def _too_deep() -> ParseError:
    return ParseError(f"JSON parse error - the body nests deeper than {JSON_MAX_DEPTH} levels")


def _check(data: Any) -> None:
    """Walked with a stack, not recursion: that is the point. Every body goes through here, metric
    batches of 10,000 points included, so scalars are checked where they stand (only containers go on
    the stack) and a field's path is spelled out only for the error, from (parent, key) chains."""
    if isinstance(data, str):
        _refuse_nul(data, None)
    stack: list[tuple[dict | list, tuple | None, int]] = []
    if isinstance(data, dict | list):
        stack.append((data, None, 1))
    while stack:
        container, where, depth = stack.pop()
        if depth > JSON_MAX_DEPTH:
            raise _too_deep()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in items:
            if isinstance(key, str) and "\x00" in key:
                path = _path(where)
                raise InvalidValue(
                    f"a key of {path or 'the body'} holds a control character (NUL)", target=path or "body"
                )
            if isinstance(value, str):
                if "\x00" in value:
                    _refuse_nul(value, (where, key))
            elif isinstance(value, dict | list):
                stack.append((value, (where, key), depth + 1))


def _refuse_nul(value: str, where: tuple | None) -> None:
    if "\x00" in value:
        path = _path(where)
        raise InvalidValue(f"{path or 'body'} must not contain control characters (NUL)", target=path or "body")


def _path(where: tuple | None) -> str:
    """``points[3].name`` from the chain ((None, "points"), 3), "name")."""
    parts: list[str | int] = []
    while where is not None:
        where, key = where
        parts.append(key)
    path = ""
    for key in reversed(parts):
        path += f"[{key}]" if isinstance(key, int) else (f".{key}" if path else key)
    return path


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise _too_deep() from None
        _check(data)
        return data
