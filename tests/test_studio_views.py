"""Custom views of the runs table: saved, shared, edited, set as default; always scoped."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from runs.models import Membership, Run
from studio.models import DefaultView, SavedView
from tests.conftest import make_run

pytestmark = pytest.mark.django_db
STATE = {"q": "tags.team = vision", "sort": "-created", "cols": "name,status,tags.team", "children": "", "compare": ""}


@pytest.fixture
def runs(workspace: Any, alice: Any) -> None:
    make_run(workspace, alice, "mnist", display_name="vision run", tags={"team": "vision"})
    make_run(workspace, alice, "mnist", display_name="nlp run", tags={"team": "nlp"})


def as_user(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def save(client: Client, name: str, *, shared: bool = False, **state: str) -> Any:
    data = {**STATE, **state, "name": name}
    if shared:
        data["shared"] = "1"
    return client.post("/w/default/views/", data)


def test_a_saved_view_restores_the_state(client: Client, runs: None, alice: Any) -> None:
    response = save(as_user(client, alice), "Vision")
    view = SavedView.objects.get(name="Vision")
    assert response["Location"] == f"/w/default/runs/?view={view.pk}"
    # The URL's state as it was, empty parameters left out.
    assert (view.params, view.owner, view.shared) == (
        {"q": "tags.team = vision", "sort": "-created", "cols": "name,status,tags.team"}, alice, False
    )  # fmt: skip
    page = client.get(f"/w/default/runs/?view={view.pk}")
    assertContains(page, "vision run")
    assertNotContains(page, "nlp run")
    assertContains(page, "Tag team")  # its columns
    # What the URL says wins over the view: the same view, another query.
    assertContains(client.get(f"/w/default/runs/?view={view.pk}&q=nlp"), "nlp run")


def test_private_views_stay_private_and_shared_ones_are_seen_by_members(
    client: Client, runs: None, alice: Any, bob: Any, carol: Any, charlie: Any, other_workspace: Any
) -> None:
    save(as_user(client, bob), "Bob's own")  # a Reader may keep private views
    assert save(client, "Bob shares", shared=True).status_code == 403  # but not share them
    save(as_user(client, alice), "Team view", shared=True)
    private = SavedView.objects.get(name="Bob's own")
    shared = SavedView.objects.get(name="Team view")
    carol_sees = as_user(Client(), carol).get("/w/default/runs/")  # her own browser
    assertContains(carol_sees, "Team view")
    assertNotContains(carol_sees, "Bob&#x27;s own")
    assert as_user(Client(), carol).get(f"/w/default/runs/?view={private.pk}").status_code == 404
    assert as_user(Client(), charlie).get(f"/w/default/runs/?view={shared.pk}").status_code == 404


def test_shared_views_are_changed_by_contributors_and_owners_only(
    client: Client, runs: None, alice: Any, bob: Any, carol: Any
) -> None:
    save(as_user(client, alice), "Team view", shared=True)
    view = SavedView.objects.get(name="Team view")
    base = f"/w/default/views/{view.pk}"
    assert as_user(client, bob).post(f"{base}/update/", STATE).status_code == 403
    assert client.post(f"{base}/rename/", {"name": "mine now"}).status_code == 403
    assert client.post(f"{base}/delete/").status_code == 403
    assertNotContains(client.get(f"/w/default/runs/?view={view.pk}"), "Update the view")
    as_user(client, carol).post(f"{base}/update/", {**STATE, "q": "tags.team = nlp"})
    client.post(f"{base}/rename/", {"name": "NLP"})
    view.refresh_from_db()
    assert (view.name, view.params["q"]) == ("NLP", "tags.team = nlp")
    client.post(f"{base}/delete/")
    assert not SavedView.objects.filter(pk=view.pk).exists()


def test_a_private_view_is_changed_by_its_owner_only(client: Client, runs: None, alice: Any, carol: Any) -> None:
    save(as_user(client, carol), "Carol's")
    view = SavedView.objects.get(name="Carol's")
    assert as_user(client, alice).post(f"/w/default/views/{view.pk}/delete/").status_code == 404  # not even seen
    assert as_user(client, carol).post(f"/w/default/views/{view.pk}/delete/").status_code == 302


def test_each_user_sets_a_default_view(client: Client, runs: None, alice: Any, carol: Any) -> None:
    save(as_user(client, alice), "Vision", shared=True)
    view = SavedView.objects.get(name="Vision")
    as_user(client, carol).post(f"/w/default/views/{view.pk}/default/")
    assert DefaultView.objects.get(user=carol).view == view
    opened = client.get("/w/default/runs/")
    assertContains(opened, "vision run")
    assertNotContains(opened, "nlp run")
    assertContains(opened, "your default")
    # Asking for something explicit is not overridden by the default.
    assertContains(client.get("/w/default/runs/?q="), "nlp run")
    # Alice has no default: she sees everything.
    assertContains(as_user(client, alice).get("/w/default/runs/"), "nlp run")


def test_view_names_and_state_are_checked(client: Client, runs: None, alice: Any) -> None:
    as_user(client, alice)
    save(client, "Twice")
    again = client.post("/w/default/views/", {**STATE, "name": "Twice"}, follow=True)
    assertContains(again, "You already have a view named")
    assert SavedView.objects.filter(name="Twice").count() == 1
    nameless = client.post("/w/default/views/", {**STATE, "name": ""}, follow=True)
    assertContains(nameless, "A view needs a name")
    assert client.get("/w/default/runs/?view=999").status_code == 404
    assert client.get("/w/default/runs/?view=abc").status_code == 404
    assert client.post(f"/w/default/views/{SavedView.objects.get().pk}/explode/").status_code == 404


def test_the_share_link_opens_the_view(client: Client, runs: None, alice: Any) -> None:
    save(as_user(client, alice), "Vision", shared=True)
    view = SavedView.objects.get(name="Vision")
    page = client.get(f"/w/default/runs/?view={view.pk}")
    assertContains(page, f'value="http://testserver/w/default/runs/?view={view.pk}"')
    assert Membership.objects.count() == 3 and Run.objects.count() == 2


@pytest.mark.parametrize(
    ("stored", "typed_state"),
    [
        ({"params": {"q": "tags.team = (vision"}}, "q=tags.team+%3D+%28"),
        ({"params": {"cols": "name,no_such_column"}}, "cols=name,bogus"),
    ],
    ids=["query", "column"],
)
def test_a_view_that_no_longer_parses_opens_with_its_error_in_place(
    client: Client, runs: None, alice: Any, workspace: Any, stored: dict[str, Any], typed_state: str
) -> None:
    """A view saved before the query language or the columns changed: its page opens and says how to
    mend it, instead of answering 400 for the whole page (and, as a default view, for every visit)."""
    view = SavedView.objects.create(workspace=workspace, owner=alice, name="Old one", **stored)
    DefaultView.objects.create(user=alice, workspace=workspace, view=view)
    as_user(client, alice)
    for url in (f"/w/default/runs/?view={view.pk}", "/w/default/runs/"):
        page = client.get(url)
        assert page.status_code == 200, url
        assertContains(page, "The view “Old one” no longer works as saved:")
        assertContains(page, "update the view")
    # What the reader types is still their own bad input, answered with 400 in place.
    typed = client.get(f"/w/default/runs/?view={view.pk}&{typed_state}")
    assert typed.status_code == 400
    assertNotContains(typed, "no longer works as saved", status_code=400)
