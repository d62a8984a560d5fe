"""Who may do what: every lookup is scoped to the caller's workspaces (another workspace's run is
a 404), writes need Contributor or Owner (a Reader gets a 403), members are managed by Owners."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from runs.models import Membership, Run, Workspace
from tests.conftest import api_client, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(workspace: Any, alice: Any) -> Run:
    return make_run(workspace, alice, "exp", tags={"a": "1"})


READS = [
    "/api/v1/runs/{run}/",
    "/api/v1/runs/{run}/metrics/",
    "/api/v1/runs/{run}/metrics/summary/",
    "/api/v1/runs/{run}/files/",
    "/api/v1/runs/{run}/events/",
    "/api/v1/runs/{run}/children/",
    "/api/v1/workspaces/default/runs/",
    "/api/v1/workspaces/default/experiments/",
    "/api/v1/workspaces/default/experiments/exp/",
    "/api/v1/workspaces/default/members/",
]
WRITES = [
    ("patch", "/api/v1/runs/{run}/", {"displayName": "x"}),
    ("patch", "/api/v1/runs/{run}/tags/", {"set": {"a": "2"}}),
    ("post", "/api/v1/runs/{run}/properties/", {"p": "1"}),
    ("post", "/api/v1/runs/{run}/metrics/", {"points": [{"name": "m", "value": 1}]}),
    ("post", "/api/v1/runs/{run}/status/", {"status": "Completed"}),
    ("post", "/api/v1/runs/{run}/cancel/", None),
    ("post", "/api/v1/runs/{run}/children/", {"count": 2}),
    ("post", "/api/v1/workspaces/default/experiments/exp/runs/", {}),
    ("put", "/api/v1/workspaces/default/experiments/new-one/", None),
]


def _call(client: APIClient, method: str, url: str, body: Any, run: Run) -> Any:
    return getattr(client, method)(url.format(run=run.run_id), body, format="json")


@pytest.mark.parametrize("url", READS)
def test_members_read_strangers_get_404_and_anonymous_401(
    url: str, run: Run, alice: Any, bob: Any, charlie: Any, other_workspace: Any
) -> None:
    assert _call(api_client(alice), "get", url, None, run).status_code == 200
    assert _call(api_client(bob), "get", url, None, run).status_code == 200
    assert _call(api_client(charlie), "get", url, None, run).status_code == 404
    assert _call(APIClient(), "get", url, None, run).status_code == 401


@pytest.mark.parametrize(("method", "url", "body"), WRITES)
def test_writes_need_contributor_or_owner(
    method: str, url: str, body: Any, run: Run, bob: Any, carol: Any, charlie: Any, other_workspace: Any
) -> None:
    before = (Run.objects.count(), run.events.count(), run.get_tags())
    denied = _call(api_client(bob), method, url, body, run)
    assert denied.status_code == 403
    assert "Reader" in denied.json()["error"]["message"]
    assert _call(api_client(charlie), method, url, body, run).status_code == 404
    assert _call(APIClient(), method, url, body, run).status_code == 401
    assert (Run.objects.count(), run.events.count(), run.get_tags()) == before
    assert _call(api_client(carol), method, url, body, run).status_code in (200, 201)


def test_the_runs_list_shows_only_the_callers_workspace(run: Run, charlie: Any, other_workspace: Any) -> None:
    make_run(other_workspace, charlie, "secret")
    mine = api_client(charlie).get("/api/v1/workspaces/elsewhere/runs/").json()
    assert [r["experiment"] for r in mine["results"]] == ["secret"]
    assert api_client(charlie).get("/api/v1/workspaces/default/runs/").status_code == 404


def test_owners_manage_members(alice: Any, bob: Any, carol: Any, charlie: Any, workspace: Any) -> None:
    owner, contributor = api_client(alice), api_client(carol)
    members = "/api/v1/workspaces/default/members/"
    assert contributor.post(members, {"username": "charlie"}, format="json").status_code == 403
    added = owner.post(members, {"username": "charlie", "role": "Contributor"}, format="json")
    assert added.status_code == 201 and added.json() == {"username": "charlie", "role": "Contributor"}
    assert workspace.role_of(charlie) == Membership.Role.CONTRIBUTOR
    bad_role = owner.post(members, {"username": "bob", "role": "King"}, format="json")
    assert bad_role.status_code == 400 and bad_role.json()["error"]["target"] == "role"
    assert owner.delete("/api/v1/workspaces/default/members/charlie/").status_code == 204
    assert workspace.role_of(charlie) is None
    last_owner = owner.delete("/api/v1/workspaces/default/members/alice/")
    assert last_owner.status_code == 400 and "at least one Owner" in last_owner.json()["error"]["message"]


def test_anyone_signed_in_can_make_a_workspace_and_owns_it(charlie: Any) -> None:
    client = api_client(charlie)
    made = client.post("/api/v1/workspaces/", {"name": "team-b"}, format="json")
    assert made.status_code == 201 and made.json()["role"] == "Owner"
    assert [w["name"] for w in client.get("/api/v1/workspaces/").json()] == ["team-b"]
    again = client.post("/api/v1/workspaces/", {"name": "team-b"}, format="json")
    assert again.status_code == 400 and again.json()["error"] == {
        "code": "InvalidValue",
        "message": "you already have a workspace named 'team-b'",
        "target": "name",
    }


def test_a_taken_name_is_refused_without_saying_that_it_exists(charlie: Any, workspace: Any) -> None:
    """charlie is no member of "default": its refusal reads as a reserved name's, never "exists"."""
    client = api_client(charlie)
    taken = client.post("/api/v1/workspaces/", {"name": "default"}, format="json")
    reserved = client.post("/api/v1/workspaces/", {"name": "admin"}, format="json")
    assert taken.status_code == reserved.status_code == 400
    assert taken.json()["error"] == {
        "code": "InvalidValue",
        "message": "the workspace name 'default' is not available; choose another",
        "target": "name",
    }
    assert reserved.json()["error"]["message"] == taken.json()["error"]["message"].replace("default", "admin")
    assert not Workspace.objects.filter(name="admin").exists()
    assert workspace.role_of(charlie) is None


def test_the_openapi_schema_and_docs_are_served(alice: Any, client: Any) -> None:
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/runs/{run_id}/metrics/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower() and b"/static/drf_spectacular_sidecar/" in docs.content


def test_adding_an_existing_owner_as_reader_cannot_leave_no_owner(alice: Any, workspace: Any) -> None:
    """The last-Owner rule is the model's (Membership.change_role), so every way in obeys it."""
    response = api_client(alice).post(
        "/api/v1/workspaces/default/members/", {"username": "alice", "role": "Reader"}, format="json"
    )
    assert response.status_code == 400 and "at least one Owner" in response.json()["error"]["message"]
    assert workspace.role_of(alice) == Membership.Role.OWNER
