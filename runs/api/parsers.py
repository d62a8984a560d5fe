"""The API's JSON parser: DRF's, made safe against hostile nesting.

Python's JSON decoder recurses once per level, so a body nested a few thousand levels deep raised
RecursionError (a 500) on every JSON endpoint; one nested less deeply parsed, then could do the same in
any code that walks it. No body the API reads nests deeper than a few levels, so deeper ones are refused
as malformed (400) before any view sees them.
"""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

JSON_MAX_DEPTH = 64


def _nests_deeper_than(value: Any, limit: int) -> bool:
    """Walked with a stack, not recursion: that is the point."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        too_deep = ParseError(f"JSON parse error - the body nests deeper than {JSON_MAX_DEPTH} levels")
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise too_deep from None
        if isinstance(data, dict | list) and _nests_deeper_than(data, JSON_MAX_DEPTH):
            raise too_deep
        return data
