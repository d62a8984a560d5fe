"""The columns a list of runs can show, and what each shows for a run: one vocabulary for the
studio's grid (studio/tables.py draws it as HTML) and the exports (runs/exports.py write it as CSV).

A column is named by a key that also appears in URLs (``?cols=name,status,metrics.loss.min``);
keyed columns (``tags.<key>``, ``properties.<key>``, ``metrics.<name>[.min|.max]``) sort with the
query language's sort keys (``runs/query.py``), so the UI, API and SDK order runs the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.text import slugify

from runs.models import Metric, Run, RunProperty, RunTag

DEFAULT_COLUMNS = ["name", "run_id", "experiment", "status", "submitted_by", "target", "created", "duration"]
AGGREGATES = {"": "last", "min": "min", "max": "max"}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    sort: str | None  # the sort key, or None when the column does not sort

    @cached_property
    def css_class(self) -> str:
        return css_class(self.key)

    @property
    def keyed(self) -> tuple[str, str, str] | None:
        """(kind, key, aggregate) for tags/properties/metrics columns."""
        kind, _, rest = self.key.partition(".")
        if kind not in ("tags", "properties", "metrics") or not rest:
            return None
        if kind == "metrics":
            name, _, aggregate = rest.rpartition(".")
            if name and aggregate in ("min", "max", "last"):
                return kind, name, aggregate
            return kind, rest, "last"
        return kind, rest, ""


def css_class(key: str) -> str:
    """The class of a column's cells (``col-metricslossmin``): a slug, safe in HTML and CSS."""
    return f"col-{slugify(key)}"


PLAIN_COLUMNS = {
    "name": Column("name", "Display name", "name"),
    "run_id": Column("run_id", "Run ID", "run_id"),
    "experiment": Column("experiment", "Experiment", "experiment"),
    "status": Column("status", "Status", "status"),
    "submitted_by": Column("submitted_by", "Submitted by", "submitted_by"),
    "target": Column("target", "Compute target", "target"),
    "created": Column("created", "Created", "created"),
    "duration": Column("duration", "Duration", None),
    "description": Column("description", "Description", None),
    "tags": Column("tags", "Tags", None),
}


def parse_columns(text: str) -> list[Column]:
    """Columns from ``?cols=``; raises ValueError naming an unknown one."""
    keys = [key.strip() for key in text.split(",") if key.strip()] or DEFAULT_COLUMNS
    columns = []
    for key in dict.fromkeys(keys):
        if key in PLAIN_COLUMNS:
            columns.append(PLAIN_COLUMNS[key])
            continue
        kind, _, rest = key.partition(".")
        if kind not in ("tags", "properties", "metrics") or not rest:
            raise ValueError(
                f"unknown column {key!r}; columns are {', '.join(PLAIN_COLUMNS)}, tags.<key>, properties.<key> "
                "and metrics.<name>[.min|.max]"
            )
        label = {"tags": "Tag", "properties": "Property", "metrics": ""}[kind]
        columns.append(Column(key, f"{label} {rest}".strip(), key))
    return columns


def metric_key(name: str, aggregate: str) -> str:
    """``metrics.loss`` for the last value, ``metrics.loss.min``; ``.last`` is spelled out only where
    the name itself ends like an aggregate (``metrics.acc.max.last``)."""
    if aggregate == "last" and name.rpartition(".")[2] not in ("last", "min", "max", "count"):
        return f"metrics.{name}"
    return f"metrics.{name}.{aggregate}"


def metric_names(columns: list[Column]) -> list[str]:
    """The metrics the columns show (``metrics.loss`` and ``metrics.loss.min`` are both ``loss``), in order."""
    return list(dict.fromkeys(c.keyed[1] for c in columns if c.keyed and c.keyed[0] == "metrics"))


def with_cells(queryset: QuerySet[Run], columns: list[Column]) -> QuerySet[Run]:
    """What the table's cells read, in a constant number of queries: a run's experiment, submitter
    and parent, its tags and properties (as lists, ``shown_tags`` and ``shown_properties``), and the
    metric summaries the columns need (not its logs and files, which the API's listing
    (``for_listing``) also brings)."""
    names = metric_names(columns)
    runs = queryset.select_related("experiment", "submitted_by", "parent").prefetch_related(
        Prefetch("tag_set", to_attr="shown_tags"), Prefetch("property_set", to_attr="shown_properties")
    )
    if names:
        runs = runs.prefetch_related(
            Prefetch("metrics", queryset=Metric.objects.filter(name__in=names), to_attr="shown_metrics")
        )
    return runs


def cell(run: Run, column: Column) -> Any:
    """What a column shows for a run loaded by ``with_cells`` (``cell_html`` draws it)."""
    if column.keyed:
        kind, key, aggregate = column.keyed
        if kind == "tags":
            return next((_tag_cell(t.value) for t in run.shown_tags if t.key == key), None)
        if kind == "properties":
            return next((p.value for p in run.shown_properties if p.key == key), None)
        metric = next((m for m in getattr(run, "shown_metrics", []) if m.name == key), None)
        if metric is None:
            return None
        summary = (metric.last_number, metric.min_number, metric.max_number, metric.last_value)
        return _metric_cell(summary, aggregate)
    match column.key:
        case "name":
            return run.display_name or run.run_id
        case "run_id":
            return run.run_id
        case "experiment":
            return run.experiment.name
        case "status":
            return run.status
        case "submitted_by":
            return run.submitted_by.username if run.submitted_by else ""
        case "target":
            return run.target
        case "created":
            return run.created_at
        case "duration":
            return duration(run)
        case "description":
            return run.description
        case "tags":
            return [(t.key, t.value) for t in run.shown_tags]
    return None


