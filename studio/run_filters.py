"""The runs table's filter chips and its "Add filter" editor.

The table's filters are its query (``RunListState.q``): a chip is one top-level condition of it
(``runs.query.conditions``), so the search box and the chips are the same query shown two ways and
can never disagree. Removing a chip writes the query without that condition; "Add filter" writes
one condition in the query language from a field, an operator and values, and adds it with "and".
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from runs import query as run_query
from runs.models import Experiment, Membership, Run
from runs.query import QueryError, literal, quote
from studio import tables

# How the chips name the plain fields (the query language's aliases included).
FIELD_LABELS = {
    "status": "Status",
    "experiment": "Experiment",
    "target": "Compute target",
    "compute": "Compute target",
    "submitted_by": "Submitted by",
    "user": "Submitted by",
    "created": "Created",
    "started": "Started",
    "ended": "Ended",
    "name": "Name",
    "display_name": "Name",
    "description": "Description",
    "run_id": "Run ID",
    "id": "Run ID",
    "type": "Type",
    "parent": "Parent run",
    "number": "Run number",
}
KEYED_KINDS = {"tags": "tag", "properties": "property", "metrics": "metric"}
# Operators as a chip says them: words for the plain fields ("Status is Failed"), signs for the
# keyed ones and for dates and numbers ("lr = 0.01", "loss.min < 0.2").
PLAIN_WORDS = {"=": "is", "!=": "is not", "in": "is", "~": "contains", "!~": "does not contain"}
SIGNS = {"=": "=", "!=": "≠", "in": "in", "~": "contains", "!~": "does not contain", "<": "<", "<=": "≤",
         ">": ">", ">=": "≥"}  # fmt: skip


@dataclass(frozen=True)
class Chip:
    """One condition of the query, as a chip: ``kind`` (tag, property, metric, search, or "" for a
    plain field, "query" for one a chip cannot say better than its text), then field, operator and
    value as shown; ``text`` is the condition as written, ``without`` the query without it."""

    kind: str
    field: str
    op: str
    value: str
    text: str
    without: str

    @property
    def label(self) -> str:
        return " ".join(part for part in (self.kind if self.kind not in ("", "query") else "", self.field, self.op,
                                          self.value) if part)  # fmt: skip


def chips(query: str) -> list[Chip]:
    """The query's conditions as chips (none for a query that does not parse: the page says why)."""
    try:
        found = run_query.conditions(query)
    except QueryError:
        return []
    texts = [text for text, _ in found]
    return [
        Chip(*_describe(node, text), text=text, without=" and ".join(texts[:i] + texts[i + 1 :]))
        for i, (text, node) in enumerate(found)
    ]


def _describe(node: run_query.Node, text: str) -> tuple[str, str, str, str]:
    negated = isinstance(node, run_query.Not)
    inner = node.item if negated else node
    if isinstance(inner, run_query.Compare | run_query.Has):
        kind, field = _field_words(inner.field)
        if isinstance(inner, run_query.Has):
            return kind, field, "is not set" if negated else "is set", ""
        words = PLAIN_WORDS if not kind and inner.op in PLAIN_WORDS else SIGNS
        op = words[inner.op]
        if negated:
            op = {"is": "is not", "=": "≠", "in": "not in", "contains": "does not contain"}.get(op, f"not {op}")
        value = " or ".join(inner.value) if isinstance(inner.value, tuple) else inner.value
        if isinstance(inner.value, tuple) and kind:
            value = ", ".join(inner.value)
        return kind, field, op, value
    if isinstance(node, run_query.Text):
        return "search", "", "", node.value
    if isinstance(node, run_query.And) and len(node.items) == 2:  # a range: (created >= a and created <= b)
        low, high = node.items
        if (
            isinstance(low, run_query.Compare)
            and isinstance(high, run_query.Compare)
            and low.field == high.field
            and low.op in (">", ">=")
            and high.op in ("<", "<=")
        ):
            kind, field = _field_words(low.field)
            return kind, field, "between", f"{low.value} and {high.value}"
    return "query", "", "", text


def _field_words(field: run_query.Field) -> tuple[str, str]:
    if field.key is None:
        return "", FIELD_LABELS.get(field.name, field.name)
    key = field.key if field.aggregate in (None, "last") else f"{field.key}.{field.aggregate}"
    return KEYED_KINDS[field.name], key


def with_condition(query: str, condition: str) -> str:
    """``query`` and ``condition``; an "or" at the query's top level is kept inside parentheses."""
    if not query.strip():
        return condition
    found = run_query.conditions(query)
    if len(found) == 1 and isinstance(found[0][1], run_query.Or):
        return f"({query.strip()}) and {condition}"
    return f"{query.strip()} and {condition}"


# --- "Add filter" ------------------------------------------------------------------------------------------

