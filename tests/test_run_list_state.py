"""RunListState: the runs table's state read from and written to URL parameters (no database)."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import QueryDict

from studio.run_list_state import RunListState, StateError

FULL = {
    "q": "(resnet or vit) and status in (Failed, Canceled) and metrics.loss.min < 0.2",
    "sort": "-metrics.loss.min",
    "cols": "name,status,tags.team,metrics.loss.min",
    "density": "compact",
    "widths": "name:240,metrics.loss.min:90",
    "children": "1",
    "compare": "a_1,b_2",
}
# The filter controls of earlier versions, still in old links and saved views.
OLD_FILTERS = {
    "q": "resnet or vit",
    "status": ["Failed", "Canceled"],
    "experiment": ["mnist", "cifar 10"],
    "target": "gpu",
    "user": "alice",
    "created_from": "2026-01-01",
    "created_to": "2026-01-31",
    "tag": "team=vision",
    "prop": "lr=0.1",
    "metric": "loss",
    "metric_min": "0.1",
    "metric_max": "0.5",
}


def test_it_round_trips_every_parameter() -> None:
    state = RunListState.from_params(FULL)
    assert state.to_params() == FULL
    assert RunListState.from_params(state.to_params()) == state
    # The same state from a URL.
    assert RunListState.from_params(QueryDict(state.urlencode())) == state


def test_empty_and_absent_are_the_same() -> None:
    blank = dict.fromkeys(FULL, "") | {"status": ["", " "], "experiment": [], "cols": " , ", "children": "0"}
    assert RunListState.from_params(blank) == RunListState.from_params({}) == RunListState()
    assert RunListState.from_params(blank).to_params() == {}
    assert RunListState().query() == ""


def test_it_ignores_what_is_not_state() -> None:
    state = RunListState.from_params({"q": "x", "name": "My view", "csrfmiddlewaretoken": "t", "shared": "1"})
    assert state.to_params() == {"q": "x"}
    editing = {"q": "x", "filter": "status", "filter_op": "in", "filter_value": "Failed"}  # the "Add filter" editor
    assert RunListState.from_params(editing).to_params() == {"q": "x"}


def test_old_filter_controls_are_read_as_conditions_of_the_query() -> None:
    state = RunListState.from_params(OLD_FILTERS)
    assert state.query() == (
        '(resnet or vit) and status in (Failed, Canceled) and experiment in (mnist, "cifar 10") and '
        "target = gpu and submitted_by = alice and created >= 2026-01-01 and created <= 2026-01-31 and "
        "tags.team = vision and properties.lr = 0.1 and metrics.loss >= 0.1 and metrics.loss <= 0.5"
    )
    assert state.to_params() == {"q": state.query()}  # written back as the query alone
    assert RunListState.from_params(state.to_params()) == state
    one = RunListState.from_params({"status": "failed", "experiment": "mnist"})
    assert one.query() == "status = Failed and experiment = mnist"  # a status is named as the language names it
    assert RunListState.from_params({"q": "resnet"}).query() == "resnet"  # the text alone stays as typed
    assert RunListState.from_params({"metric": "acc"}).query() == "metrics.acc"  # the metric exists


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"cols": "name,bogus"}, "cols", "unknown column 'bogus'"),
        ({"sort": "-colour"}, "sort", "cannot sort by 'colour'"),
        ({"sort": "name,(x"}, "sort", "cannot sort by '(x'"),
        ({"q": "tags.team = (vision"}, "q", ""),
        ({"q": 'name = "open'}, "q", "unclosed quote"),
        ({"q": "status = Exploded"}, "q", "'Exploded' is not a status"),
        ({"q": "metrics.loss ~ 3"}, "q", "compares numbers"),
        ({"q": "created > yesterday"}, "q", "takes a date"),
        ({"status": ["Failed", "Exploded"]}, "status", "Select a valid choice: 'Exploded' is not a status"),
        ({"created_from": "2026-02-30"}, "created_from", "Enter a valid date"),
        (
            {"q": "created >= 2026-03-01 and created <= 2026-02-01"},
            "q",
            "No run can match both created >= 2026-03-01 and created <= 2026-02-01; is the range the wrong way round?",
        ),
        ({"q": "metrics.loss > 0.5 metrics.loss < 0.1"}, "q", "No run can match both metrics.loss > 0.5 and"),
        ({"q": "(number > 3 and number < 3)"}, "q", "No run can match (number > 3 and number < 3)"),
        ({"created_from": "2026-03-01", "created_to": "2026-02-01"}, "q", "No run can match both"),
        ({"metric": "loss", "metric_min": "0.5", "metric_max": "0.1"}, "q", "is the range the wrong way round"),
        ({"metric": "loss", "metric_min": "nan"}, "metric_min", "Enter a number"),
        ({"metric_max": "3"}, "metric", "name the metric"),
        ({"page": "0"}, "page", "whole number from 1"),
        ({"density": "cosy"}, "density", "rows are comfortable or compact, not 'cosy'"),
        ({"widths": "name:wide"}, "widths", "a width is column:pixels, 40 to 2000 (name:240), not 'name:wide'"),
        ({"widths": "name:5"}, "widths", "not 'name:5'"),
        ({"widths": "name"}, "widths", "not 'name'"),
        ({"q": "x" * 2001}, "q", "at most 2000 characters"),
        ({"compare": ",".join(f"r{i}" for i in range(51))}, "compare", "at most 50 runs"),
    ],
)
def test_it_refuses_a_bad_field_with_a_message_naming_it(params: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(StateError) as refused:
        RunListState.from_params(params)
    assert list(refused.value.errors) == [field]
    assert words in refused.value.errors[field]
    assert str(refused.value).startswith(f"{field}: ")


def test_a_density_said_is_kept_as_said() -> None:
    # "comfortable" is what none means, but a view that says it keeps saying it.
    assert RunListState.from_params({"density": "Comfortable"}).to_params() == {"density": "comfortable"}
    assert RunListState.from_params({"density": "compact"}).query() == ""  # not a filter


def test_a_width_dragged_again_keeps_its_last_value() -> None:
    state = RunListState.from_params({"widths": "name:240, status:90,name:300"})
    assert state.widths == (("status", 90), ("name", 300))
    assert state.to_params() == {"widths": "status:90,name:300"}
    # A tag key may hold a colon: the width is after the last one.
    assert RunListState.from_params({"widths": "tags.a:b:120"}).widths == (("tags.a:b", 120),)


def test_it_names_every_bad_field_at_once() -> None:
    with pytest.raises(StateError) as refused:
        RunListState.from_params({"cols": "nope", "sort": "nope", "q": "(", "created_to": "x"})
    assert set(refused.value.errors) == {"cols", "sort", "q", "created_to"}


def test_a_range_of_one_day_or_one_value_holds() -> None:
    for query in (
        "created >= 2026-01-05 and created <= 2026-01-05",
        "metrics.m >= 1 and metrics.m <= 1",
        "metrics.m > 1 and metrics.m.min < 0",  # two different values: the last and the minimum
        "created > 2026-01-05T10:00 and created < 2026-01-05T10:01",
        "number > 3 or number < 2",
    ):
        assert RunListState.from_params({"q": query}).query() == query
