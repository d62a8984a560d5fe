"""Searching with child runs: "Include child runs" with a search or filter lists every matching run
at any depth, flat, each child marked with its parent; without it, a search whose matches are all
child runs says so."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_django.asserts import assertContains, assertNotContains

from runs.models import Run, RunSpec
from tests.conftest import make_run

pytestmark = pytest.mark.django_db


def child_of(parent: Run, user: Any, **spec: Any) -> Run:
    (child,) = parent.experiment.create_runs([RunSpec(**spec)], by=user, parent=parent)
    return child


@pytest.fixture
def family(workspace: Any, alice: Any) -> dict[str, Run]:
    sweep = make_run(workspace, alice, "mnist", display_name="lr sweep")
    trial = child_of(sweep, alice, display_name="trial lr=0.1", tags={"lr": "0.1"})
    deep = child_of(trial, alice, display_name="fold 3 of trial", tags={"fold": "3"})
    other = make_run(workspace, alice, "mnist", display_name="baseline")
    return {"sweep": sweep, "trial": trial, "deep": deep, "other": other}


def as_user(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def names(response: Any) -> list[str]:
    pattern = r'<td class="col-name"[^>]*>(?:<a class="expander".*?</a> )?<a href="[^"]+">([^<]+)</a>'
    return re.findall(pattern, response.content.decode())


def test_a_search_that_matches_only_child_runs_says_so(client: Client, family: dict[str, Run], alice: Any) -> None:
    response = as_user(client, alice).get("/w/default/runs/", {"q": "trial", "cols": "name,status"})
    assertContains(response, "No runs match.")
    assertContains(response, "2 child runs match;")
    assertContains(response, 'href="?q=trial&amp;cols=name%2Cstatus&amp;children=1">include child runs</a> to see them')
    one = client.get("/w/default/runs/", {"tag": "fold"})
    assertContains(one, "1 child run matches;")
    assertContains(one, "to see it.")
    # Nothing at all matches: no count to show.
    assertNotContains(client.get("/w/default/runs/", {"q": "nothing-like-this"}), "hidden-children")


def test_including_child_runs_lists_every_match_at_any_depth_flat(
    client: Client, family: dict[str, Run], alice: Any
) -> None:
    response = as_user(client, alice).get("/w/default/runs/", {"q": "trial", "children": "1", "cols": "name,status"})
    assert names(response) == ["fold 3 of trial", "trial lr=0.1"]  # newest first, both depths
    body = response.content.decode()
    trial = family["trial"]  # the parent of "fold 3 of trial"
    assert f'child of <a href="/w/default/runs/{family["sweep"].run_id}/">lr sweep</a>' in body
    assert f'child of <a href="/w/default/runs/{trial.run_id}/">trial lr=0.1</a>' in body
    assert body.count('class="child-match"') == 2
    assert "expander" not in body  # flat: a run's children that match are rows of their own
    assertContains(response, '<span id="run-count">2</span>', html=True)
    # A parent that matches is listed as any top-level run, with no marker.
    both = client.get("/w/default/runs/", {"q": "lr", "children": "1", "cols": "name"})
    assert names(both) == ["trial lr=0.1", "lr sweep"]
    assert both.content.decode().count("child of") == 1


def test_filters_count_as_a_search(client: Client, family: dict[str, Run], alice: Any) -> None:
    response = as_user(client, alice).get("/w/default/runs/", {"tag": "lr=0.1", "children": "1", "cols": "name"})
    assert names(response) == ["trial lr=0.1"]
    assertContains(response, "child of")


def test_without_a_search_children_stay_nested(client: Client, family: dict[str, Run], alice: Any) -> None:
    response = as_user(client, alice).get("/w/default/runs/", {"children": "1", "cols": "name"})
    assert names(response) == ["baseline", "lr sweep"]
    assertContains(response, 'aria-label="Show the 1 child runs"')
    assertNotContains(response, "child of")


def test_htmx_gets_the_flat_table_and_members_only_see_it(
    client: Client, family: dict[str, Run], bob: Any, charlie: Any, other_workspace: Any
) -> None:
    params = {"q": "trial", "children": "1", "cols": "name"}
    assert client.get("/w/default/runs/", params).status_code == 302
    assert as_user(client, charlie).get("/w/default/runs/", params).status_code == 404
    fragment = as_user(client, bob).get("/w/default/runs/", params, headers={"HX-Request": "true"})
    assert b"<html" not in fragment.content
    assert names(fragment) == ["fold 3 of trial", "trial lr=0.1"]


@pytest.mark.parametrize("sort", ["-created", "-metrics.loss"])
def test_the_flat_table_takes_a_constant_number_of_queries(
    client: Client, workspace: Any, alice: Any, sort: str
) -> None:
    as_user(client, alice)
    params = {"q": "match", "children": "1", "cols": "name,status,tags,metrics.loss,properties.p", "sort": sort}

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/w/default/runs/", params).status_code == 200
        return len(captured)

    def add(n: int) -> None:
        for i in range(n):
            parent = make_run(workspace, alice, f"e{i % 3}", display_name=f"match parent {i}")
            child = child_of(parent, alice, display_name=f"match child {i}", tags={"t": str(i)}, properties={"p": "1"})
            child.log_metrics([{"name": "loss", "value": i}])

    add(2)
    queries()
    few = queries()
    add(25)
    assert queries() == few


def test_the_hint_costs_one_count_and_only_when_nothing_is_shown(
    client: Client, family: dict[str, Run], alice: Any
) -> None:
    as_user(client, alice)

    def counts_of_children(q: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            client.get("/w/default/runs/", {"q": q, "cols": "name"})
        return sum('"parent_id" IS NOT NULL' in query["sql"] for query in captured.captured_queries)

    assert counts_of_children("trial") == 1
    assert counts_of_children("baseline") == 0  # a top-level run matches: no hint, no count
