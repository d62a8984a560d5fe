"""The runs table as HTML: its rows, its cells drawn for reading, and the column picker's choices.
The columns themselves, and what each shows for a run, are ``runs/columns.py``'s.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import quote

from django.db import connection
from django.db.models import QuerySet
from django.template.defaultfilters import truncatechars
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.http import RFC3986_SUBDELIMS
from django.utils.safestring import SafeString, mark_safe

from runs.columns import (  # noqa: F401 (the studio's names for them)
    DEFAULT_COLUMNS,
    PLAIN_COLUMNS,
    Column,
    cell,
    css_class,
    duration,
    metric_key,
    metric_names,
    parse_columns,
    with_cells,
)
from runs.models import Metric, Run, RunProperty, RunTag
from studio.templatetags.studio import status_class

# Pinned left in every table: the name, as W&B's and MLflow's runs tables keep it.
ALWAYS_PINNED = ("name",)


def pinned_first(columns: list[Column], pin: tuple[str, ...] | list[str]) -> list[Column]:
    """``columns`` as the grid draws them: the name first, then the other pinned ones (``pin``), then
    the rest, each group in its own order. The pinned group stays put when the grid scrolls sideways."""
    first = [c for key in ALWAYS_PINNED for c in columns if c.key == key]
    pinned = [c for c in columns if c.key in pin and c.key not in ALWAYS_PINNED]
    return first + pinned + [c for c in columns if c not in first and c not in pinned]


def pinned_keys(columns: list[Column], pin: tuple[str, ...] | list[str]) -> list[str]:
    pinned = {*ALWAYS_PINNED, *pin}
    return [c.key for c in columns if c.key in pinned]


@dataclass(frozen=True)
class ColumnEdit:
    """A shown column and the ``cols`` values that remove it or move it one place left or right
    (None where that is not possible), so the picker's links work without JavaScript."""

    column: Column
    remove: str | None
    left: str | None
    right: str | None
    pin: str | None = None  # the ``pin`` that pins it, or unpins it (None: always pinned)
    pinned: bool = False


def column_edits(columns: list[Column], pin: tuple[str, ...] | list[str] = ()) -> list[ColumnEdit]:
    keys = [c.key for c in columns]
    pinned = [key for key in keys if key in pin]
    held = [key in pinned or key in ALWAYS_PINNED for key in keys]  # a column moves within its group,

    def movable(i: int, j: int) -> bool:  # and never past the name, which is first
        return held[i] == held[j] and keys[i] not in ALWAYS_PINNED and keys[j] not in ALWAYS_PINNED

    def toggled(key: str) -> str | None:
        if key in ALWAYS_PINNED:
            return None
        return ",".join(k for k in pinned if k != key) if key in pinned else ",".join([*pinned, key])

    def swapped(i: int, j: int) -> str:
        moved = list(keys)
        moved[i], moved[j] = moved[j], moved[i]
        return ",".join(moved)

    return [
        ColumnEdit(
            column,
            # The last column stays: an empty ``cols`` would mean the default columns, a surprise.
            ",".join(keys[:i] + keys[i + 1 :]) if len(keys) > 1 else None,
            swapped(i - 1, i) if i > 0 and movable(i - 1, i) else None,
            swapped(i, i + 1) if i < len(keys) - 1 and movable(i, i + 1) else None,
            toggled(column.key),
            held[i],
        )
        for i, column in enumerate(columns)
    ]


# At most this many tag keys, property keys and metric names each are offered: a workspace where
# runs invent keys freely could otherwise make the picker a megabyte of <option>s.
CHOICES_LIMIT = 200


@dataclass(frozen=True)
class ChoiceGroup:
    label: str
    choices: list[tuple[str, str]]  # (column key, label)
    truncated: bool = False  # more exist than CHOICES_LIMIT


def plain_choices() -> ChoiceGroup:
    return ChoiceGroup("Run", [(c.key, c.label) for c in PLAIN_COLUMNS.values()])


