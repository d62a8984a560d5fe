"""Exports that drop no data: every matching run (not a page) with the columns asked for, and the
metric histories of every matching run, in long format, as CSV streamed a chunk of runs at a time,
so that 100,000 runs or 10 million points go out in constant memory.

The studio's Export button and the REST API (``runs/export/``, ``runs/export/metrics/``) write the
same files from the same functions; the runs are filtered and sorted by the one query language.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from runs import columns as run_columns
from runs import wire
from runs.columns import Column
from runs.models import MetricPoint, Run
from runs.validation import InvalidValue

# Runs loaded (with their tags, properties and metric summaries) per query while exporting.
RUNS_PER_CHUNK = 500
FORMATS = ("csv",)
# A cell a spreadsheet would run as a formula (CSV injection): written with a leading apostrophe,
# as OWASP advises. A number that merely starts with a sign is left alone.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class _Line:
    """What csv.writer writes to: it hands each row back instead of keeping it."""

    def write(self, text: str) -> str:
        return text


def check_format(value: str | None) -> str:
    chosen = (value or "csv").lower()
    if chosen not in FORMATS:
        raise InvalidValue(f"format: exports are written as {', '.join(FORMATS)}, not {value!r}", target="format")
    return chosen


def runs_csv(runs: QuerySet[Run], columns: list[Column]) -> Iterator[str]:
    """``runs`` (filtered and sorted by the caller) as CSV lines: a header of column keys, then one
    line a run, each column's exact value (numbers unrounded, times in ISO 8601 UTC, a duration in
    seconds, tags as ``key=value; key``)."""
    writer = csv.writer(_Line())
    yield writer.writerow([_header(column) for column in columns])
    for chunk in _chunks(runs.values_list("pk", flat=True).iterator(chunk_size=RUNS_PER_CHUNK)):
        loaded = run_columns.with_cells(Run.objects.filter(pk__in=chunk), columns).in_bulk()
        for pk in chunk:
            if (run := loaded.get(pk)) is not None:  # deleted since the page of keys was read
                yield writer.writerow([_export_value(run, column) for column in columns])


def metric_points_csv(runs: QuerySet[Run], names: list[str]) -> Iterator[str]:
    """Every point of the metrics ``names`` (all metrics when empty) of ``runs``, one line each, as
    ``run_id, metric, step, value, time``: runs in the order they were made, each run's metrics by
    name, each metric's points by step. A chunk of runs at a time, each chunk's points in one query
    that the database sorts, so nothing is held here but the line being written."""
    writer = csv.writer(_Line())
    yield writer.writerow(["run_id", "metric", "step", "value", "time"])
    for chunk in _chunks(runs.order_by("pk").values_list("pk", "run_id").iterator(chunk_size=RUNS_PER_CHUNK)):
        run_ids = dict(chunk)
        points = MetricPoint.objects.filter(metric__run_id__in=run_ids)
        if names:
            points = points.filter(metric__name__in=names)
        rows = points.order_by("metric__run_id", "metric__name", "step", "pk").values_list(
            "metric__run_id", "metric__name", "step", "number", "value", "time"
        )
        for run_pk, name, step, number, value, time in rows.iterator(chunk_size=10_000):
            shown = number if value is None else MetricPoint.decode(number, value)
            yield writer.writerow([run_ids[run_pk], name, step, _plain(shown), _iso(time)])


def csv_download(lines: Iterable[str], filename: str) -> StreamingHttpResponse:
    """``lines`` as a streamed CSV attachment (the REST API's exports and the studio's)."""
    response = StreamingHttpResponse(in_blocks(lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def in_blocks(lines: Iterable[str], size: int = 64 * 1024) -> Iterator[str]:
    """``lines`` joined into blocks of about ``size`` characters: a streamed response writes each
    item it is given as a chunk of its own, and one chunk a line costs more than making the line."""
    block: list[str] = []
    length = 0
    for line in lines:
        block.append(line)
        length += len(line)
        if length >= size:
            yield "".join(block)
            block, length = [], 0
    if block:
        yield "".join(block)


def _chunks(items: Iterable[Any]) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == RUNS_PER_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _header(column: Column) -> str:
    return "duration_seconds" if column.key == "duration" else column.key


def _export_value(run: Run, column: Column) -> Any:
    if column.key == "duration":
        taken = run.duration()
        return "" if taken is None else taken.total_seconds()
    if column.key == "tags":
        return _safe(
            "; ".join(key if value is None else f"{key}={value}" for key, value in run_columns.cell(run, column))
        )
    if column.key == "name":
        return _safe(run.display_name)
    return _plain(run_columns.cell(run, column))


def _plain(value: Any) -> Any:
    """A value as a CSV cell says it exactly: numbers as Python writes them (repr: round-trips), NaN
    and infinities by name, times in ISO 8601, anything structured as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else {math.inf: "inf", -math.inf: "-inf"}.get(value, "nan")
    if isinstance(value, int):
        return value
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, str):
        return _safe(value)
    return _safe(json.dumps(wire.encode(value), ensure_ascii=False))


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat() if timezone.is_aware(moment) else moment.isoformat()


def _safe(text: str) -> str:
    if text.startswith(_FORMULA_START) and not _NUMBER.match(text):
        return "'" + text
    return text