def duration(run: Run) -> str:
    return _duration_text(run.started_at, run.ended_at)


def _duration_text(started_at: dt.datetime | None, ended_at: dt.datetime | None) -> str:
    if started_at is None:
        return ""
    end = ended_at or timezone.now()
    seconds = int((end - started_at).total_seconds())
    return str(dt.timedelta(seconds=max(0, seconds)))


def _tag_cell(value: str | None) -> str:
    return value if value is not None else "✓"  # a tag without a value


# A metric's summary as ``cell_values`` reads it: last, min and max number, and the last value.
_SUMMARY_FIELDS = ("last_number", "min_number", "max_number", "last_value")
_AGGREGATE_AT = {"last": 0, "min": 1, "max": 2}


def _metric_cell(summary: tuple[float | None, float | None, float | None, Any], aggregate: str) -> Any:
    number = summary[_AGGREGATE_AT[aggregate]]
    last_value = summary[3]
    if number is None and aggregate == "last" and last_value is not None:
        return last_value if not isinstance(last_value, dict) else "NaN"
    return number  # a float: ``cell_html`` rounds it for reading and keeps the exact value


@dataclass(frozen=True, slots=True)
class RunValues:
    """One run as ``cell_values`` reads it: what ``cell`` shows for each column (``cells``, in the
    columns' order), and the fields behind the name and duration cells, which the exports write
    unformatted."""

    cells: list[Any]
    display_name: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None


# The run fields (as ``values_list`` names them) that each plain column reads.
_PLAIN_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("display_name", "run_id"),
    "run_id": ("run_id",),
    "experiment": ("experiment__name",),
    "status": ("status",),
    "submitted_by": ("submitted_by__username",),
    "target": ("target",),
    "created": ("created_at",),
    "duration": ("started_at", "ended_at"),
    "description": ("description",),
    "tags": (),
}


def cell_values(runs: QuerySet[Run], columns: list[Column], chunk_size: int) -> Iterator[RunValues]:
    """What ``cell`` shows for each column of each of ``runs``, in their order, read as plain values,
    not model instances: ``with_cells`` builds a model for the run, its experiment and submitter, and
    each of its tags, properties and metrics, which costs more than the rest of an export of many
    runs. The runs' fields come from one streamed query; for each ``chunk_size`` of them, their tags,
    properties and metric summaries come from one query each, where a column shows any. Tags and
    properties are read by run only: a key in the query would lead SQLite to its (key, value) index,
    through every run's tag."""
    fields = ["pk", "display_name", "started_at", "ended_at"]
    fields += [field for c in columns if c.key in _PLAIN_FIELDS for field in _PLAIN_FIELDS[c.key]]
    fields = list(dict.fromkeys(fields))
    kinds = {c.keyed[0] if c.keyed else c.key for c in columns}  # "tags" for the tags column and tags.<key>
    names = metric_names(columns)
    keyed = [(column.key, column.keyed) for column in columns]  # parsed once, not once a run
    rows = runs.values_list(*fields).iterator(chunk_size=chunk_size)
    while chunk := list(islice(rows, chunk_size)):
        pks = [row[0] for row in chunk]
        tags = _keyed_rows(RunTag, pks) if "tags" in kinds else {}
        properties = _keyed_rows(RunProperty, pks) if "properties" in kinds else {}
        metrics: dict[int, dict[str, tuple[Any, ...]]] = {}
        if names:
            summaries = Metric.objects.filter(run_id__in=pks, name__in=names).values_list(
                "run_id", "name", *_SUMMARY_FIELDS
            )
            for run_pk, name, *summary in summaries:
                metrics.setdefault(run_pk, {})[name] = tuple(summary)
        for row in chunk:
            values = dict(zip(fields, row, strict=True))
            pk = values["pk"]
            run_tags = tags.get(pk, [])
            shown = {"tags": dict(run_tags), "properties": dict(properties.get(pk, []))}
            cells: list[Any] = []
            for column_key, column_keyed in keyed:
                if column_keyed:
                    kind, key, aggregate = column_keyed
                    if kind == "metrics":
                        summary = metrics.get(pk, {}).get(key)
                        cells.append(None if summary is None else _metric_cell(summary, aggregate))
                    elif key not in shown[kind]:
                        cells.append(None)
                    else:
                        cells.append(_tag_cell(shown[kind][key]) if kind == "tags" else shown[kind][key])
                elif column_key == "tags":
                    cells.append(run_tags)
                else:
                    cells.append(_plain_cell(column_key, values))
            yield RunValues(cells, values["display_name"], values["started_at"], values["ended_at"])


def _keyed_rows(model: type[RunTag] | type[RunProperty], run_pks: list[int]) -> dict[int, list[tuple[str, Any]]]:
    """Each run's (key, value) pairs, in the order they were made."""
    rows = sorted(model.objects.filter(run_id__in=run_pks).values_list("pk", "run_id", "key", "value"))
    by_run: dict[int, list[tuple[str, Any]]] = {}
    for _, run_pk, key, value in rows:
        by_run.setdefault(run_pk, []).append((key, value))
    return by_run


def _plain_cell(key: str, values: dict[str, Any]) -> Any:
    """``cell`` for a plain column, from the fields in ``_PLAIN_FIELDS``."""
    match key:
        case "name":
            return values["display_name"] or values["run_id"]
        case "submitted_by":
            return values["submitted_by__username"] or ""
        case "duration":
            return _duration_text(values["started_at"], values["ended_at"])
    return values[_PLAIN_FIELDS[key][0]]
