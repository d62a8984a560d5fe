"""The runs table's state: the one place that reads it from a URL (or a saved view) and writes it back.

Everything the table shows is in the URL (``?q=status in (Failed, Canceled)&sort=...&cols=...``), as
in Django admin's ``ChangeList``; a saved view stores the same parameters (``to_params()``), so a view
round-trips exactly and is checked with the same function (``from_params``) when it is saved as when
it is opened. The filters are the query: one text in the run query language (``runs/query.py``), the
search box's, whose conditions the filter chips show (``studio/run_filters.py``); so they filter
exactly as the API and the SDK do. The filter controls of earlier versions (``?status=Failed``,
``?metric=loss&metric_max=1``) are still read, from old links and views, as conditions of the query.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.http import QueryDict

from runs import groups as run_groups
from runs import query as run_query
from runs.models import Run
from runs.query import QueryError, literal
from runs.validation import InvalidValue
from studio import run_filters, tables

# The table's state parameters, in the order the URL and a saved view write them. ``page`` and
# ``view`` are not state: a page number is where one is, and a view is where the state came from.
TEXT_PARAMS = ("q", "sort", "cols", "pin", "density", "widths", "group", "group_sort", "baseline")
PARAMS = ("q", "sort", "cols", "pin", "density", "widths", "children", "archived", "group", "group_sort",
          "pinned_runs", "baseline", "compare")  # fmt: skip
# Lists, written comma-separated.
LISTS = ("cols", "pin", "group", "pinned_runs", "compare")
# On or off: written as 1 when on, and left out when off.
FLAGS = ("children", "archived")
# Read from old links and views, as conditions of the query; never written.
OLD_FILTERS = ("status", "experiment", "target", "user", "created_from", "created_to", "tag", "prop", "metric",
               "metric_min", "metric_max")  # fmt: skip
# How tall the grid's rows are; none said: comfortable. Said, it is kept as said (a view that says
# "comfortable" stays so under a default that might change).
DENSITIES = ("comfortable", "compact")
# A column's width, set by dragging its header's edge (static/studio.js): ?widths=name:240,metrics.loss:90 (px).
WIDTH_RANGE = (40, 2000)
MAX_LENGTHS = {"q": 2000, "sort": 500, "cols": 2000, "pin": 2000, "widths": 2000, "target": 255, "user": 150,
               "tag": 500, "prop": 500, "metric": 255, "experiment": 255, "compare": 2000, "group": 600,
               "group_sort": 300, "pinned_runs": 6000, "baseline": 255}  # fmt: skip
COMPARE_MAX = 50
# Runs pinned to the top of the table, across pages and filters (W&B's pinned runs).
PINNED_RUNS_MAX = 20
# What groups sort by (?group_sort=): their key, their run count, or a statistic of a metric column
# (``-metrics.loss:mean``, ``metrics.acc.max:std``).
GROUP_STATS = ("mean", "std", "min", "max")
FALSE_WORDS = ("", "0", "false", "off", "no")

Params = Mapping[str, Any]  # a QueryDict, or a saved view's dict of str and list values


class StateError(ValueError):
    """A state that does not hold, with a message per bad field (``errors``: parameter -> message)."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))


class ViewNotFound(LookupError):
    """``?view=`` names a view the user cannot see: never saved, deleted, or another's private one."""


def _values(params: Params, name: str) -> list[str]:
    """A parameter's values, blank ones dropped: here, and only here, an empty value is the same as
    an absent one."""
    if isinstance(params, QueryDict):
        values = params.getlist(name)
    else:
        value = params.get(name)
        values = value if isinstance(value, list | tuple) else [] if value is None else [value]
    return [str(v).strip() for v in values if str(v).strip()]


def _one(params: Params, name: str) -> str:
    values = _values(params, name)
    return values[-1] if values else ""