CHOICE_OPERATORS = (("in", "is"), ("not in", "is not"))
DATE_OPERATORS = ((">=", "on or after"), ("<=", "on or before"), ("between", "between"), ("=", "on"))
TEXT_OPERATORS = (("~", "contains"), ("=", "is"), ("!~", "does not contain"))
KEYED_OPERATORS = (("=", "="), ("!=", "≠"), ("~", "contains"), ("exists", "is set"), ("missing", "is not set"))
NUMBER_OPERATORS = (("<", "<"), ("<=", "≤"), (">", ">"), (">=", "≥"), ("between", "between"), ("=", "="))
AGGREGATES = (("last", "last value"), ("min", "minimum"), ("max", "maximum"))


@dataclass(frozen=True)
class FilterField:
    """A field "Add filter" offers: its name in the query language, its label, and its kind, which
    decides the operators and the value controls (``choice``: tick several; ``date``; ``text``;
    ``keyed``: a tag or property key and its value; ``metric``: a name, an aggregate and numbers)."""

    name: str
    label: str
    kind: str

    @property
    def operators(self) -> tuple[tuple[str, str], ...]:
        return {"choice": CHOICE_OPERATORS, "date": DATE_OPERATORS, "text": TEXT_OPERATORS,
                "keyed": KEYED_OPERATORS, "metric": NUMBER_OPERATORS}[self.kind]  # fmt: skip


FILTER_FIELDS = {
    field.name: field
    for field in (
        FilterField("status", "Status", "choice"),
        FilterField("experiment", "Experiment", "choice"),
        FilterField("target", "Compute target", "choice"),
        FilterField("submitted_by", "Submitted by", "choice"),
        FilterField("created", "Created", "date"),
        FilterField("started", "Started", "date"),
        FilterField("ended", "Ended", "date"),
        FilterField("name", "Name", "text"),
        FilterField("description", "Description", "text"),
        FilterField("tags", "Tag", "keyed"),
        FilterField("properties", "Property", "keyed"),
        FilterField("metrics", "Metric", "metric"),
    )
}
# The editor's own parameters: never part of the table's state (and left out of its links).
EDITOR_PARAMS = ("filter", "filter_key", "filter_agg", "filter_op", "filter_value", "filter_value_to", "filter_add",
                 "filter_editor", "filter_values")  # fmt: skip
CHOICES_SHOWN = 200


