"""A run's log as the Outputs tab draws it: one element a line (studio.css numbers them, studio.js
searches them), the lines that came from stderr marked (the runner says which bytes did:
``RunLog.stderr_ranges``), a line redrawn with carriage returns (a progress bar) as a terminal
leaves it."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def log_html(data: bytes, start: int, stderr: Sequence[Sequence[int]] = ()) -> SafeString:
    """The lines of ``data`` (the log's bytes from offset ``start``), each escaped in its element;
    a line any of whose bytes came from stderr has the class ``err``."""
    starts = [range_[0] for range_ in stderr]
    out = []
    at = start
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the data ends with a line break
    for line in lines:
        end = at + len(line)
        text = line.decode(errors="replace").rstrip("\r")
        if "\r" in text:
            text = text.rsplit("\r", 1)[1]
        css = "ln err" if _overlaps(stderr, starts, at, end + 1) else "ln"
        out.append(f'<span class="{css}">{escape(text)}</span>\n')
        at = end + 1
    return mark_safe("".join(out))  # noqa: S308 (each line escaped)


def _overlaps(ranges: Sequence[Sequence[int]], starts: list[int], start: int, end: int) -> bool:
    """Whether any of the sorted ``ranges`` overlaps [start, end)."""
    i = bisect_right(starts, end - 1) - 1  # the last range that starts before the end
    return i >= 0 and ranges[i][1] > start
