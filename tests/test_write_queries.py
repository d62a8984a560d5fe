"""The writes the SDK makes most, held to their queries: starting a run, changing its status and
logging a batch of metrics, each one request through the REST API as the SDK sends it (an API token,
an Idempotency-Key), the token's and the membership's look-ups included. The answer is built from
what the write holds, so each is also held to what a GET of the run reads afresh.

Counted as pytest-django counts, which includes a write's own transaction: its BEGIN and COMMIT,
here a SAVEPOINT and a RELEASE (a test runs inside a transaction of its own).
"""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest

from runs.models import AlertRule, Delivery, Experiment, Run, RunSpec, Workspace
from tests.conftest import make_run

pytestmark = pytest.mark.django_db
START = "/api/v1/workspaces/default/experiments/train/runs/"


def post(api: Any, url: str, body: dict[str, Any], key: str | None = None) -> Any:
    return api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex)


def details(api: Any, run_id: str) -> dict[str, Any]:
    return api.get(f"/api/v1/runs/{run_id}/").json()


@pytest.fixture
def api(alice_api: Any) -> Any:
    """alice's client, once the experiment exists and her token's first use is noted (a write of its
    own, once a minute)."""
    assert post(alice_api, START, {"displayName": "first"}).status_code == 201
    return alice_api


@pytest.fixture
def run(api: Any, workspace: Workspace, alice: Any) -> Run:
    """A Running run with everything its details show: tags, properties, a file under logs/, a live log."""
    (run,) = Experiment.objects.get(name="train").create_runs(
        [RunSpec(tags={"team": "vision", "flag": None}, properties={"commit": "abc"})], by=alice
    )
    run.add_file("logs/setup.txt", io.BytesIO(b"ok\n"))
    run.append_log("logs/std_log.txt", 0, b"epoch 1\n")
    return run


def test_starting_a_run(api: Any, django_assert_max_num_queries: Any) -> None:
    # The token; the experiment with its workspace and your role; [savepoint]; the run number, the
    # run and its first event (NotStarted -> Running); the alert rules that event may fire; [release].
    with django_assert_max_num_queries(8):
        started = post(api, START, {"displayName": "resnet", "description": "a *first* try"})
    assert started.status_code == 201
    assert started.json() == details(api, started.json()["runId"])
    assert started.json()["runNumber"] == 2


def test_starting_a_run_with_tags_and_properties(api: Any, django_assert_max_num_queries: Any) -> None:
    # The same, and one insert each for the tags and the properties.
    body = {"displayName": "tagged", "tags": {"team": "vision", "flag": None}, "properties": {"commit": "abc"}}
    with django_assert_max_num_queries(10):
        started = post(api, START, body)
    assert started.status_code == 201
    assert started.json() == details(api, started.json()["runId"])
    assert (started.json()["tags"], started.json()["properties"]) == (body["tags"], body["properties"])


def test_a_child_run_and_a_new_experiment_are_answered_as_read(api: Any) -> None:
    """Paths that read more (the parent; an experiment made on the way) answer the same way."""
    parent = post(api, START, {"displayName": "parent"}).json()
    child = post(api, START, {"parentRunId": parent["runId"], "tags": {"lr": "0.1"}})
    assert child.status_code == 201 and child.json()["parentRunId"] == parent["runId"]
    assert child.json() == details(api, child.json()["runId"])
    elsewhere = post(api, "/api/v1/workspaces/default/experiments/new-one/runs/", {"type": "script", "script": "t.py"})
    assert elsewhere.status_code == 201 and elsewhere.json()["status"] == "NotStarted"
    assert elsewhere.json() == details(api, elsewhere.json()["runId"])


