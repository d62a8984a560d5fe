"""The Notifications page of a workspace (rules, the form that makes them, deliveries) and the
"Tell me when this run ends" button on a run's page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_django.asserts import assertContains, assertNotContains

from runs.models import AlertRule, Delivery, Run, Workspace
from tests.conftest import make_run

pytestmark = pytest.mark.django_db

PAGE = "/w/default/notifications/"
CREATE = "/w/default/notifications/rules/"


def logged_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def delete_url(rule: AlertRule) -> str:
    return f"/w/default/notifications/rules/{rule.pk}/delete/"


def watch_url(run: Run) -> str:
    return f"/w/default/runs/{run.run_id}/watch/"


@pytest.fixture
def rule(workspace: Workspace, alice: User) -> AlertRule:
    """A rule for mnist's failures, mailing bob and an address (the experiment exists first)."""
    make_run(workspace, alice, "mnist")
    return AlertRule.create_rule(
        workspace, by=alice, name="mnist failures", experiments=["mnist"], statuses=["Failed"],
        members=["bob"], emails=["ops@example.org"],
    )  # fmt: skip


@pytest.fixture
def webhook_rule(workspace: Workspace, carol: User) -> AlertRule:
    # .invalid never resolves (RFC 6761): making the rule sends no DNS query off the machine.
    return AlertRule.create_rule(
        workspace, by=carol, statuses=["Completed"], webhook_url="https://hooks.invalid/studio"
    )


# --- Access ---------------------------------------------------------------------------------------------------


def test_it_sends_anonymous_visitors_to_log_in(client: Client, workspace: Workspace) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.post(CREATE, {"statuses": ["Failed"], "emails": "a@example.org"}).status_code == 302
    assert not AlertRule.objects.exists()


def test_it_is_a_404_for_strangers(client: Client, rule: AlertRule, charlie: User, other_workspace: Any) -> None:
    logged_in(client, charlie)
    assert client.get(PAGE).status_code == 404
    assert client.post(CREATE, {"statuses": ["Failed"], "emails": "a@example.org"}).status_code == 404
    assert client.post(delete_url(rule)).status_code == 404
    assert AlertRule.objects.count() == 1
    # Their own workspace's page does not show ours.
    assertNotContains(client.get("/w/elsewhere/notifications/"), "mnist failures")


@pytest.mark.parametrize("username", ["alice", "carol"])
def test_it_shows_rules_the_form_and_delete_buttons_to_writers(
    client: Client, rule: AlertRule, webhook_rule: AlertRule, username: str
) -> None:
    response = logged_in(client, User.objects.get(username=username)).get(PAGE)
    assert response.status_code == 200
    assertContains(response, "<td>mnist failures</td>", html=True)
    assertContains(response, "<td>mnist</td>", html=True)
    assertContains(response, "all experiments")  # the webhook rule covers every experiment
    assertContains(response, "bob, ops@example.org")
    assertContains(response, "<code>https://hooks.invalid/studio</code>", html=True)
    assertContains(response, 'action="/w/default/notifications/rules/"')
    assertContains(response, f'action="{delete_url(rule)}"')
    assertContains(response, f'action="{delete_url(webhook_rule)}"')
    assertContains(response, "hx-confirm=")
    assertNotContains(response, webhook_rule.webhook_secret)  # never again after it was made
    # The form offers the workspace's experiments, every status and the members.
    assertContains(response, '<option value="mnist">mnist</option>', html=True)
    for status in Run.Status.values:
        assertContains(response, f'value="{status}"')
    assertContains(response, '<option value="bob">bob</option>', html=True)
    assertContains(response, 'href="/w/default/notifications/">Notifications</a>')  # in the nav


def test_a_reader_sees_the_rules_without_the_form_or_delete_buttons(client: Client, rule: AlertRule,
                                                                    bob: User) -> None:  # fmt: skip
    response = logged_in(client, bob).get(PAGE)
    assert response.status_code == 200
    assertContains(response, "mnist failures")
    assertNotContains(response, 'action="/w/default/notifications/rules/"')
    assertNotContains(response, "/delete/")
    assertNotContains(response, "hx-confirm")


def test_a_reader_cannot_post(client: Client, rule: AlertRule, bob: User) -> None:
    logged_in(client, bob)
    assert client.post(CREATE, {"statuses": ["Failed"], "emails": "a@example.org"}).status_code == 403
    assert client.post(delete_url(rule), headers={"HX-Request": "true"}).status_code == 403
    assert list(AlertRule.objects.all()) == [rule]


# --- Creating ---------------------------------------------------------------------------------------------------


