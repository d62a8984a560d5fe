"""The column picker of the runs table: the shown columns with links that remove or move them, an
"Add column" form whose choices (the workspace's tag keys, property keys and metric names) load only
when asked for, and the URL as the whole state."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_django.asserts import assertContains, assertNotContains

from runs.models import Run, RunSpec
from studio import tables
from studio.models import SavedView
from tests.conftest import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(workspace: Any, alice: Any) -> list[Run]:
    first = make_run(workspace, alice, "mnist", display_name="first", tags={"team": "vision"}, properties={"git": "a1"})
    first.log_metrics([{"name": "loss", "value": v} for v in (0.9, 0.3, 0.5)])
    second = make_run(workspace, alice, "cifar", display_name="second", tags={"dataset": "cifar10", "team": "nlp"})
    second.log_metrics([{"name": "accuracy", "value": 0.7}])
    (child,) = second.experiment.create_runs([RunSpec(tags={"fold": "1"})], by=alice, parent=second)
    child.log_metrics([{"name": "val_loss", "value": 1.5}])
    return [first, second, child]


@pytest.fixture
def secrets(other_workspace: Any, charlie: Any) -> Run:
    run = make_run(other_workspace, charlie, "secret", tags={"codename": "x"}, properties={"budget": "1"})
    run.log_metrics([{"name": "secret_metric", "value": 1}])
    return run


def as_user(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def choices(client: Client, url: str = "/w/default/runs/") -> tuple[Any, list[str]]:
    response = client.get(url, {"column_choices": "1"}, headers={"HX-Request": "true", "HX-Target": "column-choices"})
    return response, re.findall(r'<option value="([^"]+)"', response.content.decode())


def link(response: Any, label: str) -> dict[str, list[str]]:
    """The query of the picker's link named ``label``; its href and hx-get are the same URL."""
    pattern = rf'<a href="([^"]*)" hx-get="([^"]*)" aria-label="{re.escape(label)}"[ >]'
    match = re.search(pattern, response.content.decode())
    assert match, f"no link {label!r}"
    assert match.group(1) == match.group(2)
    return parse_qs(urlsplit(match.group(1).replace("&amp;", "&")).query)


def test_the_shown_columns_have_links_that_remove_and_move_them(client: Client, runs: list[Run], alice: Any) -> None:
    response = as_user(client, alice).get("/w/default/runs/", {"q": "first", "cols": "name,status,tags.team"})
    assert link(response, "Move Tag team left") == {"q": ["first"], "cols": ["name,tags.team,status"]}
    assert link(response, "Move Status right")["cols"] == ["name,tags.team,status"]
    assert link(response, "Remove Status")["cols"] == ["name,tags.team"]
    assertNotContains(response, 'aria-label="Move Display name left"')  # nowhere to go
    assertNotContains(response, 'aria-label="Move Status left"')  # the name is pinned: first, always
    assertNotContains(response, 'aria-label="Move Tag team right"')
    only_one = client.get("/w/default/runs/", {"cols": "name"})
    assertNotContains(only_one, 'aria-label="Remove Display name"')  # no columns at all would mean the defaults
    # Following a link (as a browser without JavaScript does) shows the table with the new columns.
    moved = client.get("/w/default/runs/", link(response, "Move Tag team left"))
    body = moved.content.decode()
    assert body.index('<td class="col-tagsteam"') < body.index('<td class="col-status">')


def test_a_pinned_column_is_drawn_beside_the_name_and_stays_put(client: Client, runs: list[Run], alice: Any) -> None:
    response = as_user(client, alice).get("/w/default/runs/", {"cols": "status,tags.team,name", "sort": "name"})
    assert link(response, "Pin Tag team") == {"cols": ["status,tags.team,name"], "sort": ["name"], "pin": ["tags.team"]}
    assertNotContains(response, 'aria-label="Pin Display name"')  # always pinned
    pinned = client.get("/w/default/runs/", link(response, "Pin Tag team"))
    body = pinned.content.decode()
    # Drawn first, the name then the pinned column, whatever their places in ``cols``.
    assert (
        body.index('<td class="col-name"')
        < body.index('<td class="col-tagsteam"')
        < body.index('<td class="col-status">')
    )
    assert (
        "#runs-table .col-name{position:sticky;z-index:1}#runs-table .col-tagsteam{position:sticky;z-index:1}" in body
    )
    assert "#runs-table .col-tagsteam{box-shadow:inset -1px 0 0 var(--line-strong)}" in body  # the group's edge
    assert "pin" not in link(pinned, "Unpin Tag team")  # ?pin= (blank)
    assert '<input type="hidden" name="pin" value="tags.team">' in body  # the state form keeps it
    refused = client.get("/w/default/runs/", {"cols": "name,status", "pin": "tags.team"})
    assert refused.status_code == 400
    assertContains(refused, "only a shown column can be pinned, not &#x27;tags.team&#x27;", status_code=400)


