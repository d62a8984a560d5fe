"""Runs grouped by one or two keys (an experiment, a status, a tag's or a property's value...), each
group with its run count and, for each metric asked for, the mean, sample standard deviation, min
and max of its runs' values: averaging over seeds, as W&B's grouping does. One query, computed by
the database (a GROUP BY over the runs joined to the keys and metric summaries they need).

Every join is to at most one row per run: a tag or property by its key and a metric by its name are
unique per run (``runs_runtag_unique_key``, ``runs_runproperty_unique_key``, ``runs_metric_unique_name``),
the plain keys are the run's own columns or foreign keys, and the query language filters runs with
subqueries, never joins. So the runs are counted with a plain COUNT, not COUNT(DISTINCT), which made
PostgreSQL sort every row instead of hashing them, and SQLite keep a b-tree per group; and a metric
asked for with several aggregates (``loss`` and ``loss.min``) is joined once, not once per aggregate:
each join costs an index lookup per run on SQLite and a hash join over all the runs on PostgreSQL
(issue 13; measured in bench/RESULTS.md, "Grouping at 100,000 runs (issue 13)").

A metric is named as a column is, less ``metrics.``: ``loss`` (its last value), ``loss.min``,
``accuracy.max``. The standard deviation is the sample one (n - 1), as ``statistics.stdev``; a
group with fewer than two values has none. It is computed from the count, the sum and the sum of
squares, which every database aggregates natively (SQLite has no STDDEV).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, FilteredRelation, Max, Min, Q, QuerySet, Sum

from runs.models import Run
from runs.validation import InvalidValue

# A group key: the plain ones by their column, and tags.<key> / properties.<key>.
PLAIN_KEYS = {
    "experiment": "experiment__name",
    "status": "status",
    "submitted_by": "submitted_by__username",
    "target": "target",
    "parent": "parent__run_id",
    "type": "type",
}
AGGREGATE_FIELDS = {"last": "last_number", "min": "min_number", "max": "max_number"}
MAX_KEYS = 2
MAX_METRICS = 10


@dataclass(frozen=True)
class MetricStats:
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    count: int  # the runs with a value

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max, "count": self.count}


@dataclass(frozen=True)
class Group:
    key: tuple[str | None, ...]
    count: int
    metrics: dict[str, MetricStats]

    def as_dict(self) -> dict[str, Any]:
        """As the API answers it: the key alone when grouped by one key, a list when by two."""
        key: Any = self.key[0] if len(self.key) == 1 else list(self.key)
        return {"key": key, "count": self.count, "metrics": {name: s.as_dict() for name, s in self.metrics.items()}}


def parse_keys(text: str) -> list[str]:
    keys = [key.strip() for key in text.split(",") if key.strip()]
    if not keys:
        raise InvalidValue("by: group by a key, e.g. tags.lr or experiment", target="by")
    if len(keys) > MAX_KEYS:
        raise InvalidValue(f"by: at most {MAX_KEYS} keys, not {len(keys)}", target="by")
    for key in keys:
        kind, _, name = key.partition(".")
        if key not in PLAIN_KEYS and not (kind in ("tags", "properties") and name):
            raise InvalidValue(
                f"by: cannot group by {key!r}; group by {', '.join(PLAIN_KEYS)}, tags.<key> or properties.<key>",
                target="by",
            )
    return keys


def parse_metrics(text: str) -> list[tuple[str, str, str]]:
    """``loss,accuracy.max`` as (as asked, metric name, aggregate)."""
    found = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, aggregate = item.rpartition(".")
        if not name or aggregate not in AGGREGATE_FIELDS:
            name, aggregate = item, "last"
        found.append((item, name, aggregate))
    if len(found) > MAX_METRICS:
        raise InvalidValue(f"metrics: at most {MAX_METRICS}, not {len(found)}", target="metrics")
    return found


def run_groups(runs: QuerySet[Run], by: list[str], metrics: list[tuple[str, str, str]]) -> list[Group]:
    """The groups of ``runs`` (filtered by the caller) by the keys ``by``, with each metric's
    statistics, ordered by key (runs without the key last). ``runs`` must hold each run once:
    filtered, as the query language filters, not joined to a many-valued relation."""
    joins: dict[str, Any] = {}
    keys: list[str] = []
    for i, key in enumerate(by):
        kind, _, name = key.partition(".")
        if key in PLAIN_KEYS:
            keys.append(PLAIN_KEYS[key])
            continue
        relation = "tag_set" if kind == "tags" else "property_set"
        joins[f"k{i}"] = FilteredRelation(relation, condition=Q(**{f"{relation}__key": name}))
        keys.append(f"k{i}__value")
    # A plain COUNT: no join repeats a run (see the module's docstring).
    aggregates: dict[str, Any] = {"runs": Count("pk")}
    metric_joins: dict[str, str] = {}  # metric name -> its join: one per metric, whatever its aggregates
    for j, (_, name, aggregate) in enumerate(metrics):
        if name not in metric_joins:
            metric_joins[name] = alias = f"m{len(metric_joins)}"
            joins[alias] = FilteredRelation("metrics", condition=Q(metrics__name=name))
        value = F(f"{metric_joins[name]}__{AGGREGATE_FIELDS[aggregate]}")
        aggregates |= {
            f"n{j}": Count(value),
            f"s{j}": Sum(value),
            f"q{j}": Sum(value * value),
            f"lo{j}": Min(value),
            f"hi{j}": Max(value),
        }
    rows = runs.order_by().annotate(**joins).values(*keys).annotate(**aggregates)
    groups = [
        Group(
            key=tuple(row[key] for key in keys),
            count=row["runs"],
            metrics={asked: _stats(row, j) for j, (asked, _, _) in enumerate(metrics)},
        )
        for row in rows
    ]
    return sorted(groups, key=lambda group: [(value is None, value or "") for value in group.key])


def _stats(row: dict[str, Any], j: int) -> MetricStats:
    n, total, squares = row[f"n{j}"], row[f"s{j}"], row[f"q{j}"]
    if not n:
        return MetricStats(None, None, None, None, 0)
    mean = total / n
    std = None
    if n > 1:
        variance = max(0.0, (squares - n * mean * mean) / (n - 1))  # never below 0 from rounding
        std = math.sqrt(variance)
    return MetricStats(mean, std, row[f"lo{j}"], row[f"hi{j}"], n)
