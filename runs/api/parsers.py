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
    """Walked with a stack, not recursion: that is the point. Paths read as the views name fields."""
    stack: list[tuple[Any, str, int]] = [(data, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise InvalidValue(f"{path or 'body'} must not contain control characters (NUL)", target=path or "body")
            continue
        if isinstance(item, dict):
            children = []
            for key, value in item.items():
                child = f"{path}.{key}" if path else key
                if "\x00" in key:
                    raise InvalidValue(
                        f"a key of {path or 'the body'} holds a control character (NUL)", target=path or "body"
                    )
                children.append((value, child))
        elif isinstance(item, list):
            children = [(value, f"{path}[{index}]") for index, value in enumerate(item)]
        else:
            continue
        if depth > JSON_MAX_DEPTH:
            raise _too_deep()
        stack.extend((value, child, depth + 1) for value, child in children)


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise _too_deep() from None
        _check(data)
        return data
