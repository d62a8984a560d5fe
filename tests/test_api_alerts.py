"""Alert rules, watches and deliveries through the REST API: who may make and delete them, what is
refused (and named), and that each user sees only what is theirs to see."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from runs.models import AlertRule, Delivery, Run, Workspace
from tests.conftest import api_client, make_run

pytestmark = pytest.mark.django_db

ALERTS = "/api/v1/workspaces/default/alerts/"
DELIVERIES = "/api/v1/workspaces/default/deliveries/"
GOOD = {"name": "mnist failures", "experiments": ["mnist"], "statuses": ["Failed", "Canceled"],
        "emails": ["ops@example.org"]}  # fmt: skip


@pytest.fixture
def mnist(workspace: Workspace, alice: User) -> Run:
    """A Running run of experiment mnist (so the experiment exists)."""
    return make_run(workspace, alice, "mnist")


@pytest.fixture
def carol_api(carol: User, workspace: Workspace) -> APIClient:
    return api_client(carol)


def create(client: APIClient, **body: Any) -> Any:
    return client.post(ALERTS, body, format="json")


def watch_url(run: Run) -> str:
    return f"/api/v1/runs/{run.run_id}/watch/"


# --- Creating -------------------------------------------------------------------------------------------------


def test_it_creates_a_rule_and_shows_the_webhook_secret_once(alice_api: APIClient, mnist: Run, alice: User) -> None:
    # .invalid never resolves (RFC 6761): making the rule sends no DNS query off the machine.
    response = create(alice_api, **GOOD, members=["bob"], webhookUrl="https://hooks.invalid/studio")
    assert response.status_code == 201, response.json()
    body = response.json()
    secret = body["webhookSecret"]
    assert len(secret) == 64
    rule = body["rule"]
    assert rule == {
        "id": rule["id"],
        "name": "mnist failures",
        "experiments": ["mnist"],
        "statuses": ["Failed", "Canceled"],
        "members": ["bob"],
        "emails": ["ops@example.org"],
        "webhookUrl": "https://hooks.invalid/studio",
        "runId": None,
        "createdBy": "alice",
        "createdUtc": rule["createdUtc"],
    }
    assert AlertRule.objects.get().webhook_secret == secret
    # Never again: not in the list, not in the rule's own answer.
    listed = alice_api.get(ALERTS)
    assert listed.status_code == 200 and [r["id"] for r in listed.json()] == [rule["id"]]
    detail = alice_api.get(f"{ALERTS}{rule['id']}/")
    assert detail.json() == rule
    for answer in (listed, detail):
        assert secret.encode() not in answer.content and b"webhookSecret" not in answer.content


def test_a_rule_without_a_webhook_has_no_secret(alice_api: APIClient, mnist: Run) -> None:
    response = create(alice_api, statuses="Failed,Completed", emails=["ops@example.org"])
    assert response.status_code == 201
    assert response.json()["webhookSecret"] == ""
    assert response.json()["rule"]["experiments"] == []  # all experiments
    assert response.json()["rule"]["statuses"] == ["Failed", "Completed"]


def test_a_contributor_creates_rules(carol_api: APIClient, mnist: Run) -> None:
    response = create(carol_api, **GOOD)
    assert response.status_code == 201
    assert response.json()["rule"]["createdBy"] == "carol"


def test_a_reader_cannot_create_a_rule(bob_api: APIClient, mnist: Run) -> None:
    response = create(bob_api, **GOOD)
    assert response.status_code == 403
    assert response.json()["error"]["code"]
    assert not AlertRule.objects.exists()


def test_strangers_get_404_and_anonymous_401(charlie_api: APIClient, alice_api: APIClient, mnist: Run) -> None:
    assert create(alice_api, **GOOD).status_code == 201
    assert create(charlie_api, **GOOD).status_code == 404
    assert charlie_api.get(ALERTS).status_code == 404
    anonymous = APIClient()
    assert create(anonymous, **GOOD).status_code == 401
    assert anonymous.get(ALERTS).status_code == 401
    assert AlertRule.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "target"),
    [
        ({"statuses": ["Bogus"]}, "statuses"),
        ({"statuses": []}, "statuses"),
        ({"statuses": 5}, "statuses"),
        ({"statuses": [1, 2]}, "statuses"),
        ({"emails": ["not-an-address"]}, "emails"),
        ({"emails": "ops@example.org,nope"}, "emails"),
        ({"experiments": ["mnist", "missing"]}, "experiments"),
        ({"members": ["charlie"]}, "members"),
        ({"members": ["nobody-at-all"]}, "members"),
        ({"members": ["bob"], "bob_has_no_email": True}, "members"),
        ({"webhookUrl": "ftp://example.org/hook"}, "webhookUrl"),
        ({"webhookUrl": "https://example.org/" + "x" * 500}, "webhookUrl"),
        ({"webhookUrl": 7}, "webhookUrl"),
        ({"webhookUrl": "http://169.254.169.254/latest/meta-data/"}, "webhookUrl"),  # the cloud metadata service
        ({"webhookUrl": "http://localhost:8000/admin/"}, "webhookUrl"),
        ({"webhookUrl": "http://[::ffff:127.0.0.1]/"}, "webhookUrl"),
        ({"webhookUrl": "https://10.0.0.5/hook"}, "webhookUrl"),
        ({"emails": [], "members": [], "webhookUrl": ""}, "emails"),
        ({"name": "n" * 101}, "name"),
        ({"name": "bad\x07name"}, "name"),
    ],
)
def test_it_refuses_bad_input_naming_the_field(
    alice_api: APIClient, mnist: Run, bob: User, charlie: User, change: dict[str, Any], target: str
) -> None:
    if change.pop("bob_has_no_email", False):
        bob.email = ""
        bob.save()
    response = create(alice_api, **{**GOOD, **change})
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["target"] == target, error
    assert error["message"]
    assert AlertRule.objects.count() == 0


def test_a_body_that_is_no_object_is_refused(alice_api: APIClient, mnist: Run) -> None:
    response = alice_api.post(ALERTS, ["Failed"], format="json")
    assert response.status_code == 400
    assert response.json()["error"]["target"] == "body"
    assert not AlertRule.objects.exists()


# --- Deleting -------------------------------------------------------------------------------------------------


def test_a_reader_cannot_delete_a_rule_and_a_contributor_can(
    alice_api: APIClient, bob_api: APIClient, carol_api: APIClient, charlie_api: APIClient, mnist: Run
) -> None:
    rule_id = create(alice_api, **GOOD).json()["rule"]["id"]
    url = f"{ALERTS}{rule_id}/"
    assert bob_api.get(url).status_code == 200  # readers see rules
    assert bob_api.delete(url).status_code == 403
    assert charlie_api.delete(url).status_code == 404
    assert AlertRule.objects.filter(pk=rule_id).exists()
    assert carol_api.delete(url).status_code == 204
    assert not AlertRule.objects.exists()
    assert carol_api.delete(url).status_code == 404
    assert carol_api.get(f"{ALERTS}999999/").status_code == 404


# --- Watching one run -------------------------------------------------------------------------------------------


def test_a_reader_watches_a_run_for_themselves(
    alice_api: APIClient, bob_api: APIClient, carol_api: APIClient, mnist: Run
) -> None:
    response = bob_api.post(watch_url(mnist))
    assert response.status_code == 201
    watch = response.json()
    assert (watch["runId"], watch["createdBy"], watch["members"]) == (mnist.run_id, "bob", ["bob"])
    assert watch["statuses"] == ["Completed", "Failed", "Canceled"]
    assert bob_api.post(watch_url(mnist)).json()["id"] == watch["id"]  # once per user and run
    assert [r["id"] for r in bob_api.get(ALERTS).json()] == [watch["id"]]
    # Nobody else sees it, nor can delete it.
    assert alice_api.get(ALERTS).json() == []
    assert carol_api.get(f"{ALERTS}{watch['id']}/").status_code == 404
    assert carol_api.delete(f"{ALERTS}{watch['id']}/").status_code == 404
    assert carol_api.delete(watch_url(mnist)).status_code == 204  # stops carol's watch: there is none
    assert AlertRule.objects.count() == 1

    assert bob_api.delete(watch_url(mnist)).status_code == 204
    assert bob_api.get(ALERTS).json() == []
    assert not AlertRule.objects.exists()


def test_a_reader_may_also_delete_the_watch_as_a_rule(bob_api: APIClient, mnist: Run) -> None:
    watch_id = bob_api.post(watch_url(mnist)).json()["id"]
    assert bob_api.delete(f"{ALERTS}{watch_id}/").status_code == 204
    assert not AlertRule.objects.exists()


def test_watching_needs_an_email_address(bob_api: APIClient, bob: User, mnist: Run) -> None:
    bob.email = ""
    bob.save()
    response = bob_api.post(watch_url(mnist))
    assert response.status_code == 400
    assert response.json()["error"]["target"] == "email"
    assert not AlertRule.objects.exists()


def test_an_ended_run_cannot_be_watched(bob_api: APIClient, mnist: Run) -> None:
    mnist.transition(Run.Status.COMPLETED)
    response = bob_api.post(watch_url(mnist))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "RunEnded"
    assert "already ended" in response.json()["error"]["message"]
    assert not AlertRule.objects.exists()


def test_strangers_cannot_watch(charlie_api: APIClient, mnist: Run) -> None:
    assert charlie_api.post(watch_url(mnist)).status_code == 404
    assert APIClient().post(watch_url(mnist)).status_code == 401
    assert not AlertRule.objects.exists()


# --- Deliveries -----------------------------------------------------------------------------------------------


def test_a_failed_run_shows_up_in_the_deliveries(
    alice_api: APIClient, bob_api: APIClient, workspace: Workspace, alice: User, mnist: Run
) -> None:
    rule_id = create(alice_api, **GOOD, webhookUrl="https://hooks.invalid/x").json()["rule"]["id"]
    other_id = create(alice_api, statuses=["Completed"], emails=["x@example.org"]).json()["rule"]["id"]
    assert alice_api.get(DELIVERIES).json()["results"] == []
    mnist.fail(by=alice, message="out of memory")
    make_run(workspace, alice, "cifar").fail(by=alice)  # another experiment: silent
    response = bob_api.get(DELIVERIES)  # readers see deliveries too
    assert response.status_code == 200
    page = response.json()
    assert page["count"] == 2
    assert sorted(d["channel"] for d in page["results"]) == ["email", "webhook"]
    for delivery in page["results"]:
        assert delivery["rule"] == rule_id
        assert (delivery["runId"], delivery["fromStatus"], delivery["toStatus"]) == (mnist.run_id, "Running", "Failed")
        assert (delivery["state"], delivery["attempts"], delivery["sentUtc"]) == ("Pending", 0, None)
    assert alice_api.get(DELIVERIES, {"rule": rule_id}).json()["count"] == 2
    assert alice_api.get(DELIVERIES, {"rule": other_id}).json()["count"] == 0
    assert alice_api.get(DELIVERIES, {"rule": "x"}).status_code == 400
    assert alice_api.get(DELIVERIES, {"rule": 999999}).status_code == 404
    assert Delivery.objects.count() == 2


def test_deliveries_are_scoped_to_what_one_may_see(
    alice_api: APIClient, bob_api: APIClient, charlie_api: APIClient, mnist: Run, alice: User
) -> None:
    create(alice_api, **GOOD)
    assert alice_api.post(watch_url(mnist)).status_code == 201
    mnist.fail(by=alice)
    assert alice_api.get(DELIVERIES).json()["count"] == 2  # the rule's, and her watch's
    assert bob_api.get(DELIVERIES).json()["count"] == 1  # not alice's watch
    assert charlie_api.get(DELIVERIES).status_code == 404
    assert charlie_api.get("/api/v1/workspaces/elsewhere/deliveries/").json()["count"] == 0
    assert APIClient().get(DELIVERIES).status_code == 401