def column_choices(runs: QuerySet[Run]) -> list[ChoiceGroup]:
    """What the column picker offers for ``runs`` (the caller scopes them to what the user may see):
    the plain columns, then the distinct tag keys, property keys and metric names (each metric as
    last, min and max), alphabetically, the first CHOICES_LIMIT of each kind. Six queries."""
    # Two ways to find the distinct keys, each fast where the other is slow: from the runs (time
    # grows with their number), or through the keys' index (time grows with how many other runs'
    # keys lie between theirs). Counting the runs up to FEW_RUNS + 1 picks, cheaply: the count
    # stops there. Measured (the whole htmx request, bench/seed_direct.py's 100,000 runs): 6 ms on
    # SQLite and 20-30 ms on PostgreSQL for the workspace, 23 and 43 ms for an experiment of 10,000
    # runs, 7 and 21 ms for a 5-run workspace beside it; reading every key instead took 250-350 ms
    # a kind, and the index alone 630 ms (SQLite) for that small workspace.
    tags, more_tags = known_keys(runs, "tags")
    properties, more_properties = known_keys(runs, "properties")
    metrics, more_metrics = known_keys(runs, "metrics")
    return [
        plain_choices(),
        ChoiceGroup("Tags", [(f"tags.{key}", key) for key in tags], more_tags),
        ChoiceGroup("Properties", [(f"properties.{key}", key) for key in properties], more_properties),
        ChoiceGroup(
            "Metrics",
            [
                (metric_key(name, aggregate), f"{name} ({aggregate})")
                for name in metrics
                for aggregate in ("last", "min", "max")
            ],
            more_metrics,
        ),
    ]


KEY_MODELS = {"tags": (RunTag, "key"), "properties": (RunProperty, "key"), "metrics": (Metric, "name")}


def known_keys(runs: QuerySet[Run], kind: str) -> tuple[list[str], bool]:
    """The distinct tag keys, property keys or metric names (``kind``) of ``runs``, alphabetically,
    the first CHOICES_LIMIT, and whether there were more (two queries)."""
    few = runs[: FEW_RUNS + 1].count() <= FEW_RUNS
    distinct = _distinct_keys_of_runs if few else _distinct_keys_by_index
    return distinct(*KEY_MODELS[kind], runs)


# Up to this many runs, their keys are read run by run (about 15 ms for 2,000 runs).
FEW_RUNS = 2_000

KeyModel = type[RunTag] | type[RunProperty] | type[Metric]


def _capped(found: list[str]) -> tuple[list[str], bool]:
    """The first CHOICES_LIMIT keys (of CHOICES_LIMIT + 1 asked for), and whether there were more.
    A key with a comma cannot be a column: ``cols`` is a comma-separated list."""
    return [key for key in found[:CHOICES_LIMIT] if "," not in key], len(found) > CHOICES_LIMIT


def _distinct_keys_of_runs(model: KeyModel, field: str, runs: QuerySet[Run]) -> tuple[list[str], bool]:
    """``SELECT DISTINCT key ... WHERE run_id IN (runs)``: reads every key of every run, so it is
    for few runs (250-350 ms a kind at 100,000 runs, on SQLite and PostgreSQL alike)."""
    keys = model.objects.filter(run__in=runs).order_by(field).values_list(field, flat=True).distinct()
    return _capped(list(keys[: CHOICES_LIMIT + 1]))


def _distinct_keys_by_index(model: KeyModel, field: str, runs: QuerySet[Run]) -> tuple[list[str], bool]:
    """The distinct keys of many runs, skipping from one key to the next through the (key, ...)
    index (a "loose index scan", written as a recursive query): each step asks for the smallest key
    above the last one found that belongs to one of ``runs``, which the index answers after a few
    rows when ``runs`` hold a good share of all runs (0.2 ms on SQLite, 2-8 ms on PostgreSQL for
    all three kinds at 100,000 runs). CROSS JOIN makes SQLite walk the key index first
    (PostgreSQL plans it so by itself). ``runs`` is compiled into the WHERE clause as it is, so
    its visibility rule (``Run.objects.visible_to``) is the one applied; it must filter on the
    run's own columns."""
    run_table = Run._meta.db_table
    if {alias for alias, uses in runs.query.alias_refcount.items() if uses} - {run_table}:
        raise ValueError("column choices need runs filtered on their own columns (no joins)")
    where, where_params = runs.query.get_compiler(connection=connection).compile(runs.query.where)
    quote = connection.ops.quote_name
    table, column = quote(model._meta.db_table), quote(model._meta.get_field(field).column)
    run_pk, run_fk = quote(Run._meta.pk.column), quote(model._meta.get_field("run").column)

    def smallest(above: str) -> str:
        return (
            f"SELECT t.{column} FROM {table} t CROSS JOIN {quote(run_table)} "
            f"WHERE {quote(run_table)}.{run_pk} = t.{run_fk} AND {where} {above} ORDER BY t.{column} LIMIT 1"
        )

    sql = f"""
        WITH RECURSIVE found(key, n) AS (
            SELECT ({smallest("")}), 1
            UNION ALL
            SELECT ({smallest(f"AND t.{column} > found.key")}), n + 1 FROM found
            WHERE found.key IS NOT NULL AND n <= %s
        )
        SELECT key FROM found WHERE key IS NOT NULL ORDER BY n"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [*where_params, *where_params, CHOICES_LIMIT])
        return _capped([key for (key,) in cursor.fetchall()])


def _escape(value: Any) -> str:
    """``value`` as HTML text. The standard library's ``html.escape``, which Django's ``escape``
    also calls (same output), without Django's handling of lazy strings around it: a page of 50
    rows escapes about 500 values, and that wrapper was a fifth of the rows' time."""
    return html.escape(str(value))


