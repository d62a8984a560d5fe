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

from django.db import connection
from django.db.models import Func, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from runs import columns as run_columns
from runs import wire
from runs.columns import Column, RunValues
from runs.models import MetricPoint, Run
from runs.validation import InvalidValue

# Runs loaded (with their tags, properties and metric summaries) per query while exporting.
RUNS_PER_CHUNK = 500
# Metric points read from the database (and written out) at a time.
POINTS_PER_FETCH = 2000
# A point's time on PostgreSQL as str() writes the naive datetime in UTC (with microseconds; _text_iso
# drops zero ones as str() does).
_POSTGRES_UTC_TEXT = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
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
    """``runs`` (filtered and sorted by the caller) as CSV: a header of column keys, then one line a
    run, each column's exact value (numbers unrounded, times in ISO 8601 UTC, a duration in seconds,
    tags as ``key=value; key``). Each item after the header is the lines of a chunk of runs, read as
    plain values (``cell_values``), not as models, so that only a chunk is held here at a time."""
    writer = csv.writer(_Line())
    yield writer.writerow([_header(column) for column in columns])
    for chunk in _chunks(run_columns.cell_values(runs, columns, RUNS_PER_CHUNK)):
        yield "".join([writer.writerow(_export_values(run, columns)) for run in chunk])


def metric_points_csv(runs: QuerySet[Run], names: list[str]) -> Iterator[str]:
    """Every point of the metrics ``names`` (all metrics when empty) of ``runs``, one line each, as
    ``run_id, metric, step, value, time``: runs in the order they were made, each run's metrics by
    name, each metric's points by step. A chunk of runs at a time, each chunk's points in one query
    that the database sorts, read a batch of rows at a time, so nothing is held here but a batch.
    Each item after the header is the lines of a batch."""
    writer = csv.writer(_Line())
    yield writer.writerow(["run_id", "metric", "step", "value", "time"])
    for chunk in _chunks(runs.order_by("pk").values_list("pk", "run_id").iterator(chunk_size=RUNS_PER_CHUNK)):
        run_ids = dict(chunk)
        points = MetricPoint.objects.filter(metric__run_id__in=run_ids)
        if names:
            points = points.filter(metric__name__in=names)
        # The time is read as text, as SQLite holds it: str() of the naive datetime in UTC. Read as
        # its column, it would be parsed into a datetime in Python (by the converter Django registers
        # with sqlite3, by Django's time zone loader with psycopg), which costs more than the line.
        if connection.vendor == "sqlite":
            time: Func = Cast("time", TextField())
        else:
            time = Func("time", template=_POSTGRES_UTC_TEXT, output_field=TextField())
        query = (
            points.order_by("metric__run_id", "metric__name", "step", "pk")
            .annotate(time_as_read=time)
            .values_list("metric_id", "metric__run_id", "metric__name", "step", "number", "value", "time_as_read")
        )
        yield from _point_blocks(query, run_ids, writer)


def _point_blocks(query: QuerySet[MetricPoint, tuple[Any, ...]], run_ids: dict[int, str], writer: Any) -> Iterator[str]:
    """The lines of ``query``'s points, a fetched batch at a time. The rows are read from a cursor
    of the query's SQL, not through the queryset: its per-value converters (parsing each time into
    a datetime, each value's JSON) cost more than the rest of a line. So here the time is text (see
    ``metric_points_csv``) and ``value`` is JSON text, parsed only for a point that is not a plain
    number."""
    sql, params = query.query.sql_with_params()
    metric_now, head = None, ""
    with connection.chunked_cursor() as cursor:  # PostgreSQL: a server-side cursor, as .iterator() uses
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(POINTS_PER_FETCH):
            lines = []
            for metric, run, name, step, number, value, time in rows:
                if metric != metric_now:  # a metric's lines all start with "run_id,name," (quoted as csv quotes)
                    metric_now, head = metric, writer.writerow([run_ids[run], name])[:-2] + ","
                if value is None and number is not None:  # a float: repr() quotes nothing
                    lines.append(f"{head}{step},{number!r},{_text_iso(time)}\r\n")
                else:
                    lines.append(head + writer.writerow([step, _point_value(number, value), _text_iso(time)]))
            yield "".join(lines)


def _point_value(number: float | None, value: Any) -> Any:
    if value is None:
        return _plain(number)
    return _plain(MetricPoint.decode(number, json.loads(value) if isinstance(value, str) else value))


def _text_iso(text: str) -> str:
    """A point's time as read (``str()`` of the naive datetime in UTC, as Django writes it to SQLite),
    as ``_iso`` writes the datetime that Django would read from it."""
    if len(text) in (19, 26) and text[10] == " " and text[-7:] != ".000000":
        return f"{text[:10]}T{text[11:]}+00:00"
    moment = parse_datetime(text)  # as Django's converter reads it
    if moment is None:
        raise ValueError(f"not a date and time: {text!r}")
    return _iso(moment if timezone.is_aware(moment) else timezone.make_aware(moment, dt.UTC))


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


def _export_values(run: RunValues, columns: list[Column]) -> list[Any]:
    return [_export_value(run, column.key, cell) for column, cell in zip(columns, run.cells, strict=True)]


def _export_value(run: RunValues, key: str, cell: Any) -> Any:
    """A cell as the export writes it: the name as given (empty without one), the duration in
    seconds, tags as ``key=value; key``."""
    if key == "duration":
        if run.started_at is None:
            return ""
        # As Run.duration: until it ended, or until now while it goes on.
        return max(dt.timedelta(0), (run.ended_at or timezone.now()) - run.started_at).total_seconds()
    if key == "tags":
        return _safe("; ".join(key if value is None else f"{key}={value}" for key, value in cell))
    if key == "name":
        return _safe(run.display_name)
    return _plain(cell)


def _plain(value: Any) -> Any:
    """A value as a CSV cell says it exactly: numbers as Python writes them (repr: round-trips), NaN
    and infinities by name, times in ISO 8601, anything structured as JSON."""
    if value.__class__ is str:  # the most common cell, first
        return _safe(value)
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
