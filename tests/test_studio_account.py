"""The account pages: a workspace's members (Owners manage them) and one's own API tokens."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from runs.models import ApiToken, Membership, Workspace

pytestmark = pytest.mark.django_db

MEMBER_POSTS = [
    ("/w/default/members/add/", {"username": "charlie", "role": "Reader"}),
    ("/w/default/members/bob/role/", {"role": "Owner"}),
    ("/w/default/members/bob/remove/", {}),
]


def logged_in(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def roles(workspace: Workspace) -> dict[str, str]:
    return dict(workspace.memberships.values_list("user__username", "role"))


# --- Members: access --------------------------------------------------------------------------------------


def test_it_lists_members_to_every_member(client: Client, workspace: Workspace, alice: Any, bob: Any,
                                          carol: Any) -> None:  # fmt: skip
    for user in (alice, carol, bob):
        response = logged_in(client, user).get("/w/default/members/")
        for username in ("alice", "bob", "carol"):
            assertContains(response, username)
    # Readers and Contributors see the roles as text.
    assertContains(response, "<td>Contributor</td>", html=True)
    assertContains(response, "<td>Reader</td>", html=True)


def test_it_shows_the_forms_to_owners(client: Client, workspace: Workspace, alice: Any) -> None:
    response = logged_in(client, alice).get("/w/default/members/")
    assertContains(response, 'action="/w/default/members/add/"')
    assertContains(response, 'action="/w/default/members/bob/role/"')
    assertContains(response, 'action="/w/default/members/bob/remove/"')
    assertContains(response, '<option value="Contributor" selected>Contributor</option>', html=True)
    # add, role and remove for three members; the top bar's log out and theme toggle
    assertContains(response, "csrfmiddlewaretoken", count=9)


@pytest.mark.parametrize("username", ["carol", "bob"])
def test_it_shows_no_forms_to_other_members(client: Client, workspace: Workspace, username: str) -> None:
    response = logged_in(client, workspace.memberships.get(user__username=username).user).get("/w/default/members/")
    assert response.status_code == 200
    assertNotContains(response, "/members/add/")
    assertNotContains(response, "/role/")
    assertNotContains(response, "/remove/")


@pytest.mark.parametrize(("url", "data"), MEMBER_POSTS)
@pytest.mark.parametrize("username", ["carol", "bob"])
def test_it_forbids_other_members_to_manage(client: Client, workspace: Workspace, charlie: Any, username: str,
                                            url: str, data: dict[str, str]) -> None:  # fmt: skip
    before = roles(workspace)
    response = logged_in(client, workspace.memberships.get(user__username=username).user).post(url, data)
    assert response.status_code == 403
    assert roles(workspace) == before


def test_it_hides_the_workspace_from_strangers(client: Client, workspace: Workspace, charlie: Any,
                                               other_workspace: Workspace) -> None:  # fmt: skip
    logged_in(client, charlie)
    assert client.get("/w/default/members/").status_code == 404
    before = roles(workspace)
    for url, data in MEMBER_POSTS:
        assert client.post(url, data).status_code == 404
    assert roles(workspace) == before
    assert client.get("/w/elsewhere/members/").status_code == 200  # their own workspace


def test_it_sends_anonymous_visitors_to_log_in(client: Client, workspace: Workspace) -> None:
    before = roles(workspace)
    for url, data in [("/w/default/members/", None), *MEMBER_POSTS]:
        response = client.get(url) if data is None else client.post(url, data)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert roles(workspace) == before


def test_it_rejects_get_on_actions(client: Client, workspace: Workspace, alice: Any) -> None:
    logged_in(client, alice)
    for url, _ in MEMBER_POSTS:
        assert client.get(url).status_code == 405


# --- Members: actions -------------------------------------------------------------------------------------


def test_it_adds_a_member(client: Client, workspace: Workspace, alice: Any, charlie: Any) -> None:
    response = logged_in(client, alice).post("/w/default/members/add/", {"username": "charlie", "role": "Contributor"})
    assert response.status_code == 302 and response["Location"] == "/w/default/members/"
    assert roles(workspace)["charlie"] == Membership.Role.CONTRIBUTOR
    assertContains(client.get("/w/default/members/"), "Added charlie as Contributor.")


def test_it_rejects_an_unknown_user_or_role(client: Client, workspace: Workspace, alice: Any, charlie: Any) -> None:
    logged_in(client, alice)
    response = client.post("/w/default/members/add/", {"username": "nobody", "role": "Reader"})
    assertContains(response, "There is no user named “nobody”.", status_code=400)
    assertContains(response, 'value="nobody"', status_code=400)  # the form keeps what was typed
    response = client.post("/w/default/members/add/", {"username": "charlie", "role": "Admin"})
    assertContains(response, "Select a valid choice", status_code=400)
    assert set(roles(workspace)) == {"alice", "bob", "carol"}


def test_it_does_not_change_a_role_by_adding_again(client: Client, workspace: Workspace, alice: Any) -> None:
    # Otherwise "add alice as Reader" would demote the last Owner.
    response = logged_in(client, alice).post("/w/default/members/add/", {"username": "alice", "role": "Reader"})
    assertContains(response, "alice is already a member", status_code=400)
    assert roles(workspace)["alice"] == Membership.Role.OWNER


def test_it_changes_a_role(client: Client, workspace: Workspace, alice: Any) -> None:
    response = logged_in(client, alice).post("/w/default/members/bob/role/", {"role": "Contributor"})
    assert response.status_code == 302 and response["Location"] == "/w/default/members/"
    assert roles(workspace)["bob"] == Membership.Role.CONTRIBUTOR
    assertContains(client.get("/w/default/members/"), "bob is now Contributor.")


def test_it_rejects_a_bad_role(client: Client, workspace: Workspace, alice: Any) -> None:
    response = logged_in(client, alice).post("/w/default/members/bob/role/", {"role": "Admin"}, follow=True)
    assertContains(response, "Choose a role: Reader, Contributor, Owner.")
    assert roles(workspace)["bob"] == Membership.Role.READER


def test_it_removes_a_member(client: Client, workspace: Workspace, alice: Any) -> None:
    response = logged_in(client, alice).post("/w/default/members/carol/remove/")
    assert response.status_code == 302 and response["Location"] == "/w/default/members/"
    assert set(roles(workspace)) == {"alice", "bob"}
    assertContains(client.get("/w/default/members/"), "Removed carol from default.")


def test_it_answers_404_for_a_non_member(client: Client, workspace: Workspace, alice: Any, charlie: Any) -> None:
    logged_in(client, alice)
    assert client.post("/w/default/members/charlie/role/", {"role": "Owner"}).status_code == 404
    assert client.post("/w/default/members/charlie/remove/").status_code == 404
    assert "charlie" not in roles(workspace)


def test_it_keeps_the_last_owner(client: Client, workspace: Workspace, alice: Any) -> None:
    logged_in(client, alice)
    response = client.post("/w/default/members/alice/role/", {"role": "Reader"}, follow=True)
    assertContains(response, "alice is the last Owner. A workspace keeps at least one Owner")
    response = client.post("/w/default/members/alice/remove/", follow=True)
    assertContains(response, "alice is the last Owner and cannot be removed.")
    assert roles(workspace)["alice"] == Membership.Role.OWNER


def test_it_lets_an_owner_step_down_when_another_remains(client: Client, workspace: Workspace, alice: Any) -> None:
    logged_in(client, alice)
    client.post("/w/default/members/carol/role/", {"role": "Owner"})
    response = client.post("/w/default/members/alice/role/", {"role": "Contributor"})
    assert response.status_code == 302
    assert roles(workspace) == {"alice": "Contributor", "bob": "Reader", "carol": "Owner"}
    # carol, now the only Owner, is kept in turn; alice can no longer manage.
    assert client.post("/w/default/members/carol/remove/").status_code == 403


def test_an_owner_who_leaves_goes_home(client: Client, workspace: Workspace, alice: Any, carol: Any) -> None:
    workspace.add_member(carol, Membership.Role.OWNER)
    response = logged_in(client, alice).post("/w/default/members/alice/remove/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert "alice" not in roles(workspace)


def test_it_escapes_usernames(client: Client, workspace: Workspace, alice: Any, django_user_model: Any) -> None:
    workspace.add_member(django_user_model.objects.create_user("<b>x</b>"), Membership.Role.READER)
    response = logged_in(client, alice).get("/w/default/members/")
    assertContains(response, "&lt;b&gt;x&lt;/b&gt;")
    assertNotContains(response, "<b>x</b>")
    # A name with a slash still has its own action URLs.
    assert client.post("/w/default/members/<b>x</b>/role/", {"role": "Contributor"}).status_code == 302
    assert roles(workspace)["<b>x</b>"] == Membership.Role.CONTRIBUTOR
    assert client.post("/w/default/members/<b>x</b>/remove/").status_code == 302
    assert "<b>x</b>" not in roles(workspace)


def test_it_enforces_csrf(workspace: Workspace, alice: Any, charlie: Any) -> None:
    client = logged_in(Client(enforce_csrf_checks=True), alice)
    assert client.post("/w/default/members/add/", {"username": "charlie", "role": "Reader"}).status_code == 403
    assert "charlie" not in roles(workspace)
    assert client.post("/tokens/new/", {"name": "laptop"}).status_code == 403
    assert not ApiToken.objects.exists()


# --- API tokens -------------------------------------------------------------------------------------------


def test_it_lists_only_ones_own_tokens(client: Client, workspace: Workspace, alice: Any, bob: Any) -> None:
    ApiToken.objects.create_token(alice, "alice laptop")
    ApiToken.objects.create_token(bob, "bob laptop")
    response = logged_in(client, alice).get("/tokens/")
    assertContains(response, "alice laptop")
    assertNotContains(response, "bob laptop")
    assertContains(response, "never")  # not used yet
    assertContains(response, 'action="/tokens/new/"')
    assertContains(response, 'href="/w/default/experiments/"')  # the nav of alice's workspace


def test_it_shows_the_page_to_users_without_a_workspace(client: Client, charlie: Any) -> None:
    response = logged_in(client, charlie).get("/tokens/")
    assertContains(response, "No tokens yet.")
    assertNotContains(response, "<nav>")


def test_it_sends_anonymous_visitors_to_log_in_for_tokens(client: Client, alice: Any) -> None:
    token, _ = ApiToken.objects.create_token(alice, "laptop")
    for response in (client.get("/tokens/"), client.post("/tokens/new/", {"name": "x"}),
                     client.post(f"/tokens/{token.pk}/revoke/")):  # fmt: skip
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert ApiToken.objects.count() == 1


def test_it_creates_a_token_and_shows_its_key_once(client: Client, workspace: Workspace, alice: Any) -> None:
    response = logged_in(client, alice).post("/tokens/new/", {"name": "laptop"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = response.context["key"]
    token = ApiToken.objects.get(user=alice)
    assert token.name == "laptop" and key.startswith(token.prefix) and key not in token.key_hash
    assertContains(response, key, count=3)  # the key, the attach line and the config
    assertContains(response, "Copy the key now: it is shown only this once.")
    assertContains(response, f"studio folder attach -w default --url http://testserver --token {key}")
    assertContains(response, f"&quot;token&quot;: &quot;{key}&quot;")
    assertContains(response, "&quot;url&quot;: &quot;http://testserver&quot;")
    assertContains(response, "&quot;workspace&quot;: &quot;default&quot;")
    assertNotContains(client.get("/tokens/"), key)


def test_a_token_created_here_authenticates_until_revoked(client: Client, workspace: Workspace, alice: Any) -> None:
    key = logged_in(client, alice).post("/tokens/new/", {"name": "laptop"}).context["key"]
    api = Client()
    assert api.get("/api/v1/workspaces/", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    token = ApiToken.objects.get(user=alice)
    assert token.last_used_at is not None
    response = client.post(f"/tokens/{token.pk}/revoke/")
    assert response.status_code == 302 and response["Location"] == "/tokens/"
    assert not ApiToken.objects.exists()
    assert api.get("/api/v1/workspaces/", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assertContains(client.get("/tokens/"), "Revoked the token “laptop”: it no longer works.")


def test_it_does_not_revoke_someone_elses_token(client: Client, alice: Any, bob: Any) -> None:
    token, _ = ApiToken.objects.create_token(bob, "bob laptop")
    logged_in(client, alice)
    assert client.post(f"/tokens/{token.pk}/revoke/").status_code == 404
    assert client.get(f"/tokens/{token.pk}/revoke/").status_code == 405
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_it_requires_a_token_name(client: Client, alice: Any) -> None:
    response = logged_in(client, alice).post("/tokens/new/", {"name": ""})
    assertContains(response, "This field is required.", status_code=400)
    response = client.post("/tokens/new/", {"name": "x" * 101})
    assertContains(response, "at most 100 characters", status_code=400)
    assert not ApiToken.objects.exists()


def test_it_escapes_token_names(client: Client, alice: Any) -> None:
    logged_in(client, alice)
    created = client.post("/tokens/new/", {"name": "<script>alert(1)</script>"})
    listed = client.get("/tokens/")
    for response in (created, listed):
        assertContains(response, "&lt;script&gt;alert(1)&lt;/script&gt;")
        assertNotContains(response, "<script>alert(1)</script>")