@dataclass(frozen=True)
class Rows:
    """How the runs table's rows are drawn (the same for every row of one response)."""

    workspace: str
    columns: list[Column]
    compare: frozenset[str] = frozenset()  # run ids whose box is ticked
    flat: bool = False  # a search with child runs: each child is marked with its parent
    depth: int = 0  # child rows loaded under a parent: their indentation
    # The baseline run's id and its metric cells' numbers (column key -> value): every other row's
    # metric cells also show their difference from it.
    baseline: tuple[str, dict[str, float]] | None = None

    @cached_property
    def column_keys(self) -> str:
        return quote(",".join(c.key for c in self.columns), safe="/")

    @cached_property
    def _run_url(self) -> Callable[[str, str], str]:
        """``reverse(name, args=[workspace, run_id])`` for the run pages a row links to, reversed once
        per response rather than once per row (``reverse`` was a tenth of the rows' time)."""
        placeholder = "RUN-ID-PLACEHOLDER"
        patterns = {
            name: reverse(name, args=[self.workspace, placeholder]).rsplit(placeholder, 1)
            for name in ("run_detail", "run_children", "run_child_rows")
        }

        def url(name: str, run_id: str) -> str:
            before, after = patterns[name]
            return f"{before}{quote(run_id, safe=RFC3986_SUBDELIMS + '/~:@')}{after}"  # as reverse() quotes

        return url

    @cached_property
    def now(self) -> dt.datetime:
        """The moment the rows' relative times count from: one for the whole response."""
        return timezone.now()

    def html(self, run: Run, child_count: int = 0, pinned: str = "") -> SafeString:
        """One ``<tr>``, written here rather than as template partials (a row, and a cell in it): 50
        rows of 8 or more cells made the partials most of the page's Python time at 100,000 runs,
        which went to the template machinery, not to the values. Every value passes ``_escape``.
        A cell is one line (studio.css cuts it with an ellipsis): its full text is its title.
        ``pinned``: the row is a pinned run's, at the top of the table, with these controls (HTML)."""
        if pinned:
            row_class = ' class="pinned-row' + (' baseline-row"' if self._is_baseline(run) else '"')
        elif self.depth:
            row_class = f' class="child-row depth-{self.depth}"'
        else:
            row_class = ' class="child-match"' if self.flat and run.parent_id else ""
        run_id = _escape(run.run_id)
        checked = " checked" if run.run_id in self.compare else ""
        parts = [
            f'<tr{row_class}><td class="col-select"><input type="checkbox" name="runs" value="{run_id}" '
            f'aria-label="Compare {_escape(run.display_name or run.run_id)}"{checked}></td>'
        ]
        for index, column in enumerate(self.columns):
            inner, attributes = self.cell_html(run, column, cell(run, column))
            parts.append(f'<td class="{_escape(column.css_class)}"{attributes}>')
            if index == 0 and child_count:
                parts.append(
                    f'<a class="expander" href="{_escape(self._run_url("run_children", run.run_id))}" '
                    f'hx-get="{_escape(self._run_url("run_child_rows", run.run_id))}'
                    f'?cols={_escape(self.column_keys)}&amp;depth={self.depth}" hx-target="closest tr" '
                    f'hx-swap="afterend" hx-trigger="click once" aria-label="Show the {child_count} child runs">'
                    f"▸ {child_count}</a> "
                )
            parts.append(inner)
            if index == 0 and pinned:
                parts.append(f' <span class="pin-controls">{pinned}</span>')
            if index == 0 and self.flat and run.parent_id:
                parent = run.parent
                parts.append(
                    f' <span class="child-of">child of <a href="{_escape(self._run_url("run_detail", parent.run_id))}">'
                    f"{_escape(parent.display_name or parent.run_id)}</a></span>"
                )
            parts.append("</td>")
        parts.append("</tr>")
        return mark_safe("".join(parts))  # noqa: S308 (every value in it went through _escape)

    def _is_baseline(self, run: Run) -> bool:
        return self.baseline is not None and run.run_id == self.baseline[0]

    def cell_html(self, run: Run, column: Column, value: Any) -> tuple[str, str]:
        """A cell's contents and the attributes of its ``<td>`` (its title: the full text), both
        escaped (see ``html``). The status badge is ``run_detail.html#run-status`` with ``in_table``
        (tests/test_studio_run_list.py holds the two to the same HTML)."""
        match column.key:
            case "name":
                link = f'<a href="{_escape(self._run_url("run_detail", run.run_id))}">{_escape(value)}</a>'
                return link, _title(value)
            case "status":
                badge = f'class="badge {_escape(status_class(run.status))}">{_escape(run.status)}</span>'
                if run.is_ended:
                    return f"<span {badge}", ""
                return (
                    f'<span id="status-{run.pk}" {badge}'
                    f'<input type="hidden" name="runs" value="{_escape(run.run_id)}" form="badge-poll">'
                ), ""
            case "created":
                local = timezone.localtime(value)
                return (
                    f'<time datetime="{local.isoformat()}" title="{local:%Y-%m-%d %H:%M:%S %Z}">'
                    f"{relative_time(value, self.now)}</time>"
                ), ""
            case "duration":
                if run.started_at is not None and run.ended_at is None:
                    # static/studio.js ticks it every second (without JavaScript it is the server's
                    # value); the table's poll brings the final one when the run ends.
                    started = timezone.localtime(run.started_at).isoformat()
                    return (
                        f'<span id="duration-{run.pk}" data-started="{started}">{_escape(value)}</span>'
                        f'<input type="hidden" name="runs" value="{_escape(run.run_id)}" form="badge-poll">'
                    ), ""
                return _escape(value), ""
            case "tags":
                chips = "".join(
                    f'<span class="chip">{_escape(key)}{"" if tag_value is None else _escape(f": {tag_value}")}</span> '
                    for key, tag_value in value
                )
                text = ", ".join(key if tag_value is None else f"{key}: {tag_value}" for key, tag_value in value)
                return chips, _title(text)
            case "description":
                text = plain_text(value[: TITLE_MAX * 2])
                return _escape(truncatechars(text, 80)), _title(text[:TITLE_MAX])
        if value is None:
            return "", ""
        if isinstance(value, float):
            exact = _exact_number(value)
            base = self.baseline[1].get(column.key) if self.baseline and not self._is_baseline(run) else None
            if base is not None and math.isfinite(base) and math.isfinite(value):
                delta = value - base
                said = f"{'+' if delta > 0 else ''}{readable_number(delta)}"
                return (
                    f'{readable_number(value)} <span class="delta">{_escape(said)}</span>',
                    f' title="{exact} ({_escape(said)} from the baseline)" data-exact="{exact}"',
                )
            return readable_number(value), f' title="{exact}" data-exact="{exact}"'
        text = value if isinstance(value, str) else formats.localize(value)
        return _escape(text), _title(text)