def test_it_creates_a_rule_from_the_form(client: Client, workspace: Workspace, alice: User, carol: User) -> None:
    make_run(workspace, alice, "mnist")
    make_run(workspace, alice, "cifar")
    response = logged_in(client, carol).post(
        CREATE,
        {
            "name": "vision alerts",
            "experiments": ["mnist", "cifar"],
            "statuses": ["Failed", "Canceled"],
            "members": ["alice"],
            "emails": "ops@example.org,\nml@example.org  oncall@example.org",
        },
        follow=True,
    )
    assertContains(response, "Created the rule “vision alerts”.")
    rule = AlertRule.objects.get()
    assert (rule.name, rule.statuses, rule.created_by) == ("vision alerts", ["Failed", "Canceled"], carol)
    assert sorted(e.name for e in rule.experiments.all()) == ["cifar", "mnist"]
    assert [u.username for u in rule.members.all()] == ["alice"]
    assert rule.emails == ["ops@example.org", "ml@example.org", "oncall@example.org"]
    assert rule.webhook_url == rule.webhook_secret == ""


def test_it_shows_a_webhooks_secret_once(client: Client, workspace: Workspace, alice: User) -> None:
    response = logged_in(client, alice).post(
        CREATE, {"statuses": ["Completed"], "webhook_url": "https://hooks.invalid/x"}
    )
    assert response.status_code == 200
    rule = AlertRule.objects.get()
    assert len(rule.webhook_secret) == 64
    assertContains(response, f'<pre id="webhook-secret">{rule.webhook_secret}</pre>', html=True)
    assertContains(response, "shown only this once")
    assert "no-store" in response["Cache-Control"]
    assertNotContains(client.get(PAGE), rule.webhook_secret)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"statuses": [], "emails": "ops@example.org"}, "statuses", "name at least one status"),
        ({"statuses": ["Failed"], "emails": "ops.example.org"}, "emails", "is not an email address"),
        ({"statuses": ["Failed"]}, "emails", "say who hears about it"),
        ({"statuses": ["Failed"], "webhook_url": "ftp://example.org/x"}, "webhook_url", "is not an http(s) URL"),
        ({"statuses": ["Failed"], "webhook_url": "http://192.168.1.1/x"}, "webhook_url", "a private address"),
        ({"statuses": ["Failed"], "emails": "a@example.org", "name": "n" * 101}, "name", "the limit is 100"),
    ],
)
def test_it_shows_a_refusal_next_to_its_field_and_keeps_the_input(
    client: Client, workspace: Workspace, alice: User, data: dict[str, Any], field: str, message: str
) -> None:
    typed = {"name": "keep me", "experiments": [], "statuses": ["Failed"], "emails": "", **data}
    response = logged_in(client, alice).post(CREATE, typed)
    assert response.status_code == 400
    assert not AlertRule.objects.exists()
    form = response.context["form"]
    assert list(form.errors) == [field]
    assert message in form.errors[field][0]
    assertContains(response, message, status_code=400)
    assertContains(response, f'value="{typed["name"]}"', status_code=400)  # the input is kept
    if typed["statuses"]:
        assert re.search(r'value="Failed" id="id_statuses_\d+" checked', response.content.decode())
    if typed.get("webhook_url"):
        assertContains(response, f'value="{typed["webhook_url"]}"', status_code=400)


def test_it_refuses_a_member_without_an_address_by_name(client: Client, workspace: Workspace,
                                                        alice: User, bob: User) -> None:  # fmt: skip
    bob.email = ""
    bob.save()
    response = logged_in(client, alice).get(PAGE)
    assertContains(response, "bob (no email address)")
    response = client.post(CREATE, {"statuses": ["Failed"], "members": ["bob"], "emails": "x@example.org"})
    assert response.status_code == 400
    assert response.context["form"].errors == {"members": ["member 'bob' has no email address to send to"]}
    assertContains(response, '<option value="bob" selected>bob (no email address)</option>', html=True,
                   status_code=400)  # fmt: skip
    assertContains(response, "x@example.org</textarea>", status_code=400)


def test_it_escapes_what_users_typed(client: Client, workspace: Workspace, alice: User) -> None:
    logged_in(client, alice).post(CREATE, {"name": "<b>loud</b>", "statuses": ["Failed"], "emails": "a@example.org"})
    response = client.get(PAGE)
    assertContains(response, "&lt;b&gt;loud&lt;/b&gt;")
    assertNotContains(response, "<b>loud</b>")


# --- Deleting ---------------------------------------------------------------------------------------------------


def test_a_contributor_deletes_a_rule(client: Client, rule: AlertRule, carol: User) -> None:
    response = logged_in(client, carol).post(delete_url(rule), follow=True)
    assertContains(response, "Deleted “mnist failures”.")
    assert not AlertRule.objects.exists()
    assert client.post(delete_url(rule)).status_code == 404


