"""A metric over steps for each group of runs, as the runs table's grouped mode charts it (issue 13):
per group, at each step, the mean of its runs' values (the line) and their min and max (a band).

The groups are runs/groups.py's: the same keys, the same order (``run_groups``), and the same
joins, so a chart's groups are the table's rows. The arithmetic is the database's: one GROUP BY
(group keys, step bucket) over the runs joined to the metric's points returns AVG, MIN and MAX of
``number``, one row per group and bucket. Python never sees a point, only those rows, at most
``max_groups * max_points`` of them however many points were logged.

Three queries whatever the number of runs, groups or points: the groups (``run_groups``), the
metric's step range, and the aggregates.
"""

from __future__ import annotations

import math
import operator
from functools import reduce
from typing import Any

from django.db.models import Avg, F, FilteredRelation, Max, Min, Q, QuerySet, Value
from django.db.models.expressions import Expression

from runs.groups import PLAIN_KEYS, Group, run_groups
from runs.models import Run

__all__ = ["group_series"]

NONE_LABEL = "(none)"
SEPARATOR = " · "


def group_series(
    runs: QuerySet[Run],
    by: list[str],
    metric: str,
    *,
    max_groups: int = 10,
    max_points: int = 1000,
) -> dict[str, Any]:
    """The chart spec of ``metric`` over steps for the groups of ``runs`` by the keys ``by``
    (validated by the caller, as ``groups.parse_keys`` does), ready for static/charts.js::

        {"title": "loss over steps", "xLabel": "step",
         "series": [{"label": "lr=0.01 · model=cnn", "x": [steps], "y": [means],
                     "band": {"lo": [mins], "hi": [maxes]}, "runs": 3}, ...]}

    One series per group, for the first ``max_groups`` groups in ``run_groups``' order (runs
    without a key last), so a series' index, and with it its colour, is its row's in the table. A
    group's label is ``key=value`` per key, joined by " · ", the key being a tag's or property's
    name (``lr`` for ``tags.lr``) or the plain key (``status``); a run without the key has the
    value ``(none)``. ``runs`` is the group's run count, as the table shows it, whether or not its
    runs logged the metric; a group none of whose runs did has empty lists.

    At each step, the mean, min and max are over every numeric point the group's runs logged at
    that step: a run that logged the metric several times at one step counts each point (so the
    band spans them all). Points that are not numbers (strings, lists, NaN, which are kept in
    ``value`` with a null ``number``) are left out, and a step with only such points has no entry.

    Downsampling, when the steps logged span more than ``max_points`` values: the steps are cut into
    at most ``max_points`` buckets of equal width (the same buckets for every group, from the
    smallest step logged), and each bucket is merged in the database: its mean is that of all its
    points, its ``lo`` the min of all its points (the min of the steps' mins) and its ``hi`` the max
    (the max of their maxes). So the band keeps every extreme, a one-step spike included, and the
    mean stays exact for its bucket. A bucket's x is the smallest step in it that the group logged,
    a real step: when the steps logged are sparse (every 1,000th), buckets hold one step each and the
    steps are exact.

    JSON has no NaN or Infinity: a value that is not finite (an infinite point, or infinities of
    both signs averaged) is sent as ``None``, a gap.
    """
    if max_groups < 1 or max_points < 1:
        raise ValueError(f"max_groups and max_points must be at least 1, not {max_groups} and {max_points}")
    spec: dict[str, Any] = {"title": f"{metric} over steps", "xLabel": "step", "series": []}
    found = run_groups(runs, by, [])
    shown = found[:max_groups]
    if not shown:
        return spec

    joins, keys = _key_joins(by)
    base = runs.order_by().annotate(
        **joins, point_metric=FilteredRelation("metrics", condition=Q(metrics__name=metric))
    )
    if len(shown) < len(found):
        # Only the groups shown: the rest would cost their points' scan and rows for nothing.
        base = base.filter(_groups_filter(keys, shown))
    # Numeric points only: a step of strings alone has no mean (and this join is the one the
    # aggregates below read: a filter before values/annotate constrains them).
    points = base.filter(point_metric__points__number__isnull=False)
    step = "point_metric__points__step"
    span = points.aggregate(first=Min(step), last=Max(step))
    first, last = span["first"], span["last"]

    by_group: dict[tuple[Any, ...], tuple[list[Any], list[Any], list[Any], list[Any]]] = {}
    if first is not None:
        # The bucket width: the least that makes at most max_points buckets of [first, last].
        width = max(1, -(-(last - first + 1) // max_points))
        # Integer division: both sides are integers, which SQLite and PostgreSQL divide as such, and
        # step - first >= 0, so it truncates as floor does.
        bucket: Expression = F(step) if width == 1 else (F(step) - Value(first)) / Value(width)
        number = "point_metric__points__number"
        rows = (
            points.values(*keys, bucket=bucket)
            .annotate(x=Min(step), mean=Avg(number), lo=Min(number), hi=Max(number))
            .order_by("bucket")
        )
        for row in rows:
            xs, means, los, his = by_group.setdefault(tuple(row[key] for key in keys), ([], [], [], []))
            xs.append(row["x"])
            means.append(_finite(row["mean"]))
            los.append(_finite(row["lo"]))
            his.append(_finite(row["hi"]))

    for group in shown:
        xs, means, los, his = by_group.get(group.key, ([], [], [], []))
        spec["series"].append(
            {
                "label": _label(by, group.key),
                "x": xs,
                "y": means,
                "band": {"lo": los, "hi": his},
                "runs": group.count,
            }
        )
    return spec


def _key_joins(by: list[str]) -> tuple[dict[str, FilteredRelation], list[str]]:
    """The joins and value fields of the group keys, as ``run_groups`` makes them (``k0``, ``k1``
    for tags and properties, the run's own columns and foreign keys for the rest), so that the
    rows' keys are the groups' keys."""
    joins: dict[str, FilteredRelation] = {}
    keys: list[str] = []
    for i, key in enumerate(by):
        if key in PLAIN_KEYS:
            keys.append(PLAIN_KEYS[key])
            continue
        kind, _, name = key.partition(".")
        relation = "tag_set" if kind == "tags" else "property_set"
        joins[f"k{i}"] = FilteredRelation(relation, condition=Q(**{f"{relation}__key": name}))
        keys.append(f"k{i}__value")
    return joins, keys


def _groups_filter(keys: list[str], groups: list[Group]) -> Q:
    """Runs in one of ``groups``: an OR of each group's key values, a missing key as IS NULL."""

    def equals(key: str, value: Any) -> Q:
        return Q(**{f"{key}__isnull": True}) if value is None else Q(**{key: value})

    return reduce(
        operator.or_,
        (Q(*(equals(key, value) for key, value in zip(keys, group.key, strict=True))) for group in groups),
    )


def _label(by: list[str], key: tuple[Any, ...]) -> str:
    parts = []
    for name, value in zip(by, key, strict=True):
        short = name.partition(".")[2] if name.startswith(("tags.", "properties.")) else name
        parts.append(f"{short}={NONE_LABEL if value is None else value}")
    return SEPARATOR.join(parts)


def _finite(value: float | None) -> float | None:
    """The value, or None where JSON could not hold it (NaN, infinities)."""
    return value if value is not None and math.isfinite(value) else None
