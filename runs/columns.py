"""The columns a list of runs can show, and what each shows for a run: one vocabulary for the
studio's grid (studio/tables.py draws it as HTML) and the exports (runs/exports.py write it as CSV).

A column is named by a key that also appears in URLs (``?cols=name,status,metrics.loss.min``);
keyed columns (``tags.<key>``, ``properties.<key>``, ``metrics.<name>[.min|.max]``) sort with the
query language's sort keys (``runs/query.py``), so the UI, API and SDK order runs the same way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.text import slugify

from runs.models import Metric, Run

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
            return next((t.value if t.value is not None else "✓" for t in run.shown_tags if t.key == key), None)
        if kind == "properties":
            return next((p.value for p in run.shown_properties if p.key == key), None)
        metric = next((m for m in getattr(run, "shown_metrics", []) if m.name == key), None)
        if metric is None:
            return None
        number = {"last": metric.last_number, "min": metric.min_number, "max": metric.max_number}[aggregate]
        if number is None and aggregate == "last" and metric.last_value is not None:
            return metric.last_value if not isinstance(metric.last_value, dict) else "NaN"
        return number  # a float: ``cell_html`` rounds it for reading and keeps the exact value
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
    if run.started_at is None:
        return ""
    end = run.ended_at or timezone.now()
    seconds = int((end - run.started_at).total_seconds())
    return str(dt.timedelta(seconds=max(0, seconds)))