# A title longer than this (a description) is cut: a tooltip is not where a page of text is read.
TITLE_MAX = 1000


def _title(text: Any) -> str:
    return f' title="{_escape(text)}"' if text else ""


def _exact_number(number: float) -> str:
    """A float as it is stored, every digit (``repr``): what the title and a copy of the cell hold."""
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    return repr(number)


def readable_number(number: float) -> str:
    """A number rounded for reading in a table: about 4 significant digits (0.1235, 12.35, 1235),
    whole numbers from 10,000 to a million kept whole (123457), an exponent only for the very
    small and the very large (1.235e-05, 1.235e+09). The exact value goes in the cell's title (``_exact_number``)."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    text = f"{number:.4g}"
    if "e" in text and 1 <= abs(number) < 1e6:
        text = str(round(number))
    return text


def relative_time(moment: dt.datetime, now: dt.datetime) -> str:
    """How long ago, in one unit, as runs tables say it: "12 s ago", "5 min ago", "3 h ago",
    "2 d ago", "4 mo ago", "2 y ago" (a moment after ``now``, a clock ahead: "just now")."""
    seconds = (now - moment).total_seconds()
    if seconds < 1:
        return "just now"
    for unit, size in (("y", 365 * 86400), ("mo", 30 * 86400), ("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def format_number(number: float | None) -> str | None:
    if number is None:
        return None
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    return f"{number:.6g}"


# Markdown's marks, left out of a description shown on one line: heading and list marks, emphasis,
# code ticks, a link's or an image's URL (its text stays).
_MARKDOWN_LINE_MARKS = re.compile(r"^\s{0,3}(?:#{1,6}\s+|>\s?|[-*+]\s+|\d+[.)]\s+)", re.MULTILINE)
_MARKDOWN_INLINE = re.compile(
    r"!?\[([^\]]*)\]\([^)]*\)|(\*\*|\*|`|(?<!\w)__|(?<!\w)_)(?=\S)(.+?)(?<=\S)\2(?!\w)"  # snake_case stays
)


def plain_text(markdown: str) -> str:
    """A Markdown description as one line of plain text, for a cell: "## ResNet-18 on MNIST\n\nA
    **ResNet-18** ..." reads "ResNet-18 on MNIST · A ResNet-18 ...". Good enough for a glance; the
    run's page renders it."""
    text = _MARKDOWN_LINE_MARKS.sub("", markdown)
    text = _MARKDOWN_INLINE.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(3), text)
    return " · ".join(line.strip() for line in text.splitlines() if line.strip())


