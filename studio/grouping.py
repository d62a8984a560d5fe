"""The runs table grouped (``?group=tags.lr`` or ``?group=properties.lr,tags.model``): a row per
group with its run count and, in each metric column, its runs' mean ± standard deviation (min, max
and count on hover), computed by the database (runs/groups.py, one query a level). With two keys,
each first-level group row is followed by its second-level groups. A group's runs open under it
(htmx), or, without JavaScript, as the table filtered to the group: its key is a condition of the
one query language, so the filtered table is an ordinary state, and a link.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet
from django.utils.safestring import SafeString

from runs import groups
from runs.group_series import group_series
from runs.models import Run
from runs.query import literal
from studio import run_filters, tables
from studio.run_list_state import GROUP_STATS, RunListState

# First-level groups shown; more say so, and that a filter narrows them.
GROUPS_MAX = 200
# A group's runs shown under it; the rest are a link to the table filtered to the group.
GROUP_RUNS_SHOWN = 50
# Under the grouped table, a chart per metric column (the first few), a line per group (the first few):
# more lines than colours are not read.
CHARTS_MAX = 4
CHARTED_GROUPS_MAX = 10


@dataclass
class GroupedTable:
    rows: list[SafeString] = field(default_factory=list)
    groups: int = 0  # first-level groups found (rows holds at most GROUPS_MAX of them)
    runs: int = 0
    charts: list[dict[str, Any]] = field(default_factory=list)  # static/charts.js specs, a band per group
    charted: int = 0  # the groups the charts draw


def group_condition(key: str, value: str | None) -> str | None:
    """The query condition that finds a group's runs (``tags.lr = "0.01"``, ``not tags.lr``), or
    None where the language cannot say it (a plain key's missing value: a run without a parent)."""
    if value is None:
        return f"not {key}" if key.startswith(("tags.", "properties.")) else None
    return f"{key} = {literal(value)}"  # the group keys are fields of the query language too


def grouped_table(
    runs: QuerySet[Run], state: RunListState, columns: list[tables.Column], link: Callable[[RunListState], str]
) -> GroupedTable:
    """The group rows of ``runs`` (the table's runs, archived or not, in the experiment shown) as
    ``state`` groups them; ``link(state)`` is the URL of a state (the table filtered to a group)."""
    listed = runs if state.children else runs.filter(parent__isnull=True)
    matching = listed.search(state.query())
    by = list(state.group)
    asked = [spec for column in columns if (spec := tables.group_metric(column))]
    sort_spec = _sort_metric(state.group_sort)
    metrics = groups.parse_metrics(",".join(dict.fromkeys([*asked, *([sort_spec] if sort_spec else [])])))
    top = _sorted(groups.run_groups(matching, by[:1], metrics), state.group_sort, sort_spec)
    inner = _sorted(groups.run_groups(matching, by, metrics), state.group_sort, sort_spec) if len(by) > 1 else []
    drawn = tables.GroupRows(columns, by)
    table = GroupedTable(groups=len(top), runs=sum(group.count for group in top))
    for group in top[:GROUPS_MAX]:
        if len(by) == 1:
            table.rows.append(drawn.html(group, 0, _expand(state, by, group.key, link)))
            continue
        table.rows.append(drawn.html(group, 0))
        for sub in (s for s in inner if s.key[0] == group.key[0]):
            table.rows.append(drawn.html(sub, 1, _expand(state, by, sub.key, link)))
    for name in tables.metric_names(columns)[:CHARTS_MAX]:
        chart = group_series(matching, by, name, max_groups=CHARTED_GROUPS_MAX)
        if any(series["x"] for series in chart["series"]):
            table.charts.append(chart)
            table.charted = len(chart["series"])
    return table


def group_members(state: RunListState) -> RunListState:
    """The state of a group's runs (as ``_expand`` writes it): the table's, ungrouped."""
    return dataclasses.replace(state, group=(), group_sort="")


def _expand(
    state: RunListState, by: list[str], key: tuple[str | None, ...], link: Callable[[RunListState], str]
) -> tuple[str, str] | None:
    query = state.q
    for name, value in zip(by, key, strict=True):
        condition = group_condition(name, value)
        if condition is None:
            return None
        query = run_filters.with_condition(query, condition)
    filtered = link(group_members(dataclasses.replace(state, q=query)))
    return filtered, f"{filtered}&group_runs=1"


def _sort_metric(group_sort: str) -> str | None:
    what = group_sort.removeprefix("-")
    if ":" not in what:
        return None
    column_key = what.rpartition(":")[0]
    return tables.group_metric(tables.parse_columns(column_key)[0])


def _sorted(found: list[groups.Group], group_sort: str, spec: str | None) -> list[groups.Group]:
    """Groups by key (as run_groups gives them), by run count, or by a statistic of a metric; the
    groups without a value last, whichever the direction."""
    descending = group_sort.startswith("-")
    what = group_sort.removeprefix("-")
    if what in ("", "key"):
        return list(reversed(found)) if descending else found
    if what == "count":
        return sorted(found, key=lambda group: group.count, reverse=descending)
    stat = what.rpartition(":")[2]
    assert stat in GROUP_STATS and spec is not None  # RunListState checked it

    def value(group: groups.Group) -> Any:
        stats = group.metrics.get(spec)
        return getattr(stats, stat) if stats is not None else None

    having = sorted((g for g in found if value(g) is not None), key=value, reverse=descending)
    return having + [g for g in found if value(g) is None]