def test_adding_a_column_redirects_to_the_url_of_the_new_state(client: Client, runs: list[Run], alice: Any) -> None:
    as_user(client, alice)
    # The form sends every state field, most of them empty, and ``add``.
    form = {"q": "first", "sort": "-created", "cols": "name,status", "children": "", "status": ""}
    form["add"] = "metrics.loss.min"
    response = client.get("/w/default/runs/", form)
    assert response.status_code == 302
    assert response["Location"] == "/w/default/runs/?q=first&sort=-created&cols=name,status,metrics.loss.min"
    page = client.get(response["Location"])
    assertContains(page, '<td class="col-metricslossmin" title="0.3" data-exact="0.3">0.3</td>', html=True)
    # No columns in the URL: the default ones, then the new one; a column already shown is not added twice.
    defaults = client.get("/w/default/runs/", {"cols": "", "add": "tags.team"})
    assert defaults["Location"].endswith("cols=" + ",".join([*tables.DEFAULT_COLUMNS, "tags.team"]))
    twice = client.get("/w/default/runs/", {"cols": "name,status", "add": "status"})
    assert twice["Location"] == "/w/default/runs/?cols=name,status"
    # htmx follows the redirect (keeping its HX-Request header) and pushes the URL it lands on.
    htmx = client.get("/w/default/runs/", form, headers={"HX-Request": "true"}, follow=True)
    assert b"<html" not in htmx.content and b"col-metricslossmin" in htmx.content
    # An unknown column lands on the page that says what is wrong.
    bad = client.get("/w/default/runs/", {"cols": "name", "add": "shoe_size"}, follow=True)
    assertContains(bad, "unknown column &#x27;shoe_size&#x27;", status_code=400)