def test_htmx_gets_the_rules_and_the_deliveries_again_after_a_delete(
    client: Client, rule: AlertRule, webhook_rule: AlertRule, alice: User, workspace: Workspace
) -> None:
    run = make_run(workspace, alice, "mnist")
    run.fail(message="boom", by=alice)
    assert Delivery.objects.filter(rule=rule).count() == 1
    response = logged_in(client, alice).post(delete_url(rule), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert b"<html" not in response.content
    assertContains(response, '<section id="rules">')
    assertContains(response, '<section id="deliveries" hx-swap-oob="true">')
    assertNotContains(response, "mnist failures")
    assertContains(response, "Nothing delivered yet.")
    assert list(AlertRule.objects.all()) == [webhook_rule]


# --- Deliveries -------------------------------------------------------------------------------------------------


def test_it_lists_deliveries_newest_first_with_failures_visible(
    client: Client, rule: AlertRule, alice: User, workspace: Workspace
) -> None:
    first = make_run(workspace, alice, "mnist", display_name="first <run>")
    first.fail(message="out of memory", by=alice)
    second = make_run(workspace, alice, "mnist", display_name="second run")
    second.fail(by=alice)
    make_run(workspace, alice, "other").fail(by=alice)  # another experiment: no delivery
    older, newer = Delivery.objects.order_by("pk")
    older.claim(60)
    older.failed("SMTPServerDisconnected: gone", retry_in=None)
    response = logged_in(client, alice).get(PAGE)
    rows = response.context["deliveries"].object_list
    assert [d.event.run for d in rows] == [second, first]
    html = response.content.decode()
    assert html.index("second run") < html.index("first &lt;run&gt;")
    assertContains(response, f'href="/w/default/runs/{first.run_id}/"')
    assertContains(response, "Running → Failed", count=2)
    assertContains(response, '<span class="badge bad">Failed</span>', html=True)
    assertContains(response, '<span class="badge wait">Pending</span>', html=True)
    assertContains(response, "SMTPServerDisconnected: gone")
    assertContains(response, "1 delivery failed")
    assertContains(response, "gave up")


def test_readers_see_deliveries_but_not_other_users_watches(
    client: Client, rule: AlertRule, alice: User, bob: User, workspace: Workspace
) -> None:
    watched = make_run(workspace, alice, "cifar", display_name="alices secret watch")
    AlertRule.watch(watched, alice)
    make_run(workspace, alice, "mnist", display_name="public failure").fail(by=alice)
    watched.transition(Run.Status.COMPLETED, by=alice)
    response = logged_in(client, bob).get(PAGE)
    assertContains(response, "public failure")
    assertNotContains(response, "alices secret watch")
    assert len(response.context["deliveries"]) == 1
    response = logged_in(client, alice).get(PAGE)
    assertContains(response, "Runs you are watching")
    assert len(response.context["deliveries"]) == 2


def test_deliveries_come_a_page_at_a_time_and_htmx_gets_the_section(
    client: Client, rule: AlertRule, alice: User, workspace: Workspace
) -> None:
    for number in range(27):
        make_run(workspace, alice, "mnist", display_name=f"run {number}").fail(by=alice)
    response = logged_in(client, alice).get(PAGE)
    assert len(response.context["deliveries"]) == 25
    assertContains(response, "Page 1 of 2")
    assertContains(response, 'hx-get="/w/default/notifications/?page=2"')
    fragment = client.get(PAGE, {"page": 2}, headers={"HX-Request": "true"})
    assert b"<html" not in fragment.content
    assertContains(fragment, '<section id="deliveries">')
    assertContains(fragment, "run 1<")
    assertContains(fragment, "run 0<")
    assertNotContains(fragment, "run 2<")
    assertNotContains(fragment, 'id="rules"')


def test_the_page_takes_the_same_number_of_queries_for_few_rules_or_many(
    client: Client, workspace: Workspace, alice: User, django_assert_max_num_queries: Any
) -> None:
    def add_rule_and_failure(number: int) -> None:
        run = make_run(workspace, alice, f"exp{number}")
        AlertRule.create_rule(
            workspace, by=alice, experiments=[f"exp{number}"], statuses=["Failed"], members=["bob"],
            emails=["ops@example.org"], webhook_url="https://x.invalid/",
        )  # fmt: skip
        AlertRule.watch(run, alice)
        run.fail(by=alice)

    add_rule_and_failure(0)
    logged_in(client, alice)
    client.get(PAGE)  # warm up (the session, the content types)
    with CaptureQueriesContext(connection) as few:
        client.get(PAGE)
    for number in range(1, 8):
        add_rule_and_failure(number)
    with django_assert_max_num_queries(len(few)):
        response = client.get(PAGE)
    assert len(response.context["rules"]) == len(response.context["watches"]) == 8
    assert len(response.context["deliveries"]) == 24


# --- Watching one run -------------------------------------------------------------------------------------------


def test_the_runs_page_loads_the_watch_button(client: Client, workspace: Workspace, alice: User) -> None:
    run = make_run(workspace, alice, "mnist")
    response = logged_in(client, alice).get(f"/w/default/runs/{run.run_id}/")
    assertContains(response, f'hx-get="{watch_url(run)}" hx-trigger="load"')
    assertContains(response, "Tell me when this run ends")  # the plain form, for browsers without JavaScript
    run.transition(Run.Status.COMPLETED, by=alice)
    assertNotContains(client.get(f"/w/default/runs/{run.run_id}/"), watch_url(run))


def test_a_reader_watches_a_run_and_stops(client: Client, workspace: Workspace, alice: User, bob: User) -> None:
    run = make_run(workspace, alice, "mnist")
    logged_in(client, bob)
    button = client.get(watch_url(run), headers={"HX-Request": "true"})
    assert b"<html" not in button.content
    assertContains(button, "Tell me when this run ends")
    assertNotContains(button, "hx-trigger")

    watching = client.post(watch_url(run), headers={"HX-Request": "true"})
    assertContains(watching, "Stop telling me")
    assertContains(watching, "bob@example.org")
    watch = AlertRule.objects.get()
    assert (watch.run, watch.created_by, watch.statuses) == (run, bob, list(Run.TERMINAL))
    client.post(watch_url(run), headers={"HX-Request": "true"})  # twice is still one watch
    assert AlertRule.objects.count() == 1
    assertContains(client.get(PAGE), f'action="{delete_url(watch)}"')  # bob may delete his own

    stopped = client.post(watch_url(run), {"stop": "1"}, headers={"HX-Request": "true"})
    assertContains(stopped, "Tell me when this run ends")
    assert not AlertRule.objects.exists()


def test_the_watch_button_works_without_javascript(client: Client, workspace: Workspace, alice: User) -> None:
    run = make_run(workspace, alice, "mnist")
    response = logged_in(client, alice).post(watch_url(run))
    assert response.status_code == 302 and response["Location"] == f"/w/default/runs/{run.run_id}/"
    assert AlertRule.objects.filter(run=run, created_by=alice).exists()
    assert client.get(watch_url(run)).status_code == 302  # the button alone is no page


def test_a_user_without_an_address_is_told_why_not(client: Client, workspace: Workspace,
                                                   alice: User, bob: User) -> None:  # fmt: skip
    bob.email = ""
    bob.save()
    run = make_run(workspace, alice, "mnist")
    logged_in(client, bob)
    button = client.get(watch_url(run), headers={"HX-Request": "true"})
    assertContains(button, "Your account has no email address")
    assertNotContains(button, "<button")
    refused = client.post(watch_url(run), headers={"HX-Request": "true"})
    assertContains(refused, "Your account has no email address")
    assert not AlertRule.objects.exists()
    response = client.post(watch_url(run), follow=True)
    assertContains(response, "your account has no email address to send to")


def test_a_watch_is_one_users_own(client: Client, workspace: Workspace, alice: User, carol: User) -> None:
    run = make_run(workspace, alice, "mnist")
    watch = AlertRule.watch(run, alice)
    logged_in(client, carol)
    assertContains(client.get(watch_url(run), headers={"HX-Request": "true"}), "Tell me when this run ends")
    assert client.post(delete_url(watch)).status_code == 404  # invisible to carol
    client.post(watch_url(run), {"stop": "1"}, headers={"HX-Request": "true"})
    assert list(AlertRule.objects.all()) == [watch]


def test_watching_is_for_members_of_the_runs_workspace(client: Client, workspace: Workspace, alice: User,
                                                       charlie: User, other_workspace: Any) -> None:  # fmt: skip
    run = make_run(workspace, alice, "mnist")
    assert client.post(watch_url(run)).status_code == 302  # to log in
    assert logged_in(client, charlie).post(watch_url(run)).status_code == 404
    assert client.get(watch_url(run), headers={"HX-Request": "true"}).status_code == 404
    assert not AlertRule.objects.exists()


def test_the_button_is_gone_once_the_run_has_ended(client: Client, workspace: Workspace, alice: User) -> None:
    run = make_run(workspace, alice, "mnist")
    run.fail(by=alice)
    response = logged_in(client, alice).get(watch_url(run), headers={"HX-Request": "true"})
    assert response.status_code == 200 and response.content.strip() == b""
