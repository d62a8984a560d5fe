"""Template helpers for the studio's pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import markdown as markdown_lib
import nh3
from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from runs.models import Run
from studio.models import Preference

register = template.Library()

# What a description may hold: text formatting, links, images, code and tables. No scripts,
# styles, event handlers or javascript: URLs (nh3 drops them).
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "img", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead",
    "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "code": {"class"}, "span": {"class"}}


@register.filter
def markdown(text: str, run: Run | None = None) -> SafeString:
    """Markdown rendered with python-markdown, then sanitized with nh3. Relative links and images
    (``outputs/plot.png``) point at the run's own files."""

    def resolve(element: str, attribute: str, value: str) -> str | None:
        if run is not None and attribute in ("src", "href") and _is_relative(value):
            return reverse("api-run-file", args=[run.run_id, value.lstrip("./")])
        return value

    html = markdown_lib.markdown(text or "", extensions=["fenced_code", "tables", "sane_lists"])
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        attribute_filter=resolve,
    )
    return mark_safe(cleaned)  # noqa: S308 (sanitized by nh3 just above)


def _is_relative(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc and not url.startswith(("/", "#"))


@register.filter
def next_sort(sort_key: str | None, current: str) -> str:
    """The sort a column header links to: ascending first, then descending."""
    if not sort_key:
        return current
    return f"-{sort_key}" if current == sort_key else sort_key


@register.filter
def sort_mark(sort_key: str | None, current: str) -> str:
    if sort_key and current == sort_key:
        return "▲"
    if sort_key and current == f"-{sort_key}":
        return "▼"
    return ""


@register.filter
def number(value: Any) -> SafeString | str:
    """A number rounded for reading (about 4 significant digits), its exact value on hover; other
    values as they are (None: nothing)."""
    from studio.tables import readable_number

    if value is None:
        return ""
    if isinstance(value, float):
        exact = repr(value)
        return format_html(
            '<span class="num" title="{}" data-exact="{}">{}</span>', exact, exact, readable_number(value)
        )
    return str(value)


@register.filter
def error_line(run: Run) -> str:
    """A run's error in one line, its type said once: "RuntimeError: out of memory", whether the
    message already starts with its code (as Python's ``str(exception)`` lines do) or not."""
    code, message = run.error_code.strip(), run.error_message.strip()
    if not code or message.startswith(f"{code}:") or message == code:
        return message or code
    return f"{code}: {message}" if message else code


@register.filter
def status_class(status: str) -> str:
    """A status badge's colour class."""
    return {
        "Completed": "ok",
        "Failed": "bad",
        "Canceled": "muted",
        "NotResponding": "warn",
        "CancelRequested": "warn",
        "Running": "live",
        "Finalizing": "live",
    }.get(status, "wait")


@register.simple_tag(takes_context=True)
def theme_choice(context: template.Context) -> str:
    """The page's colour theme as the user chose it: auto (follow the OS), light or dark."""
    request = context.get("request")
    return Preference.theme_for(getattr(request, "user", None))