@pytest.fixture(params=["from the runs", "through the key index"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of finding the keys: from the runs (few of them), or through the keys' index (many)."""
    if request.param == "through the key index":
        monkeypatch.setattr(tables, "FEW_RUNS", 0)
    return request.param


def test_the_choices_come_from_the_workspace_and_load_only_when_asked_for(
    client: Client, runs: list[Run], secrets: Run, alice: Any, way: str
) -> None:
    as_user(client, alice)
    page = client.get("/w/default/runs/", {"cols": "name,status"})
    # The page itself offers only the plain columns, and asks for the rest when the picker opens.
    assertContains(page, 'hx-get="/w/default/runs/?column_choices=1" hx-trigger="toggle once from:closest details"\n')
    assertNotContains(page, '<option value="tags.team"')
    response, offered = choices(client)
    assert b"<html" not in response.content
    assert offered == [
        *tables.PLAIN_COLUMNS,
        "tags.dataset", "tags.fold", "tags.team",  # a child run's keys too
        "properties.git",
        "metrics.accuracy", "metrics.accuracy.min", "metrics.accuracy.max",
        "metrics.loss", "metrics.loss.min", "metrics.loss.max",
        "metrics.val_loss", "metrics.val_loss.min", "metrics.val_loss.max",
    ]  # fmt: skip
    assertContains(response, '<option value="metrics.loss.min">loss (min)</option>', html=True)
    for secret in ("codename", "budget", "secret_metric"):  # another workspace's keys never show
        assert not any(secret in key for key in offered)
    # An experiment's page offers its own runs' keys.
    _, mnist = choices(client, "/w/default/experiments/mnist/")
    assert "tags.team" in mnist and "tags.dataset" not in mnist and "metrics.accuracy" not in mnist


def test_without_javascript_a_link_opens_the_picker_with_every_choice(
    client: Client, runs: list[Run], alice: Any
) -> None:
    page = as_user(client, alice).get("/w/default/runs/", {"q": "first", "cols": "name,tags.team"})
    assertContains(page, 'href="?q=first&amp;cols=name%2Ctags.team&amp;column_choices=1#column-picker"')
    opened = client.get("/w/default/runs/", {"q": "first", "cols": "name,tags.team", "column_choices": "1"})
    body = opened.content.decode()
    assert '<details class="menu column-picker" id="column-picker" open>' in body
    assert '<option value="tags.team" disabled>team</option>' in body  # already shown
    assert '<option value="metrics.loss.min">loss (min)</option>' in body
    assert 'name="add"' in body and '<input type="hidden" name="cols" value="name,tags.team">' in body
    assertContains(opened, "first")  # the table is there too
    # The picker's links keep the choices open; with JavaScript they ask for the table, and get it.
    assert link(opened, "Remove Tag team") == {"q": ["first"], "cols": ["name"], "column_choices": ["1"]}
    table = client.get("/w/default/runs/", link(opened, "Remove Tag team"), headers={"HX-Request": "true"})
    assert b'id="runs-table"' in table.content and b"<option" not in table.content


def test_the_choices_are_capped(
    client: Client, workspace: Any, alice: Any, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    make_run(workspace, alice, tags={f"key{i}": None for i in range(5)} | {"a,b": None})
    monkeypatch.setattr(tables, "CHOICES_LIMIT", 3)
    response, offered = choices(as_user(client, alice))
    assert [key for key in offered if key.startswith("tags.")] == ["tags.key0", "tags.key1"]  # "a,b" cannot be a column
    assertContains(response, '<optgroup label="Tags (the first 2)">')


def test_the_choices_are_for_members_only(
    client: Client, runs: list[Run], bob: Any, charlie: Any, other_workspace: Any
) -> None:
    anonymous = client.get("/w/default/runs/", {"column_choices": "1"}, headers={"HX-Request": "true"})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert choices(as_user(client, charlie))[0].status_code == 404
    response, offered = choices(as_user(client, bob))  # a Reader reads
    assert response.status_code == 200 and "tags.team" in offered


def test_the_choices_take_the_same_queries_however_many_keys(
    client: Client, workspace: Any, alice: Any, way: str
) -> None:
    as_user(client, alice)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert choices(client)[0].status_code == 200
        return len(captured)

    make_run(workspace, alice, tags={"a": None}, properties={"p": "1"})
    few = queries()
    for i in range(20):
        run = make_run(workspace, alice, tags={f"t{i}": None}, properties={f"p{i}": "1"})
        run.log_metrics([{"name": f"m{i}", "value": i}])
    assert queries() == few


def test_htmx_table_responses_bring_the_rest_of_the_state_along(client: Client, runs: list[Run], alice: Any) -> None:
    response = as_user(client, alice).get(
        "/w/default/runs/", {"q": "first", "sort": "name", "cols": "name,tags.team"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    # The picker's list of columns, the state form's hidden fields and the saved-view forms' state, out of band.
    assert '<ol id="column-list" class="column-list" aria-label="Shown columns, in order" hx-swap-oob="true"' in body
    assert re.search(r'<span id="state-hidden" hx-swap-oob="true">\s*<input type="hidden" name="sort" value="name">'
                     r'<input type="hidden" name="cols" value="name,tags.team">', body)  # fmt: skip
    assert '<span hx-swap-oob="innerHTML:.state-fields"><input type="hidden" name="q" value="first">' in body
    assert "hx-swap-oob" not in client.get("/w/default/runs/", {"q": "first"}).content.decode()


def test_a_saved_view_keeps_the_picked_columns(client: Client, runs: list[Run], alice: Any) -> None:
    as_user(client, alice)
    url = client.get("/w/default/runs/", {"cols": "name,status", "add": "metrics.loss.min"})["Location"]
    state = re.search(r'<span class="state-fields">(.*?)</span>', client.get(url).content.decode()).group(1)
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', state))
    client.post("/w/default/views/", {**fields, "name": "Losses"})
    view = SavedView.objects.get(name="Losses")
    assert view.params["cols"] == "name,status,metrics.loss.min"
    page = client.get(f"/w/default/runs/?view={view.pk}")
    assertContains(page, '<td class="col-metricslossmin" title="0.3" data-exact="0.3">0.3</td>', html=True)
    # The picker works on top of a view: its links keep the view, and change only the columns.
    assert link(page, "Remove Status") == {"view": [str(view.pk)], "cols": ["name,metrics.loss.min"]}
    state = {"view": view.pk, "cols": "name,status,metrics.loss.min"}
    added = client.get("/w/default/runs/", {**state, "add": "tags.team"})
    assert added["Location"] == f"/w/default/runs/?view={view.pk}&cols=name,status,metrics.loss.min,tags.team"
