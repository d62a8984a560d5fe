"""The runs grid's template filters."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from studio.run_list_state import parse_widths
from studio.tables import css_class

register = template.Library()


@register.filter
def width_rules(widths: str) -> SafeString:
    """The CSS that gives the grid's columns their dragged widths (``?widths=``; RunListState), one rule
    a column: the class is a slug and the width a number, so nothing of the URL reaches the page as it
    was typed. A state that did not hold (a page showing its error) gets none."""
    try:
        found = parse_widths(widths or "")
    except ValueError:
        return mark_safe("")
    rules = (
        f"#runs-table .{css_class(key)}{{width:{px}px;min-width:{px}px;max-width:{px}px}}" for key, px in found.items()
    )
    return mark_safe("".join(rules))  # noqa: S308 (slugs and integers only)
