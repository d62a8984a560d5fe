"""Saved views people can trust: a bad view is refused when saved, every action says what it did,
a view says who changed it last, a link to a view one cannot open says so, and the page's state
(filters included) round-trips through a view exactly."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client
from django.utils.html import escape
from pytest_django.asserts import assertContains, assertNotContains

from runs.models import Run
from studio.models import DefaultView, SavedView
from tests.conftest import make_run

pytestmark = pytest.mark.django_db
STATE = {"q": "tags.team = vision", "sort": "-created", "cols": "name,status,tags.team"}


@pytest.fixture
def runs(workspace: Any, alice: Any) -> dict[str, Run]:
    made = {
        "vision": make_run(workspace, alice, "mnist", display_name="vision run", tags={"team": "vision"}),
        "nlp": make_run(workspace, alice, "mnist", display_name="nlp run", tags={"team": "nlp"}),
        "cifar": make_run(workspace, alice, "cifar", display_name="cifar run", tags={"team": "vision"}),
    }
    made["nlp"].transition(Run.Status.FAILED)
    made["cifar"].transition(Run.Status.CANCELED)
    return made


def as_user(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.parametrize(
    ("bad", "field"),
    [({"cols": "name,no_such_column"}, "cols"), ({"sort": "-colour"}, "sort"), ({"q": "tags.team = (vision"}, "q")],
)
def test_a_bad_view_is_refused_when_saved_with_the_form_kept(
    client: Client, runs: Any, alice: Any, bad: dict[str, str], field: str
) -> None:
    response = as_user(client, alice).post("/w/default/views/", {**STATE, **bad, "name": "Broken"})
    assert response.status_code == 400
    assert not SavedView.objects.exists()
    assertContains(response, f"The view “Broken” was not saved: {field}: ", status_code=400)
    assertContains(response, 'value="Broken"', status_code=400)  # the name typed
    assertContains(response, f'name="{field}" value="{bad[field]}"', status_code=400)  # the state, to mend


def test_a_view_is_not_updated_to_a_bad_state(client: Client, runs: Any, alice: Any) -> None:
    as_user(client, alice).post("/w/default/views/", {**STATE, "name": "Vision"})
    view = SavedView.objects.get()
    response = client.post(f"/w/default/views/{view.pk}/update/", {**STATE, "sort": "nope"})
    assert response.status_code == 400
    view.refresh_from_db()
    assert view.params["sort"] == "-created"


def test_every_view_action_says_what_it_did(client: Client, runs: Any, alice: Any) -> None:
    as_user(client, alice)
    page = client.post("/w/default/views/", {**STATE, "name": "Vision"}, follow=True)
    assert messages_of(page) == ["Saved the view “Vision”."]
    view = SavedView.objects.get()
    base = f"/w/default/views/{view.pk}"
    steps = [
        ("update", {**STATE, "q": "vision"}, "Updated the view “Vision” to what is shown."),
        ("rename", {"name": "Seeing"}, "Renamed the view “Vision” to “Seeing”."),
        ("share", {}, "Shared the view “Seeing” with the workspace."),
        ("unshare", {}, "The view “Seeing” is private now: only you see it."),
        ("default", {}, "“Seeing” now opens when you open All runs."),
        ("delete", {}, "Deleted the view “Seeing”."),
    ]
    for action, data, said in steps:
        page = client.post(f"{base}/{action}/", data, follow=True)
        assert page.status_code == 200, action
        assert messages_of(page) == [said], action
        assertContains(page, said)  # shown on the page


def test_a_rename_to_a_taken_name_says_so_and_keeps_the_old_name(client: Client, runs: Any, alice: Any) -> None:
    as_user(client, alice).post("/w/default/views/", {**STATE, "name": "One"})
    client.post("/w/default/views/", {**STATE, "name": "Two"})
    one = SavedView.objects.get(name="One")
    page = client.post(f"/w/default/views/{one.pk}/rename/", {"name": "Two"}, follow=True)
    assert messages_of(page)[-1] == "There is already a view named “Two”; “One” keeps its name."
    one.refresh_from_db()
    assert one.name == "One"


def test_sharing_is_the_owners_and_needs_a_contributor(client: Client, runs: Any, alice: Any, bob: Any) -> None:
    as_user(client, bob).post("/w/default/views/", {**STATE, "name": "Bob's"})
    view = SavedView.objects.get()
    assert client.post(f"/w/default/views/{view.pk}/share/").status_code == 403  # a Reader
    as_user(client, alice).post("/w/default/views/", {**STATE, "name": "Alice's", "shared": "1"})
    shared = SavedView.objects.get(name="Alice's")
    assert as_user(client, bob).post(f"/w/default/views/{shared.pk}/unshare/").status_code == 403


def test_a_view_says_who_changed_it_last_and_when(client: Client, runs: Any, alice: Any, carol: Any) -> None:
    as_user(client, alice).post("/w/default/views/", {**STATE, "name": "Team", "shared": "1"})
    view = SavedView.objects.get()
    page = client.get(f"/w/default/runs/?view={view.pk}")
    assertContains(page, "shared by alice · changed <time")
    assertNotContains(page, "changed by")
    as_user(client, carol).post(f"/w/default/views/{view.pk}/update/", {**STATE, "q": "nlp"})
    view.refresh_from_db()
    assert view.changed_by == carol
    page = as_user(client, alice).get(f"/w/default/runs/?view={view.pk}")
    assertContains(page, "shared by alice · changed by carol <time")
    assertContains(page, "changed by carol <time datetime=")
    assertContains(page, ">just now</time>")
    SavedView.objects.filter(pk=view.pk).update(updated_at=view.updated_at - dt.timedelta(hours=3, minutes=5))
    assertContains(as_user(client, alice).get(f"/w/default/runs/?view={view.pk}"), ">3\xa0hours ago</time>")


def test_a_link_to_a_view_one_cannot_open_gives_a_page_that_says_so(
    client: Client, runs: Any, alice: Any, carol: Any
) -> None:
    as_user(client, alice).post("/w/default/views/", {**STATE, "name": "Private"})
    view = SavedView.objects.get()
    for url in (f"/w/default/runs/?view={view.pk}", "/w/default/runs/?view=99999", "/w/default/runs/?view=abc"):
        page = as_user(client, carol).get(url)
        assert page.status_code == 404
        assertContains(page, "This view is not here", status_code=404)
        assertContains(page, '<a href="/w/default/runs/?q=">Go to All runs</a>', status_code=404)
        assertContains(page, "<title>View not found · default</title>", status_code=404)  # the styled base page


def test_the_browser_tab_names_the_view(client: Client, runs: Any, alice: Any) -> None:
    as_user(client, alice).post("/w/default/views/", {**STATE, "name": "Vision"})
    view = SavedView.objects.get()
    assertContains(client.get(f"/w/default/runs/?view={view.pk}"), "<title>Vision · All runs · default</title>")
    assertContains(client.get("/w/default/runs/"), "<title>All runs · default</title>")


def test_all_runs_unfiltered_leaves_a_default_view_out(client: Client, runs: Any, alice: Any, workspace: Any) -> None:
    as_user(client, alice).post("/w/default/views/", {**STATE, "name": "Vision"})
    view = SavedView.objects.get()
    DefaultView.objects.create(user=alice, workspace=workspace, view=view)
    assertContains(client.get("/w/default/runs/"), "<h1>All runs <span")  # the default opens
    page = client.get("/w/default/runs/?q=")
    assertContains(page, "<h1>All runs</h1>")
    assertNotContains(page, "Update the view")
    assertContains(page, "nlp run")
    assert 'name="view"' not in page.content.decode()
    view.refresh_from_db()
    assert view.params["q"] == "tags.team = vision"


def test_a_default_views_links_keep_the_view(client: Client, runs: Any, alice: Any, workspace: Any) -> None:
    as_user(client, alice).post("/w/default/views/", {"cols": "name,status", "name": "Two columns"})
    view = SavedView.objects.get()
    DefaultView.objects.create(user=alice, workspace=workspace, view=view)
    page = client.get("/w/default/runs/").content.decode()
    remove = re.search(r'<a href="([^"]+)" hx-get="[^"]+" aria-label="Remove Status">', page).group(1)
    assert remove == f"?view={view.pk}&amp;cols=name"


def test_a_taken_name_keeps_the_search_columns_and_sort(client: Client, runs: Any, alice: Any) -> None:
    as_user(client, alice).post("/w/default/views/", {**STATE, "name": "Twice"})
    query = "nlp and status in (Failed, Canceled)"
    again = {"q": query, "sort": "name", "cols": "name,tags.team", "name": "Twice"}
    response = client.post("/w/default/views/", again)
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert messages_of(page)[-1] == "You already have a view named “Twice”: choose another name."
    assertContains(page, f'id="search" type="search" name="q" value="{escape(query)}"')
    assertContains(
        page, '<input type="hidden" name="sort" value="name"><input type="hidden" name="cols" value="name,tags.team">'
    )
    assertContains(page, '<span class="chip-field">Status</span>', html=False)
    assertContains(page, '<span class="chip-value">Failed or Canceled</span>')


def test_a_view_keeps_its_filters_as_they_were(client: Client, runs: Any, alice: Any) -> None:
    state = {"q": "run and status in (Failed, Canceled) and experiment = mnist", "cols": "name,status"}
    as_user(client, alice).post("/w/default/views/", {**state, "name": "Broken"})
    view = SavedView.objects.get()
    assert view.params == state
    page = client.get(f"/w/default/runs/?view={view.pk}")
    assertContains(page, "nlp run")
    assertNotContains(page, "cifar run")  # another experiment
    assertNotContains(page, "vision run")  # still running
    assertContains(page, '<span class="chip-value">Failed or Canceled</span>')
    assertContains(page, '<span class="chip-value">mnist</span>')


def test_a_view_saved_with_the_old_filter_controls_opens_with_them_as_chips(
    client: Client, runs: Any, alice: Any
) -> None:
    # Saved before filters were chips: its params hold the old controls, read as conditions of the query.
    view = SavedView.objects.create(
        workspace=runs["nlp"].workspace, owner=alice, name="Old", params={"q": "run", "status": ["Failed", "Canceled"]}
    )
    page = as_user(client, alice).get(f"/w/default/runs/?view={view.pk}")
    assertContains(page, "nlp run")
    assertNotContains(page, "vision run")
    assertContains(page, 'value="run and status in (Failed, Canceled)"')


def test_status_is_a_multi_select(client: Client, runs: Any, alice: Any) -> None:
    page = as_user(client, alice).get("/w/default/runs/?status=Failed&status=Canceled")
    assertContains(page, "nlp run")
    assertContains(page, "cifar run")
    assertNotContains(page, "vision run")


def test_an_emptied_field_clears_the_views_value(client: Client, runs: Any, alice: Any) -> None:
    as_user(client, alice).post("/w/default/views/", {**STATE, "name": "Vision"})
    view = SavedView.objects.get()
    assertNotContains(client.get(f"/w/default/runs/?view={view.pk}"), "nlp run")
    assertContains(client.get(f"/w/default/runs/?view={view.pk}&q="), "nlp run")
    assertContains(client.get(f"/w/default/runs/?view={view.pk}"), 'data-view-keys="cols q sort"')


@pytest.mark.parametrize(
    ("params", "said"),
    [
        (
            {"q": "created >= 2026-03-01 and created <= 2026-02-01"},
            "No run can match both created &gt;= 2026-03-01 and created &lt;= 2026-02-01; is the range the wrong way",
        ),
        ({"q": "metrics.loss >= 2 metrics.loss <= 1"}, "No run can match both metrics.loss &gt;= 2 and metrics.loss"),
        ({"created_from": "2026-03-01", "created_to": "2026-02-01"}, "No run can match both"),  # an old link
    ],
)
def test_an_inverted_range_is_refused_with_a_message(
    client: Client, runs: Any, alice: Any, params: dict[str, str], said: str
) -> None:
    response = as_user(client, alice).get("/w/default/runs/", params)
    assert response.status_code == 400
    assertContains(response, said, status_code=400)
    assertNotContains(response, "No runs match", status_code=400)