class FilterError(ValueError):
    """A filter that cannot be added; ``errors``: editor parameter -> message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors.values()))


@dataclass
class FilterEditor:
    """What the "Add filter" editor shows: the field chosen (None: not yet), what was typed, the
    values offered, and what was wrong with it."""

    field: FilterField | None = None
    key: str = ""
    aggregate: str = "last"
    op: str = ""
    values: tuple[str, ...] = ()
    value_to: str = ""
    choices: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()  # tag or property keys, metric names: suggestions
    suggestions: tuple[str, ...] = ()  # the values the key has (a tag's or a property's)
    errors: Mapping[str, str] | None = None
    aggregates = AGGREGATES

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> FilterEditor:
        field = FILTER_FIELDS.get(_one(params, "filter"))
        operators = dict(field.operators) if field else {}
        op = _one(params, "filter_op")
        return cls(
            field=field,
            key=_one(params, "filter_key"),
            aggregate=_one(params, "filter_agg") or "last",
            op=op if op in operators else (next(iter(operators), "")),
            values=tuple(_all(params, "filter_value")),
            value_to=_one(params, "filter_value_to"),
        )

    @property
    def value(self) -> str:
        return self.values[-1] if self.values else ""

    def offer(self, runs: QuerySet[Run], workspace: Any) -> FilterEditor:
        """The choices and key suggestions for the field, from ``runs`` (scoped by the caller to what
        the user may see)."""
        if self.field is None:
            return self
        if self.field.name == "status":
            self.choices = tuple(Run.Status.values)
        elif self.field.name == "experiment":
            names = Experiment.objects.filter(workspace=workspace).order_by("name").values_list("name", flat=True)
            self.choices = tuple(names[:CHOICES_SHOWN])
        elif self.field.name == "target":
            targets = runs.exclude(target="").order_by("target").values_list("target", flat=True).distinct()
            self.choices = tuple(targets[:CHOICES_SHOWN])
        elif self.field.name == "submitted_by":
            members = Membership.objects.filter(workspace=workspace).order_by("user__username")
            self.choices = tuple(members.values_list("user__username", flat=True)[:CHOICES_SHOWN])
        elif self.field.kind in ("keyed", "metric"):
            self.keys = tuple(tables.known_keys(runs, self.field.name)[0])
            self.suggestions = tuple(value_suggestions(runs, self.field.name, self.key))
        return self

    def condition(self) -> str:
        """The filter as one condition of the query language; raises ``FilterError`` naming the
        control that is wrong."""
        field = self.field
        if field is None:
            raise FilterError({"filter": "Choose a field to filter on"})
        if field.kind == "choice":
            return self._choice_condition(field)
        if field.kind in ("keyed", "metric") and not self.key:
            raise FilterError(
                {"filter_key": f"Enter the {field.label.lower()}'s {'name' if field.kind == 'metric' else 'key'}"}
            )
        if field.kind == "keyed":
            target = f"{field.name}.{literal(self.key)}"
            if self.op in ("exists", "missing"):
                return target if self.op == "exists" else f"not {target}"
            return f"{target} {self.op} {literal(self.value)}"
        if field.kind == "metric":
            if "," in self.key:
                raise FilterError({"filter_key": "A metric name has no commas"})
            return self._ordered(f"metrics.{_metric(self.key, self.aggregate)}", _finite, "below where")
        if field.kind == "date":
            return self._ordered(field.name, _date, "before")
        if not self.value:
            raise FilterError({"filter_value": f"Enter the text the {field.label.lower()} should match"})
        return f"{field.name} {self.op} {literal(self.value)}"

    def _ordered(self, target: str, read: Callable[[str, str], Any], before: str) -> str:
        """A comparison of a date or a number, or a range of them ("between") that must not end
        before it starts. ``read`` reads a control's text as a value that compares and is written
        as the query language writes it (``repr``)."""
        low = read(self.value, "filter_value")
        if self.op != "between":
            return f"{target} {self.op} {low!r}"
        high = read(self.value_to, "filter_value_to")
        if high < low:
            raise FilterError({"filter_value_to": f"The range ends ({high!r}) {before} it starts ({low!r})"})
        return f"({target} >= {low!r} and {target} <= {high!r})"

    def added_to(self, query: str) -> str:
        """``query`` with the filter added; raises ``FilterError`` for a filter that cannot be
        written, or that leaves no run to match beside the query's other conditions."""
        condition = self.condition()
        added = with_condition(query, condition)
        if problem := run_query.impossible_range(added):
            control = "filter_value_to" if " and " in condition and self.op == "between" else "filter_value"
            raise FilterError({control: problem[0].upper() + problem[1:]})
        return added

    def _choice_condition(self, field: FilterField) -> str:
        values = list(dict.fromkeys(self.values))
        if not values:
            raise FilterError({"filter_value": f"Choose at least one {field.label.lower()}"})
        if field.name == "status":
            wrong = [v for v in values if v not in Run.Status.values]
            if wrong:
                raise FilterError({"filter_value": f"{wrong[0]!r} is not a status ({', '.join(Run.Status.values)})"})
        if len(values) == 1:
            return f"{field.name} {'!=' if self.op == 'not in' else '='} {literal(values[0])}"
        condition = f"{field.name} in ({', '.join(literal(v) for v in values)})"
        return f"not {condition}" if self.op == "not in" else condition


def _one(params: Mapping[str, Any], name: str) -> str:
    values = _all(params, name)
    return values[-1] if values else ""


def _all(params: Mapping[str, Any], name: str) -> list[str]:
    values = params.getlist(name) if hasattr(params, "getlist") else [params.get(name, "")]
    return [str(v).strip() for v in values if str(v).strip()]


def _metric(name: str, aggregate: str) -> str:
    if aggregate not in dict(AGGREGATES):
        raise FilterError({"filter_agg": f"Choose one of {', '.join(dict(AGGREGATES).values())}"})
    if run_query.is_bare_word(name):  # "loss.min"; a name ending like an aggregate says .last too
        key = tables.metric_key(name, aggregate)
        return key.removeprefix("metrics.")
    if aggregate != "last":
        raise FilterError(
            {"filter_key": f"Only the last value of {name!r} can be filtered (its name has spaces or signs)"}
        )
    return quote(name)


def _finite(text: str, control: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise FilterError({control: f"Enter a number, not {text!r}" if text else "Enter a number"})
    return number


class _Day(dt.date):
    """A date that the query language reads back as written (2026-01-31, unquoted)."""

    def __repr__(self) -> str:
        return self.isoformat()


def _date(text: str, control: str) -> _Day:
    try:
        day = dt.date.fromisoformat(text)
        return _Day(day.year, day.month, day.day)
    except ValueError:
        raise FilterError(
            {control: f"Enter a valid date (2026-01-31), not {text!r}" if text else "Enter a date"}
        ) from None


def value_suggestions(runs: QuerySet[Run], kind: str, key: str) -> list[str]:
    """Values the tag or property ``key`` has on ``runs``, alphabetically, the first CHOICES_SHOWN."""
    if kind not in ("tags", "properties") or not key:
        return []
    model, _ = tables.KEY_MODELS[kind]
    values = model.objects.filter(run__in=runs, key=key).exclude(value=None).exclude(value="")
    return list(values.order_by("value").values_list("value", flat=True).distinct()[:CHOICES_SHOWN])
