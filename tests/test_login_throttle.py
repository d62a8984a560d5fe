"""Login throttling (django-axes, studio/login_throttle.py): failed logins from one address or for one
account are answered more slowly, then refused for the cool-off, with the login page saying why and
until when. API tokens are never throttled."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from runs.models import Workspace
from tests.conftest import token_for

pytestmark = pytest.mark.django_db

LIMIT = 3
REFUSED = "Too many failed logins"


@pytest.fixture(autouse=True)
def _throttle(settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    settings.LOGIN_FAILURE_DELAY = 0


def from_address(address: str) -> Client:
    return Client(REMOTE_ADDR=address)


def log_in(client: Client, username: str, password: str) -> Any:
    return client.post("/accounts/login/", {"username": username, "password": password})


def logged_in(response: Any) -> bool:
    return response.status_code == 302 and response["Location"] == "/"


def fail(client: Client, username: str, times: int = LIMIT) -> list[Any]:
    return [log_in(client, username, "wrong password") for _ in range(times)]


def test_it_refuses_even_the_right_password_after_the_limit(alice: Any) -> None:
    client = from_address("10.0.0.1")
    answers = fail(client, "alice")
    for answer in answers[:-1]:  # below the limit: the usual message
        assertContains(answer, "didn't match")
    assertContains(answers[-1], REFUSED, status_code=429)  # the failure that reaches the limit

    refused = log_in(client, "alice", "password")
    assertContains(refused, REFUSED, status_code=429)
    assertContains(refused, "try again in 15 minutes", status_code=429)
    assertContains(refused, "does not make the wait longer", status_code=429)
    assertContains(refused, "manage.py axes_reset_username alice", status_code=429)
    assertContains(refused, 'id="id_password"', status_code=429)  # the form stays, for after the wait
    assertNotContains(refused, "didn't match", status_code=429)
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302  # still anonymous


def test_it_refuses_the_account_from_every_address(alice: Any) -> None:
    fail(from_address("10.0.0.1"), "alice")
    refused = log_in(from_address("10.0.0.2"), "alice", "password")
    assertContains(refused, "Logins to <strong>alice</strong> are refused", status_code=429)


def test_it_refuses_the_address_for_every_account(alice: Any, bob: Any) -> None:
    client = from_address("10.0.0.1")
    for username in ("mallory", "root", "admin"):  # one client guessing accounts
        fail(client, username, times=1)
    refused = log_in(client, "bob", "password")
    assertContains(refused, "Logins from your address are refused", status_code=429)
    assert logged_in(log_in(from_address("10.0.0.2"), "bob", "password"))


def test_another_account_from_another_address_is_unaffected(alice: Any, bob: Any) -> None:
    fail(from_address("10.0.0.1"), "alice")
    assert logged_in(log_in(from_address("10.0.0.2"), "bob", "password"))


def test_it_lets_in_again_after_the_cool_off(settings: Any, alice: Any) -> None:
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    client = from_address("10.0.0.1")
    fail(client, "alice")
    assertContains(log_in(client, "alice", "password"), "try again in 1 second", status_code=429)
    time.sleep(1.1)
    assert logged_in(log_in(client, "alice", "password"))


def test_a_try_during_the_lockout_does_not_extend_it(settings: Any, alice: Any) -> None:
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    client = from_address("10.0.0.1")
    fail(client, "alice")
    locked_at = time.monotonic()
    while time.monotonic() < locked_at + 1.5:  # keep trying, wrong and right, for most of the wait
        assert log_in(client, "alice", "wrong password").status_code == 429
        assert log_in(client, "alice", "password").status_code == 429
        time.sleep(0.2)
    time.sleep(max(0.0, locked_at + 2.1 - time.monotonic()))
    assert logged_in(log_in(client, "alice", "password"))


def test_a_successful_login_forgets_the_accounts_failures(alice: Any) -> None:
    for _ in range(3):  # LIMIT - 1 failures, then the right password: never refused
        fail(from_address("10.0.0.1"), "alice", times=LIMIT - 1)
        assert logged_in(log_in(from_address("10.0.0.1"), "alice", "password"))


def test_a_successful_login_keeps_the_addresss_failures_for_other_accounts(alice: Any) -> None:
    """Someone guessing other accounts cannot start over by logging in to their own in between."""
    client = from_address("10.0.0.1")
    fail(client, "bob", times=LIMIT - 1)
    assert logged_in(log_in(client, "alice", "password"))
    client.logout()
    assertContains(log_in(client, "carol", "guess"), REFUSED, status_code=429)


def test_the_login_page_says_so_before_anyone_types(alice: Any) -> None:
    fail(from_address("10.0.0.1"), "alice")
    page = from_address("10.0.0.1").get("/accounts/login/")
    assertContains(page, "Logins from your address are refused")
    assertContains(page, "try again in 15 minutes")
    assertNotContains(from_address("10.0.0.2").get("/accounts/login/"), REFUSED)


def test_the_admin_login_is_throttled_too(alice: Any) -> None:
    alice.is_staff = True
    alice.save()
    client = from_address("10.0.0.1")
    fail(client, "alice")
    refused = client.post("/admin/login/", {"username": "alice", "password": "password"})
    assertContains(refused, REFUSED, status_code=429)


def test_repeated_failures_are_answered_after_a_pause(settings: Any, alice: Any) -> None:
    client = from_address("10.0.0.1")
    settings.LOGIN_FAILURE_DELAY = 30  # would time the test out where it applied
    started = time.monotonic()
    log_in(client, "alice", "typo")  # the first failure: no pause
    assert time.monotonic() - started < 30
    settings.LOGIN_FAILURE_DELAY = 0.4
    started = time.monotonic()
    assertContains(log_in(client, "alice", "guess"), "didn't match")
    assert time.monotonic() - started >= 0.4
    settings.LOGIN_FAILURE_DELAY = 30
    started = time.monotonic()
    assert log_in(client, "alice", "guess").status_code == 429  # the limit: refused at once
    assert log_in(client, "alice", "password").status_code == 429
    assert time.monotonic() - started < 30


def test_api_tokens_are_not_throttled(alice: Any, workspace: Workspace) -> None:
    client = from_address("10.0.0.1")
    for _ in range(3 * LIMIT):  # bad tokens are refused, and lock nothing
        assert client.get("/api/v1/workspaces/", HTTP_AUTHORIZATION="Bearer not-a-token").status_code == 401
    assert logged_in(log_in(from_address("10.0.0.1"), "alice", "password"))

    fail(client, "alice")  # the account and the address are locked for logins...
    assert log_in(client, "alice", "password").status_code == 429
    answer = client.get("/api/v1/workspaces/", HTTP_AUTHORIZATION=f"Bearer {token_for(alice)}")
    assert answer.status_code == 200  # ...not for the API
    assert [w["name"] for w in answer.json()] == ["default"]


def test_behind_a_reverse_proxy_each_client_is_counted_apart(settings: Any, alice: Any, bob: Any) -> None:
    """README's proxy settings: the proxy (REMOTE_ADDR 127.0.0.1) writes the client's address in
    X-Forwarded-For; a client adding its own address to the header gets no address of its choosing."""
    settings.AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
    settings.AXES_IPWARE_PROXY_COUNT = 0

    def via_proxy(header: str) -> Client:
        return Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=header)

    for username in ("mallory", "root", "admin"):
        fail(via_proxy("203.0.113.9"), username, times=1)
    assertContains(log_in(via_proxy("203.0.113.9"), "bob", "password"), REFUSED, status_code=429)
    assert logged_in(log_in(via_proxy("203.0.113.10"), "bob", "password"))
    # A forged earlier hop ("6.6.6.6, <client>") is not believed: such requests count as the proxy's own.
    for username in ("mallory", "root", "admin"):
        fail(via_proxy(f"6.6.6.{len(username)}, 203.0.113.11"), username, times=1)
    assertContains(log_in(via_proxy("6.6.6.99, 203.0.113.11"), "bob", "password"), REFUSED, status_code=429)
    assert logged_in(log_in(via_proxy("203.0.113.11"), "bob", "password"))