@dataclass(frozen=True)
class RunListState:
    """What the runs table shows: search text, sort, columns, child runs, runs picked for comparing,
    and the filter controls. Build it with ``from_params`` or ``from_request``; it is always valid."""

    q: str = ""
    sort: str = ""
    cols: tuple[str, ...] = ()  # as chosen; none: the default columns
    pin: tuple[str, ...] = ()  # columns pinned left, beside the name (always pinned), in ``cols`` order
    density: str = ""  # one of DENSITIES, or "": comfortable
    widths: tuple[tuple[str, int], ...] = ()  # (column key, px), as dragged; none: each as wide as it needs
    children: bool = False
    archived: bool = False  # the archived runs, which no list shows otherwise (RunQuerySet.listed)
    group: tuple[str, ...] = ()  # one or two keys (runs/groups.py): group rows with metric statistics
    group_sort: str = ""  # "" (by key), "[-]count" or "[-]<metric column>:<statistic>"
    pinned_runs: tuple[str, ...] = ()  # run ids shown at the top, whatever the filter and page
    baseline: str = ""  # a pinned run: the other rows' metric cells show their difference from it
    compare: tuple[str, ...] = ()
    page: int | None = None
    view: Any = dataclasses.field(default=None, compare=False)  # the SavedView it came from, if any
    from_view: frozenset[str] = dataclasses.field(default=frozenset(), compare=False)  # params the view gave

    # --- reading ---------------------------------------------------------------------------------------

    @classmethod
    def from_params(cls, params: Params) -> RunListState:
        """The state of ``params`` (a URL's, a form's or a saved view's); raises ``StateError`` with a
        message for each bad field. Parameters that are not state (``name``, ``csrfmiddlewaretoken``)
        are ignored."""
        errors: dict[str, str] = {}
        found: dict[str, Any] = {}
        for name in TEXT_PARAMS:
            found[name] = _one(params, name)
        for name, limit in MAX_LENGTHS.items():
            if any(len(value) > limit for value in _values(params, name)):
                errors[name] = f"at most {limit} characters"
        found["density"] = found["density"].lower()
        if found["density"] and found["density"] not in DENSITIES:
            errors["density"] = f"rows are {' or '.join(DENSITIES)}, not {found['density']!r}"
        try:
            found["widths"] = tuple(parse_widths(found["widths"]).items())
        except ValueError as error:
            errors.setdefault("widths", str(error))
            found["widths"] = ()
        for name in FLAGS:
            found[name] = _one(params, name).lower() not in FALSE_WORDS
        for name in ("compare", "pinned_runs", "group"):
            found[name] = tuple(dict.fromkeys(r.strip() for r in _one(params, name).split(",") if r.strip()))
        if found["baseline"] and found["baseline"] not in found["pinned_runs"]:
            found["pinned_runs"] = (found["baseline"], *found["pinned_runs"])  # the baseline is shown pinned
        if len(found["pinned_runs"]) > PINNED_RUNS_MAX:
            errors["pinned_runs"] = f"at most {PINNED_RUNS_MAX} runs are pinned"
        if found["group"]:
            try:
                run_groups.parse_keys(",".join(found["group"]))
            except InvalidValue as error:
                errors["group"] = error.message.removeprefix("by: ")
        if found["group_sort"] and (problem := _group_sort_problem(found["group_sort"])):
            errors["group_sort"] = problem
        if len(found["compare"]) > COMPARE_MAX:
            errors["compare"] = f"at most {COMPARE_MAX} runs are compared"
        for condition in _old_filters(params, errors):
            try:
                found["q"] = run_filters.with_condition(found["q"], condition)
            except QueryError:
                break  # the search text's own error is said below
        for name in ("page",):
            value = _one(params, name)
            found[name] = int(value) if value.isdigit() and int(value) >= 1 else None
            if value and found[name] is None:
                errors[name] = "a page number is a whole number from 1"
        if "cols" not in errors:
            try:
                tables.parse_columns(found["cols"])
            except ValueError as error:
                errors["cols"] = str(error)
        found["cols"] = tuple(dict.fromkeys(k.strip() for k in found["cols"].split(",") if k.strip()))
        found["pin"] = tuple(
            dict.fromkeys(k.strip() for k in found["pin"].split(",") if k.strip() not in ("", *tables.ALWAYS_PINNED))
        )
        if found["pin"] and "cols" not in errors:
            shown = [column.key for column in tables.parse_columns(",".join(found["cols"]))]
            if unknown := [key for key in found["pin"] if key not in shown]:
                errors.setdefault("pin", f"only a shown column can be pinned, not {unknown[0]!r}")
        if "sort" not in errors:
            try:
                run_query.check_sort(found["sort"])
            except QueryError as error:
                errors["sort"] = str(error)
        if "q" not in errors:
            try:
                _check_query(found["q"])
                if impossible := run_query.impossible_range(found["q"]):
                    errors["q"] = impossible[0].upper() + impossible[1:]
            except QueryError as error:
                errors["q"] = str(error)
        if errors:
            raise StateError(errors)
        return cls(**found)

    @classmethod
    def from_request(cls, request: Any, workspace: Any, user: Any) -> RunListState:
        """The state of a runs page: the URL's, over the view it names (``?view=``) or, when the URL
        says nothing about the state at all, over the user's default view for the workspace. A
        parameter in the URL wins over the view's even when it is empty (``?q=`` clears the view's
        search). Raises ``ViewNotFound``, or ``StateError`` (with ``from_view`` set on it when every
        bad field came from the view, not from the URL)."""
        from studio.models import DefaultView, SavedView

        params = request.GET
        visible = SavedView.objects.visible_to(user, workspace)
        view = None
        if view_id := params.get("view", "").strip():
            view = visible.filter(pk=view_id).first() if view_id.isdigit() else None
            if view is None:
                raise ViewNotFound(view_id)
        elif "view" not in params and not any(name in params for name in (*PARAMS, *OLD_FILTERS)):
            default = DefaultView.objects.filter(user=user, workspace=workspace, view__in=visible)
            view = next((d.view for d in default.select_related("view__owner", "view__changed_by")), None)
        merged = QueryDict(mutable=True)
        stored = view.params if view is not None else {}
        for name in (*PARAMS, *OLD_FILTERS, "page"):
            if name in params:
                merged.setlist(name, params.getlist(name))
            elif name in stored:
                value = stored[name]
                merged.setlist(name, list(value) if isinstance(value, list | tuple) else [value])
        from_view = frozenset(name for name in stored if name not in params)
        try:
            state = cls.from_params(merged)
        except StateError as error:
            error.view = view  # type: ignore[attr-defined]
            error.from_view = view is not None and set(error.errors) <= from_view  # type: ignore[attr-defined]
            error.params = merged  # type: ignore[attr-defined]
            raise
        return dataclasses.replace(state, view=view, from_view=from_view)

    # --- writing ---------------------------------------------------------------------------------------

    def to_params(self) -> dict[str, str | list[str]]:
        """The state as URL parameters (what a saved view stores): only the ones that say something,
        in ``PARAMS`` order. ``from_params`` reads it back as an equal state. The page is left out."""
        params: dict[str, str | list[str]] = {}
        for name in PARAMS:
            value = getattr(self, name)
            if name in LISTS:
                if value:
                    params[name] = ",".join(value)
            elif name == "widths":
                if value:
                    params[name] = ",".join(f"{key}:{px}" for key, px in value)
            elif name in FLAGS:
                if value:
                    params[name] = "1"
            elif value:
                params[name] = value
        return params

    def differs_from(self, view: Any) -> bool:
        """Whether this is not the state ``view`` saved (the page offers to update the view)."""
        try:
            saved = RunListState.from_params(view.params)
        except StateError:
            return True  # a view that no longer holds: whatever is shown differs
        return self.to_params() != saved.to_params()

    def query_dict(self) -> QueryDict:
        """``to_params()`` as a QueryDict (for ``{% querystring %}`` and ``urlencode``)."""
        query = QueryDict(mutable=True)
        for name, value in self.to_params().items():
            query.setlist(name, value if isinstance(value, list) else [value])
        return query

    def urlencode(self) -> str:
        return self.query_dict().urlencode(safe=",")

    def query(self) -> str:
        """The filters: one query of the run query language."""
        return self.q

    @property
    def chips(self) -> list[run_filters.Chip]:
        return run_filters.chips(self.q)

    # --- for the page ----------------------------------------------------------------------------------

    @property
    def columns(self) -> list[tables.Column]:
        """The shown columns in the order they are drawn: the pinned ones first."""
        return tables.pinned_first(tables.parse_columns(",".join(self.cols)), self.pin)

    def fields(self) -> dict[str, Any]:
        """Each parameter's value for the page's form controls, as a string."""
        params = self.to_params()
        return {name: params.get(name, "") for name in PARAMS}


