# ruff: noqa: E501 (a table reads best one case a line)
"""Bad input, as a table: each case gets a 400/404/409 with a JSON body naming the problem, and
nothing already stored changes. The SDK raises a typed exception carrying the server's message."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs import sdk
from runs.models import Run
from tests.conftest import make_run

pytestmark = pytest.mark.django_db

LONG = "x" * 256


@pytest.fixture
def run(workspace: Any, alice: Any) -> Run:
    run = make_run(workspace, alice, "exp", display_name="kept", tags={"keep": "me"}, properties={"p": "1"})
    run.log_metrics([{"name": "loss", "value": 0.5}])
    return run


@pytest.fixture
def ended(workspace: Any, alice: Any) -> Run:
    run = make_run(workspace, alice, "exp", display_name="ended")
    run.transition(Run.Status.COMPLETED)
    return run


def snapshot(run: Run) -> dict[str, Any]:
    """Everything a bad request could damage."""
    run.refresh_from_db()
    return {
        "fields": (run.display_name, run.description, run.status, run.started_at, run.ended_at, run.error_code),
        "tags": run.get_tags(),
        "properties": run.get_properties(),
        "metrics": run.metric_values(),
        "files": list(run.files.values_list("path", "size")),
        "events": run.events.count(),
        "runs": Run.objects.count(),
    }


# (method, url, body, expected status, expected error code, words the message must hold, target)
CASES = [
    ("get", "/api/v1/runs/no-such-run/", None, 404, "NotFound", ["no-such-run"], None),
    ("get", "/api/v1/workspaces/nowhere/runs/", None, 404, "NotFound", ["nowhere"], None),
    ("get", "/api/v1/no/such/endpoint/", None, 404, "NotFound", ["no API endpoint"], None),
    (
        "post",
        "/api/v1/workspaces/default/experiments/" + LONG + "/runs/",
        {},
        400,
        "InvalidValue",
        ["256", "255"],
        "name",
    ),
    ("post", "/api/v1/workspaces/default/experiments/bad%01name/runs/", {}, 400, "InvalidValue", ["letters"], "name"),
    (
        "post",
        "/api/v1/workspaces/default/experiments/exp/runs/",
        {"runId": "has space"},
        400,
        "InvalidValue",
        ["runId"],
        "runId",
    ),
    (
        "post",
        "/api/v1/workspaces/default/experiments/exp/runs/",
        {"displayName": LONG},
        400,
        "InvalidValue",
        ["displayName", "255"],
        "displayName",
    ),
    (
        "post",
        "/api/v1/workspaces/default/experiments/exp/runs/",
        {"tags": {"k": "v" * 5001}},
        400,
        "InvalidValue",
        ["tags.k", "5000"],
        "tags.k",
    ),
    (
        "post",
        "/api/v1/workspaces/default/experiments/exp/runs/",
        {"tags": ["a"]},
        400,
        "InvalidValue",
        ["tags"],
        "tags",
    ),
    ("post", "/api/v1/workspaces/default/experiments/exp/runs/", "not json", 400, "InvalidBody", ["JSON"], "body"),
    ("post", "/api/v1/workspaces/default/experiments/exp/runs/", [1, 2], 400, "InvalidValue", ["JSON object"], "body"),
    (
        "patch",
        "/api/v1/runs/{run}/",
        {"displayName": "bell\x07"},
        400,
        "InvalidValue",
        ["control characters"],
        "displayName",
    ),
    ("patch", "/api/v1/runs/{run}/", {"displayName": 42}, 400, "InvalidValue", ["string"], "displayName"),
    ("patch", "/api/v1/runs/{run}/", {"description": "nul\x00byte"}, 400, "InvalidValue", ["control"], "description"),
    (
        "patch",
        "/api/v1/runs/{run}/tags/",
        {"set": {"": "empty key"}},
        400,
        "InvalidValue",
        ["tag key", "empty"],
        "tag key",
    ),
    ("patch", "/api/v1/runs/{run}/tags/", {"set": {"keep": "v" * 5001}}, 400, "InvalidValue", ["5000"], "tags.keep"),
    ("patch", "/api/v1/runs/{run}/tags/", {"remove": "keep"}, 400, "InvalidValue", ["list"], "remove"),
    (
        "post",
        "/api/v1/runs/{run}/properties/",
        {"p": "2"},
        409,
        "PropertyConflict",
        ["'p'", "'1'", "'2'"],
        "properties.p",
    ),
    (
        "post",
        "/api/v1/runs/{run}/properties/",
        {"q": {"nested": 1}},
        400,
        "InvalidValue",
        ["properties.q", "string"],
        "properties.q",
    ),
    (
        "post",
        "/api/v1/runs/{run}/metrics/",
        {"points": [{"name": "loss", "value": {"a": 1}}]},
        400,
        "InvalidValue",
        ["number, string or boolean", "object"],
        "points[0].value",
    ),
    (
        "post",
        "/api/v1/runs/{run}/metrics/",
        {"points": [{"name": "loss", "value": None}]},
        400,
        "InvalidValue",
        ["null"],
        "points[0].value",
    ),
    (
        "post",
        "/api/v1/runs/{run}/metrics/",
        {"points": [{"name": "loss", "value": 1, "step": "3"}]},
        400,
        "InvalidValue",
        ["step", "integer"],
        "points[0].step",
    ),
    (
        "post",
        "/api/v1/runs/{run}/metrics/",
        {"points": [{"name": "", "value": 1}]},
        400,
        "InvalidValue",
        ["name", "empty"],
        "points[0].name",
    ),
    (
        "post",
        "/api/v1/runs/{run}/metrics/",
        {"points": [{"name": "ok", "value": 1}, {"name": "loss", "value": [1]}]},
        400,
        "InvalidValue",
        ["points[1].value"],
        "points[1].value",
    ),
    (
        "post",
        "/api/v1/runs/{run}/metrics/",
        {"points": [{"name": "loss", "kind": "list", "value": [1]}]},
        400,
        "InvalidValue",
        ["scalar", "list"],
        "points[0].kind",
    ),
    (
        "post",
        "/api/v1/runs/{run}/metrics/",
        {"points": [{"name": "m", "value": 1}] * 10_001},
        400,
        "InvalidValue",
        ["10000"],
        "points",
    ),
    ("post", "/api/v1/runs/{run}/metrics/", {"points": []}, 400, "InvalidValue", ["non-empty"], "points"),
    (
        "post",
        "/api/v1/runs/{ended}/metrics/",
        {"points": [{"name": "loss", "value": 1}]},
        409,
        "RunEnded",
        ["ended", "Completed"],
        "run",
    ),
    ("post", "/api/v1/runs/{run}/status/", {"status": "Done"}, 400, "InvalidValue", ["unknown status"], "status"),
    (
        "post",
        "/api/v1/runs/{ended}/status/",
        {"status": "Running"},
        409,
        "IllegalStatusTransition",
        ["Completed", "final", "Running"],
        "status",
    ),
    ("post", "/api/v1/runs/{ended}/cancel/", None, 409, "IllegalStatusTransition", ["already ended"], "status"),
    ("post", "/api/v1/runs/{run}/children/", {"count": 0}, 400, "InvalidValue", ["count"], "count"),
    ("post", "/api/v1/runs/{run}/children/", {"count": 5000}, 400, "InvalidValue", ["1000"], "count"),
    ("post", "/api/v1/runs/{run}/children/", {"tagValues": ["a"]}, 400, "InvalidValue", ["tagKey"], "tagKey"),
    ("get", "/api/v1/workspaces/default/runs/?q=status%20%3D", None, 400, "InvalidQuery", ["expected a value"], "q"),
    (
        "get",
        "/api/v1/workspaces/default/runs/?q=colour%20%3D%20red",
        None,
        400,
        "InvalidQuery",
        ["unknown field 'colour'"],
        "q",
    ),
    (
        "get",
        "/api/v1/workspaces/default/runs/?q=status%20%3D%20done",
        None,
        400,
        "InvalidQuery",
        ["not a status", "Completed"],
        "q",
    ),
    (
        "get",
        "/api/v1/workspaces/default/runs/?sort=shoe_size",
        None,
        400,
        "InvalidValue",
        ["cannot sort by 'shoe_size'"],
        "sort",
    ),
    ("get", "/api/v1/workspaces/default/runs/?page=99", None, 404, "NotFound", ["Invalid page"], None),
    ("put", "/api/v1/runs/{run}/files/outputs/%2e%2e/secret.txt", b"x", 400, "InvalidValue", ["relative"], "path"),
    ("get", "/api/v1/runs/{run}/files/outputs/missing.txt", None, 404, "NotFound", ["missing.txt"], None),
]


@pytest.mark.parametrize(("method", "url", "body", "status", "code", "words", "target"), CASES)
def test_bad_input_is_refused_clearly_and_changes_nothing(
    alice_api: Any,
    run: Run,
    ended: Run,
    method: str,
    url: str,
    body: Any,
    status: int,
    code: str,
    words: list[str],
    target: str | None,
) -> None:
    before, before_ended = snapshot(run), snapshot(ended)
    url = url.format(run=run.run_id, ended=ended.run_id)
    if body is None:
        response = getattr(alice_api, method)(url)
    elif isinstance(body, bytes):
        response = getattr(alice_api, method)(url, body, content_type="application/octet-stream")
    elif isinstance(body, str):
        response = getattr(alice_api, method)(url, body, content_type="application/json")
    else:
        response = getattr(alice_api, method)(url, body, format="json")
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    for word in words:
        assert word in error["message"], error["message"]
    assert error.get("target") == target
    assert snapshot(run) == before
    assert snapshot(ended) == before_ended


def test_the_sdk_raises_typed_exceptions_with_the_servers_message(ws: sdk.Workspace) -> None:
    exp = sdk.Experiment(ws, "bad-input")
    run = exp.start_logging(display_name="kept")
    with pytest.raises(sdk.UserErrorException, match="displayName is 256 characters long; the limit is 255") as caught:
        run.display_name = LONG
    assert caught.value.status_code == 400 and caught.value.target == "displayName"
    with pytest.raises(sdk.UserErrorException, match="value must be a number, string or boolean, not an object"):
        run.log("loss", {"a": 1})
    with pytest.raises(sdk.UserErrorException, match="tags.k is 5001 characters long"):
        run.tag("k", "v" * 5001)
    with pytest.raises(sdk.UserErrorException, match="control characters"):
        run.log("bad\nname", 1)
    with pytest.raises(sdk.UserErrorException, match="name 'no spaces please' may only hold"):
        sdk.Experiment(ws, "no spaces please")
    with pytest.raises(sdk.NotFoundException, match="'nope' not found"):
        sdk.Run(exp, "nope")
    assert run.get_details()["displayName"] == "kept" and run.get_tags() == {} and run.get_metrics() == {}


def test_the_run_list_takes_a_constant_number_of_queries(alice_api: Any, workspace: Any, alice: Any) -> None:
    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = alice_api.get("/api/v1/workspaces/default/runs/", {"page_size": 100, "sort": "-metrics.loss"})
        assert response.status_code == 200
        return len(queries)

    def add_runs(count: int) -> None:
        for index in range(count):
            run = make_run(workspace, alice, f"exp{index % 3}", tags={"a": "1", "b": "2"}, properties={"p": str(index)})
            run.log_metrics([{"name": "loss", "value": index}])
            run.add_file("logs/std_log.txt", __import__("io").BytesIO(b"log"))

    add_runs(2)
    queries_for_list()  # the first request also notes when the token was last used
    few = queries_for_list()
    add_runs(40)
    assert queries_for_list() == few
    assert alice_api.get("/api/v1/workspaces/default/runs/").json()["count"] == 42


def test_the_run_list_query_count_is_pinned(
    alice_api: Any, workspace: Any, alice: Any, django_assert_num_queries: Any
) -> None:
    for index in range(30):
        make_run(workspace, alice, "exp", tags={"t": str(index)})
    alice_api.get("/api/v1/workspaces/")  # the first request also notes when the token was last used
    # the token, the workspace, then the page: its keys (on SQLite, the first runs in the sort's order
    # and those of them that match: runs/pages.py; the page is the last, so it needs no count), the
    # runs (with experiment, submitter and parent joined), and their tags, properties, logs and files
    # under logs/ in one query
    with django_assert_num_queries(6 if connection.vendor == "sqlite" else 5):
        response = alice_api.get("/api/v1/workspaces/default/runs/", {"q": "tags.t"})
    assert len(response.json()["results"]) == 30
