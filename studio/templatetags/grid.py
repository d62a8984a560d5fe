"""The runs grid's template filters."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import template
from django.utils.safestring import SafeString, mark_safe

from studio import tables
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


@register.filter
def pin_rules(keys: list[str]) -> SafeString:
    """The CSS that keeps the pinned columns (studio/tables.py, ``pinned_first``) in place when the grid
    scrolls sideways: sticky, the last with an edge. Each one's offset from the left is set by
    static/studio.js from the widths drawn; without JavaScript the first stays (at the select column's
    edge) and the others scroll."""
    rules = [f"#runs-table .{css_class(key)}{{position:sticky;z-index:1}}" for key in keys]
    rules += [f"#runs-table thead .{css_class(key)}{{z-index:3}}" for key in keys]
    if keys:
        rules.append(f"#runs-table .{css_class(keys[0])}{{left:var(--select-width)}}")
        rules.append(f"#runs-table .{css_class(keys[-1])}{{box-shadow:inset -1px 0 0 var(--line-strong)}}")
    return mark_safe("".join(rules))  # noqa: S308 (slugs only)


@register.filter
def run_duration(run: object) -> str:
    """A run's duration as the grid writes it (studio/tables.py)."""
    return tables.duration(run)  # type: ignore[arg-type]


@register.simple_tag(takes_context=True)
def state_link(context: template.Context, name: str, value: Any, drop_page: bool = False) -> str:
    """``{% querystring links name=value %}`` for the grid's per-column links (sort, move, pin,
    remove: about six a column), with the rest of the state encoded once a page instead of once a
    link. ``drop_page``: as ``page=None``."""
    bases = context.render_context.setdefault("state_link_bases", {})
    if (name, drop_page) not in bases:
        rest = context["links"].copy()
        for key in (name, "page") if drop_page else (name,):
            rest.pop(key, None)
        bases[name, drop_page] = rest.urlencode()
    base, pair = bases[name, drop_page], urlencode({name: "" if value is None else value})
    return f"?{base}&{pair}" if base else f"?{pair}"