# --- Group rows: the table grouped by one or two keys (?group=), each group with metric statistics ---


def group_metric(column: Column) -> str | None:
    """A metric column as runs/groups.py names a metric (``loss``, ``loss.min``); None for others."""
    if not column.keyed or column.keyed[0] != "metrics":
        return None
    _, name, aggregate = column.keyed
    return name if aggregate == "last" else f"{name}.{aggregate}"


def group_label(by: str, value: str | None) -> str:
    """``lr: 0.01`` for ``tags.lr``; ``status: Failed``; a run without the key: ``lr: (none)``."""
    name = by.partition(".")[2] if by.startswith(("tags.", "properties.")) else by
    return f"{name}: {'(none)' if value is None else value}"


@dataclass(frozen=True)
class GroupRows:
    """How the grouped table's group rows are drawn: a row per group, its key and run count in the
    first column, and in each metric column the mean ± sample standard deviation of its runs'
    values (the minimum, maximum and count in the cell's title)."""

    columns: list[Column]
    by: list[str]

    def html(self, group: Any, level: int, expand: tuple[str, str] | None = None) -> SafeString:
        """One group row. ``group``: a runs/groups.py Group; ``level``: 0, or 1 under a first-level
        group; ``expand``: (the table filtered to the group, the URL of its run rows) for a group
        whose runs can be shown."""
        parts = [f'<tr class="group-row level-{level}"><td class="col-select"></td>']
        for index, column in enumerate(self.columns):
            parts.append(f'<td class="{_escape(column.css_class)}"')
            if index == 0:
                label = group_label(self.by[level], group.key[level])
                parts.append(f"{_title(label)}>")
                if expand is not None:
                    filtered, rows = expand
                    parts.append(
                        f'<a class="expander" href="{_escape(filtered)}" hx-get="{_escape(rows)}" '
                        'hx-target="closest tr" hx-swap="afterend" hx-trigger="click once" '
                        f'aria-label="Show the runs of {_escape(label)}">▸</a> '
                    )
                parts.append(
                    f'<span class="group-key">{_escape(label)}</span> '
                    f'<span class="group-count">{group.count} run{"" if group.count == 1 else "s"}</span></td>'
                )
                continue
            stats = group.metrics.get(group_metric(column) or "")
            if stats is None or stats.mean is None:
                parts.append("></td>")
                continue
            spread = "" if stats.std is None else f" ± {readable_number(stats.std)}"
            title = (
                f"mean {_exact_number(stats.mean)}, std {'–' if stats.std is None else _exact_number(stats.std)}, "
                f"min {_exact_number(stats.min)}, max {_exact_number(stats.max)}, of {stats.count} "
                f"run{'' if stats.count == 1 else 's'}"
            )
            parts.append(f'{_title(title)}>{readable_number(stats.mean)}<span class="spread">{spread}</span></td>')
        parts.append("</tr>")
        return mark_safe("".join(parts))  # noqa: S308 (every value in it went through _escape)