def parse_widths(text: str) -> dict[str, int]:
    """``name:240,metrics.loss:90`` as {column key: px}; raises ValueError naming what is wrong. A key
    given twice keeps its last width (a drag appends)."""
    widths: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, px = item.rpartition(":")
        low, high = WIDTH_RANGE
        if not sep or not key.strip() or not px.strip().isdigit() or not low <= int(px) <= high:
            raise ValueError(f"a width is column:pixels, {low} to {high} (name:240), not {item!r}")
        widths.pop(key.strip(), None)
        widths[key.strip()] = int(px)
    return widths


def _group_sort_problem(text: str) -> str:
    what = text.removeprefix("-")
    if what in ("count", "key"):
        return ""
    column, _, stat = what.rpartition(":")
    if stat not in GROUP_STATS or not column.startswith("metrics.") or len(column) <= len("metrics."):
        return (
            f"groups sort by key, count or a metric column's {', '.join(GROUP_STATS)} "
            f"(-metrics.loss:mean), not {text!r}"
        )
    return ""


def fields_of(params: Params) -> dict[str, Any]:
    """What was typed, for the form controls of a state that did not hold (so that it can be mended)."""
    return {name: _one(params, name) for name in PARAMS}


def _date(params: Params, name: str, errors: dict[str, str]) -> dt.date | None:
    value = _one(params, name)
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        errors[name] = f"Enter a valid date (2026-01-31), not {value!r}"
        return None


