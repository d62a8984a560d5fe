"""The runs page's filter chips and "Add filter" editor over HTTP (Django's test client): without
JavaScript a field is chosen with a button and the filter added by a redirect to the new URL; with
htmx the editor comes back alone, in place, when a filter is refused. Suggestions never show another
workspace's keys or values."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from runs.models import Run
from tests.conftest import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(workspace: Any, other_workspace: Any, alice: Any, charlie: Any) -> dict[str, Run]:
    made = {
        "vision": make_run(workspace, alice, "mnist", display_name="vision run", tags={"team": "vision"}),
        "nlp": make_run(workspace, alice, "mnist", display_name="nlp run", tags={"team": "nlp"}),
        "cifar": make_run(workspace, alice, "cifar", display_name="cifar run", tags={"team": "vision"}),
        # Another workspace's: its tag key and values must never be suggested to alice.
        "secret": make_run(other_workspace, charlie, "x", display_name="secret run", tags={"codename": "falcon"}),
    }
    made["nlp"].transition(Run.Status.FAILED)
    made["cifar"].transition(Run.Status.CANCELED)
    return made


def as_user(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def query_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["q"][0]


def test_chips_show_the_querys_conditions_and_each_removes_only_itself(client: Client, runs: Any, alice: Any) -> None:
    page = as_user(client, alice).get("/w/default/runs/", {"q": "run status in (Failed, Canceled)", "sort": "name"})
    assertContains(page, '<span class="chip-value">Failed or Canceled</span>')
    assertContains(page, 'aria-label="Remove the filter Status is Failed or Canceled"')
    assertContains(page, "nlp run")
    assertNotContains(page, "vision run")
    # The chip's × keeps the rest of the state (here the sort) and the other condition.
    assertContains(page, 'href="?q=run&amp;sort=name"')
    assertContains(page, 'href="?q=status+in+%28Failed%2C+Canceled%29&amp;sort=name"')


def test_without_javascript_a_field_is_chosen_then_the_filter_added(client: Client, runs: Any, alice: Any) -> None:
    as_user(client, alice)
    chosen = client.get("/w/default/runs/", {"q": "run", "filter": "status"})
    assert chosen.status_code == 200
    assertContains(chosen, '<details class="add-filter" id="add-filter" open>')
    assertContains(chosen, 'name="filter_value" value="Canceled"')  # a box to tick per status
    added = client.get(
        "/w/default/runs/",
        {"q": "run", "sort": "name", "filter": "status", "filter_op": "in", "filter_value": ["Failed", "Canceled"],
         "filter_add": "1"},
    )  # fmt: skip
    assert added.status_code == 302
    assert query_of(added["Location"]) == "run and status in (Failed, Canceled)"
    assert parse_qs(urlsplit(added["Location"]).query)["sort"] == ["name"]
    assert "filter" not in added["Location"]  # the editor's own parameters are not state
    page = client.get(added["Location"])
    assertContains(page, "cifar run")
    assertNotContains(page, "vision run")


def test_a_refused_filter_keeps_what_was_typed_and_names_the_control(client: Client, runs: Any, alice: Any) -> None:
    params = {"q": "created >= 2026-03-01", "filter": "created", "filter_op": "<=", "filter_value": "2026-02-01",
              "filter_add": "1"}  # fmt: skip
    page = as_user(client, alice).get("/w/default/runs/", params)
    assert page.status_code == 400
    assertContains(page, "No run can match both created &gt;= 2026-03-01 and created &lt;= 2026-02-01", status_code=400)
    assertContains(page, 'name="filter_value" value="2026-02-01" aria-label="Created date" aria-invalid="true"',
                   status_code=400)  # fmt: skip
    # With htmx, the editor alone comes back in its own place, and the URL stays as it was.
    again = client.get("/w/default/runs/", params, headers={"HX-Request": "true", "HX-Target": "runs-table"})
    assert again.status_code == 400
    assert again["HX-Retarget"] == "#filter-editor"
    assert again["HX-Reswap"] == "outerHTML"
    assert again["HX-Push-Url"] == "false"
    assert again.content.decode().startswith('<div id="filter-editor"')


def test_htmx_asks_for_the_editor_of_the_field_chosen(client: Client, runs: Any, alice: Any) -> None:
    editor = as_user(client, alice).get(
        "/w/default/runs/", {"filter_editor": "1", "filter": "tags"}, headers={"HX-Request": "true"}
    )
    assert editor.status_code == 200
    html = editor.content.decode()
    assert html.startswith('<div id="filter-editor"')
    assert '<option value="team"></option>' in html  # the workspace's tag keys, suggested
    assert "codename" not in html  # never another workspace's


def test_value_suggestions_are_the_keys_values_in_runs_the_user_can_see(client: Client, runs: Any, alice: Any) -> None:
    as_user(client, alice)
    values = client.get("/w/default/runs/", {"filter_values": "1", "filter": "tags", "filter_key": "team"})
    assert values.content.decode() == '<option value="nlp"></option><option value="vision"></option>'
    hidden = client.get("/w/default/runs/", {"filter_values": "1", "filter": "tags", "filter_key": "codename"})
    assert hidden.content.decode() == ""


def test_a_chip_escapes_what_the_query_says(client: Client, runs: Any, alice: Any) -> None:
    page = as_user(client, alice).get("/w/default/runs/", {"q": 'tags.team = "<b>x</b>"'})
    assertContains(page, '<span class="chip-value">&lt;b&gt;x&lt;/b&gt;</span>')
    assertNotContains(page, "<b>x</b>")


def test_the_table_answered_to_htmx_brings_its_chips(client: Client, runs: Any, alice: Any) -> None:
    table = as_user(client, alice).get(
        "/w/default/runs/", {"q": "status = Failed"}, headers={"HX-Request": "true", "HX-Target": "runs-table"}
    )
    html = table.content.decode().strip()
    assert html.startswith('<div id="runs-table" data-q="status = Failed">')
    assert '<div id="filter-chips" class="filter-chips" hx-swap-oob="true"' in html
    assert '<span class="chip-value">Failed</span>' in html
