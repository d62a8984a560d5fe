"""Filters as chips (studio/run_filters.py): each chip is a condition of the query, and "Add filter"
writes one condition of the query language from a field, an operator and values."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import QueryDict

from runs import query as run_query
from studio.run_filters import Chip, FilterEditor, FilterError, chips, with_condition

SHORT = {"f": "filter", "op": "filter_op", "v": "filter_value", "to": "filter_value_to", "key": "filter_key",
         "agg": "filter_agg"}  # fmt: skip


def _editor(**params: Any) -> FilterEditor:
    """The editor as the form sends it: ``_editor(f="status", v=["Failed", "Canceled"])``."""
    query = QueryDict(mutable=True)
    for name, value in params.items():
        query.setlist(SHORT.get(name, name), value if isinstance(value, list) else [value])
    return FilterEditor.from_params(query)


def test_each_condition_of_the_query_is_a_chip_that_removes_itself() -> None:
    query = 'resnet status in (Failed, Canceled) and metrics.loss.min < 0.2 and tags.team = vision and (a or "b c")'
    found = chips(query)
    assert [chip.label for chip in found] == [
        "search resnet",
        "Status is Failed or Canceled",
        "metric loss.min < 0.2",
        "tag team = vision",
        '(a or "b c")',
    ]
    assert found[1] == Chip(
        kind="",
        field="Status",
        op="is",
        value="Failed or Canceled",
        text="status in (Failed, Canceled)",
        without='resnet and metrics.loss.min < 0.2 and tags.team = vision and (a or "b c")',
    )
    assert found[4].kind == "query"
    for chip in found:  # what is left is still one valid query, without that condition
        run_query.parse(chip.without)
        assert chip.text not in chip.without


@pytest.mark.parametrize(
    ("query", "label"),
    [
        ("status != Running", "Status is not Running"),
        ("not status in (Failed, Canceled)", "Status is not Failed or Canceled"),
        ("properties.lr = 0.01", "property lr = 0.01"),
        ("tags.reviewed", "tag reviewed is set"),
        ("not tags.reviewed", "tag reviewed is not set"),
        ("name ~ bert", "Name contains bert"),
        ("created >= 2026-01-01", "Created ≥ 2026-01-01"),
        ("(created >= 2026-01-01 and created <= 2026-01-31)", "Created between 2026-01-01 and 2026-01-31"),
        ("(metrics.acc.max > 0.5 and metrics.acc.max < 0.9)", "metric acc.max between 0.5 and 0.9"),
        ('tags."data set" = "image net"', "tag data set = image net"),
        ("a or b", "a or b"),
    ],
)
def test_a_chip_says_its_condition_in_words(query: str, label: str) -> None:
    assert [chip.label for chip in chips(query)] == [label]


def test_a_query_that_does_not_parse_has_no_chips() -> None:
    assert chips("status = (") == []
    assert chips("") == []


def test_a_condition_is_added_with_and_keeping_an_or_whole() -> None:
    assert with_condition("", "status = Failed") == "status = Failed"
    assert with_condition("resnet", "status = Failed") == "resnet and status = Failed"
    assert with_condition("a or b", "status = Failed") == "(a or b) and status = Failed"
    assert with_condition("(a or b) c", "d") == "(a or b) c and d"


@pytest.mark.parametrize(
    ("params", "condition"),
    [
        ({"f": "status", "v": ["Failed", "Canceled"]}, "status in (Failed, Canceled)"),
        ({"f": "status", "v": "Failed"}, "status = Failed"),
        ({"f": "status", "op": "not in", "v": "Running"}, "status != Running"),
        ({"f": "status", "op": "not in", "v": ["Failed", "Queued"]}, "not status in (Failed, Queued)"),
        ({"f": "experiment", "v": ["mnist", "cifar 10"]}, 'experiment in (mnist, "cifar 10")'),
        ({"f": "submitted_by", "v": "alice"}, "submitted_by = alice"),
        ({"f": "created", "op": ">=", "v": "2026-01-05"}, "created >= 2026-01-05"),
        (
            {"f": "created", "op": "between", "v": "2026-01-05", "to": "2026-02-01"},
            "(created >= 2026-01-05 and created <= 2026-02-01)",
        ),
        ({"f": "name", "v": "bert base"}, 'name ~ "bert base"'),
        ({"f": "tags", "key": "team", "op": "=", "v": "vision"}, "tags.team = vision"),
        ({"f": "tags", "key": "my team", "op": "~", "v": "vis"}, 'tags."my team" ~ vis'),
        ({"f": "tags", "key": "reviewed", "op": "exists"}, "tags.reviewed"),
        ({"f": "properties", "key": "lr", "op": "missing"}, "not properties.lr"),
        ({"f": "properties", "key": "lr", "v": "0.01"}, "properties.lr = 0.01"),
        ({"f": "metrics", "key": "loss", "agg": "min", "v": "0.2"}, "metrics.loss.min < 0.2"),
        ({"f": "metrics", "key": "loss", "op": ">=", "v": "1e-3"}, "metrics.loss >= 0.001"),
        ({"f": "metrics", "key": "acc.max", "v": "1"}, "metrics.acc.max.last < 1.0"),
        (
            {"f": "metrics", "key": "acc", "agg": "max", "op": "between", "v": "0.5",
             "to": "0.9"},
            "(metrics.acc.max >= 0.5 and metrics.acc.max <= 0.9)",
        ),
    ],
)  # fmt: skip
def test_add_filter_writes_one_condition_of_the_query_language(params: dict[str, Any], condition: str) -> None:
    written = _editor(**params).condition()
    assert written == condition
    assert len(run_query.conditions(written)) == 1  # one chip
    assert len(chips(written)) == 1


@pytest.mark.parametrize(
    ("params", "control", "message"),
    [
        ({}, "filter", "Choose a field to filter on"),
        ({"f": "status"}, "filter_value", "Choose at least one status"),
        ({"f": "status", "v": "Exploded"}, "filter_value", "'Exploded' is not a status"),
        ({"f": "created", "v": "2026-02-30"}, "filter_value", "Enter a valid date (2026-01-31)"),
        ({"f": "created", "op": "between", "v": "2026-03-01", "to": "2026-02-01"},
         "filter_value_to", "The range ends (2026-02-01) before it starts (2026-03-01)"),
        ({"f": "metrics", "v": "1"}, "filter_key", "Enter the metric's name"),
        ({"f": "metrics", "key": "loss", "v": "nan"}, "filter_value", "Enter a number, not 'nan'"),
        ({"f": "metrics", "key": "loss", "op": "between", "v": "2", "to": "1"},
         "filter_value_to", "The range ends (1.0) below where it starts (2.0)"),
        ({"f": "metrics", "key": "loss", "agg": "median", "v": "1"}, "filter_agg", "Choose one of"),
        ({"f": "tags", "v": "x"}, "filter_key", "Enter the tag's key"),
        ({"f": "name"}, "filter_value", "Enter the text the name should match"),
    ],
)  # fmt: skip
def test_a_filter_that_cannot_be_written_names_the_control(params: dict[str, Any], control: str, message: str) -> None:
    with pytest.raises(FilterError) as refused:
        _editor(**params).condition()
    assert list(refused.value.errors) == [control]
    assert message in refused.value.errors[control]


def test_a_filter_that_leaves_nothing_to_match_beside_the_query_is_refused() -> None:
    editor = _editor(f="created", op="<=", v="2026-02-01")
    assert editor.added_to("resnet") == "resnet and created <= 2026-02-01"
    with pytest.raises(FilterError) as refused:
        editor.added_to("created >= 2026-03-01")
    said = "No run can match both created >= 2026-03-01 and created <= 2026-02-01; is the range the wrong way round?"
    assert refused.value.errors == {"filter_value": said}


def test_an_unknown_operator_falls_back_to_the_fields_first() -> None:
    assert _editor(f="status", op="<", v="Failed").op == "in"
    assert _editor(f="nonsense").field is None