def _number(params: Params, name: str, errors: dict[str, str]) -> float | None:
    value = _one(params, name)
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        errors[name] = f"Enter a number, not {value!r}"
        return None
    return number


def _old_filters(params: Params, errors: dict[str, str]) -> list[str]:
    """The filter controls of earlier versions (``?status=Failed&status=Canceled``,
    ``?metric=loss&metric_min=0.1``), as conditions of the query, which they were ANDed to."""
    conditions: list[str] = []
    statuses = []
    for value in _values(params, "status"):
        status = next((s for s in Run.Status.values if s.lower() == value.lower()), None)
        if status is None:
            errors["status"] = f"Select a valid choice: {value!r} is not a status ({', '.join(Run.Status.values)})"
        else:
            statuses.append(status)
    for field, values in (("status", statuses), ("experiment", _values(params, "experiment"))):
        values = list(dict.fromkeys(values))
        if len(values) == 1:
            conditions.append(f"{field} = {literal(values[0])}")
        elif values:
            conditions.append(f"{field} in ({', '.join(literal(v) for v in values)})")
    for name, field in (("target", "target"), ("user", "submitted_by")):
        if value := _one(params, name):
            conditions.append(f"{field} = {literal(value)}")
    for name, op in (("created_from", ">="), ("created_to", "<=")):
        if (day := _date(params, name, errors)) is not None:
            conditions.append(f"created {op} {day.isoformat()}")
    for name, prefix in (("tag", "tags"), ("prop", "properties")):
        key, sep, value = _one(params, name).partition("=")
        if key.strip():
            conditions.append(f"{prefix}.{literal(key.strip())}" + (f" = {literal(value.strip())}" if sep else ""))
    low, high = _number(params, "metric_min", errors), _number(params, "metric_max", errors)
    if metric := _one(params, "metric"):
        field = f"metrics.{literal(metric)}"
        if low is not None:
            conditions.append(f"{field} >= {low!r}")
        if high is not None:
            conditions.append(f"{field} <= {high!r}")
        if low is None and high is None:
            conditions.append(field)
    elif low is not None or high is not None:
        errors["metric"] = "name the metric that the range is for"
    return conditions


def _check_query(text: str) -> None:
    """Parse the query and check what can be checked without the database: each comparison's
    operator and value (a status that is not one, a date that is not a date, ``~`` on a metric).
    Free text is left out: it looks up experiments and users."""
    stack = [run_query.parse(text)]
    while stack:
        node = stack.pop()
        if isinstance(node, run_query.And | run_query.Or):
            stack.extend(node.items)
        elif isinstance(node, run_query.Not):
            stack.append(node.item)
        elif isinstance(node, run_query.Compare | run_query.Has):
            run_query.to_q(node)