def test_a_start_sent_again_is_answered_as_the_first(api: Any) -> None:
    """The answer the write holds and the one read back for a retry (the first request's run) agree."""
    body = {"displayName": "once", "tags": {"a": "1"}, "properties": {"p": "x"}}
    first, again = post(api, START, body, key="start-1"), post(api, START, body, key="start-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json()
    assert Run.objects.filter(display_name="once").count() == 1


def test_a_status_change(api: Any, run: Run, django_assert_max_num_queries: Any) -> None:
    # The token; the run with its experiment, submitter, parent and your role; [savepoint]; the
    # compare-and-swap on its status, its event, the alert rules; [release]; then what the answer
    # shows and the change did not touch, which the run was not read with: its tags, properties,
    # files under logs/ and live logs, in one query (ListedExtras).
    with django_assert_max_num_queries(8):
        completed = post(api, f"/api/v1/runs/{run.run_id}/status/", {"status": "Completed"})
    assert completed.status_code == 200
    assert completed.json() == details(api, run.run_id)
    assert completed.json()["status"] == "Completed" and "endTimeUtc" in completed.json()
    assert completed.json()["logFiles"].keys() == {"logs/setup.txt", "logs/std_log.txt"}


def test_a_status_change_that_fires_a_rule(
    api: Any, run: Run, workspace: Workspace, alice: Any, django_assert_max_num_queries: Any
) -> None:
    AlertRule.create_rule(workspace, by=alice, statuses=["Failed"], members=["alice"])
    error = {"code": "UserError", "message": "loss is NaN", "details": "Traceback ..."}
    # The same, and the deliveries the rule is owed.
    with django_assert_max_num_queries(9):
        failed = post(api, f"/api/v1/runs/{run.run_id}/status/", {"status": "Failed", "error": error})
    assert failed.status_code == 200
    assert failed.json() == details(api, run.run_id)
    assert failed.json()["error"]["error"] == error
    assert Delivery.objects.filter(event__run=run).count() == 1


def test_a_script_run_answers_its_start_time_as_stored(api: Any, workspace: Workspace, alice: Any) -> None:
    """A run's first Running sets its start time in the same compare-and-swap; later ones keep it."""
    run_id = make_run(workspace, alice, "train", type="script", status="Queued", script="train.py").run_id
    for status in ("Starting", "Running", "NotResponding", "Running"):
        answer = post(api, f"/api/v1/runs/{run_id}/status/", {"status": status})
        assert answer.status_code == 200, answer.content
        assert answer.json() == details(api, run_id)
    started = Run.objects.get(run_id=run_id).events.get(to_status="Running", from_status="Starting").at
    assert Run.objects.get(run_id=run_id).started_at == started


def test_a_status_change_sent_again_is_answered_as_the_first(api: Any, run: Run) -> None:
    url = f"/api/v1/runs/{run.run_id}/status/"
    first, again = (
        post(api, url, {"status": "Completed"}, key="done-1"),
        post(api, url, {"status": "Completed"}, key="done-1"),
    )
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json() == again.json() == details(api, run.run_id)


BATCH = [{"name": "loss", "value": 1 / (step + 1), "step": step} for step in range(50)] + [
    {"name": "accuracy", "value": step / 50} for step in range(50)
]


@pytest.mark.parametrize("first", [True, False], ids=["new metrics", "metrics logged before"])
def test_a_metric_batch(api: Any, run: Run, first: bool, django_assert_max_num_queries: Any) -> None:
    url = f"/api/v1/runs/{run.run_id}/metrics/"
    if not first:
        post(api, url, {"batchId": "b0", "points": BATCH[:2] + BATCH[50:52]})
    # The token; the run with your role; [savepoint]; the run locked and its status read (a run's
    # batches one at a time, none once it ended); the batch's key (a retry collides with it); the
    # metrics' summaries; the new metrics or the summaries' update; the points, one bulk insert;
    # [release].
    with django_assert_max_num_queries(9):
        stored = post(api, url, {"batchId": "b1", "points": BATCH})
    assert (stored.status_code, stored.json()) == (201, {"stored": 100})
    again = post(api, url, {"batchId": "b1", "points": BATCH})  # sent again: stored once
    assert (again.status_code, again.json()) == (201, {"stored": 0})
    metrics = api.get(url).json()["metrics"]
    expected_loss = [1 / (step + 1) for step in range(50)]
    expected_accuracy = [step / 50 for step in range(50)]
    if not first:
        expected_loss = [1.0, 0.5, *expected_loss]
        expected_accuracy = [0.0, 0.02, *expected_accuracy]
    assert metrics == {"loss": expected_loss, "accuracy": expected_accuracy}
    summary = {m["name"]: m for m in api.get(f"{url}summary/").json()}
    assert summary["loss"]["count"] == len(expected_loss) and summary["loss"]["last_step"] == 49
    assert summary["accuracy"]["last_step"] == (51 if not first else 49)
    assert (summary["accuracy"]["min"], summary["accuracy"]["max"]) == (0.0, 0.98)


@pytest.mark.parametrize("count", [5, 50])
def test_creating_children(api: Any, run: Run, count: int, django_assert_max_num_queries: Any) -> None:
    # The token; the parent with its experiment, workspace and your role; [savepoint]; the run
    # numbers; the runs (SQLite takes 50 in two inserts: its limit of 999 parameters), their tags
    # and their first events; the alert rules those events may fire; [release]. Nothing is read back.
    url = f"/api/v1/runs/{run.run_id}/children/"
    with django_assert_max_num_queries(10):
        made = post(api, url, {"count": count})
    assert made.status_code == 201
    assert made.json() == api.get(url, {"page_size": 100}).json()["results"]
    assert [child["tags"] for child in made.json()] == [{"batch_index": str(i)} for i in range(count)]


def test_children_sent_again_are_answered_as_the_first(api: Any, run: Run) -> None:
    url = f"/api/v1/runs/{run.run_id}/children/"
    first = post(api, url, {"count": 3}, key="children-once")
    again = post(api, url, {"count": 3}, key="children-once")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert api.get(url).json()["count"] == 3
