"""Hostile request bodies, sent over TCP to the live server: JSON nested thousands of levels deep is a
400 (it was a RecursionError, a 500, on every JSON endpoint), and a body past its operation's limit is
a 413 naming the limit, refused before it is stored."""

from __future__ import annotations

import io
import warnings
import zipfile
from typing import Any

import pytest
import requests

from runs import sdk
from runs.models import Run, RunFile, Snapshot
from runs.sdk._sender import MetricBufferWarning
from tests.conftest import make_run, token_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(live_server: Any, alice: Any, workspace: Any) -> Any:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token_for(alice)}"

    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        return session.request(method, f"{live_server.url}/api/v1/{path}", timeout=60, **kwargs)

    yield call
    session.close()


@pytest.fixture
def run(workspace: Any, alice: Any) -> Run:
    return make_run(workspace, alice, "exp")


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


# Every kind of JSON body the API reads: (method, path, body with {deep} where the nesting goes).
JSON_ENDPOINTS = [
    ("post", "workspaces/", '{"name": {deep}}'),
    ("post", "workspaces/default/members/", '{"username": {deep}}'),
    ("post", "workspaces/default/compute/", '{"name": {deep}}'),
    ("post", "workspaces/default/alerts/", '{"statuses": {deep}}'),
    ("post", "workspaces/default/experiments/exp/runs/", '{"tags": {deep}}'),
    ("patch", "runs/{run}/", '{"displayName": {deep}}'),
    ("post", "runs/{run}/status/", '{"status": "Failed", "error": {deep}}'),
    ("patch", "runs/{run}/tags/", '{"set": {deep}}'),
    ("post", "runs/{run}/properties/", '{"p": {deep}}'),
    ("post", "runs/{run}/children/", '{"runs": {deep}}'),
    ("post", "runs/{run}/metrics/", '{"points": [{"name": "m", "kind": "list", "value": {deep}}]}'),
    ("post", "runs/{run}/metrics/", "{deep}"),
]


@pytest.mark.parametrize(("method", "path", "body"), JSON_ENDPOINTS)
@pytest.mark.parametrize("levels", [100_000, 500])
def test_it_refuses_deeply_nested_json_with_400(api: Any, run: Run, method: str, path: str, body: str, levels: int):
    r = api(
        method,
        path.format(run=run.run_id),
        data=body.replace("{deep}", _nested(levels)),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text[:300]
    error = r.json()["error"]
    assert error["code"] == "InvalidBody"
    assert error["target"] == "body"
    assert "nests deeper than 64 levels" in error["message"]


def test_the_view_judges_json_nested_up_to_the_limit(api: Any, run: Run):
    """64 levels reach the view, which names the field it cannot take; 65 are refused unread."""
    for levels, code in ((64, "InvalidValue"), (65, "InvalidBody")):
        value: Any = 1
        for _ in range(levels - 4):  # the body, points, a point and its value are 4 levels
            value = [value]
        r = api("post", f"runs/{run.run_id}/metrics/", json={"points": [{"name": "m", "value": [value]}]})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == code


def test_it_answers_413_naming_the_limit_for_a_json_body_too_large(api: Any, run: Run, settings: Any):
    settings.API_JSON_MAX_BYTES = 64 * 1024
    points = [{"name": "m", "value": i, "step": i} for i in range(3000)]
    r = api("post", f"runs/{run.run_id}/metrics/", json={"points": points})
    assert r.status_code == 413
    error = r.json()["error"]
    assert error["code"] == "RequestTooLarge"
    assert error["target"] == "body"
    assert "a JSON body (API_JSON_MAX_MB) may be at most 64 KiB" in error["message"]
    assert error["details"] == {"limitBytes": 64 * 1024}
    assert run.metrics.count() == 0
    r = api("post", f"runs/{run.run_id}/metrics/", json={"points": points[:100]})
    assert r.status_code == 201


def test_it_answers_413_for_a_run_file_too_large_and_stores_nothing(api: Any, run: Run, settings: Any):
    settings.RUN_FILE_MAX_BYTES = 2**20
    r = api("put", f"runs/{run.run_id}/files/outputs/big.bin", data=b"x" * (2**20 + 1))
    assert r.status_code == 413
    assert "a run file (RUN_FILE_MAX_MB) may be at most 1 MiB" in r.json()["error"]["message"]
    r = api("post", f"runs/{run.run_id}/images/", params={"name": "plot"}, data=b"x" * (2**20 + 1))
    assert r.status_code == 413
    assert not RunFile.objects.filter(run=run).exists()
    assert api("put", f"runs/{run.run_id}/files/outputs/ok.bin", data=b"x" * 2**20).status_code == 201


def test_it_answers_413_for_a_snapshot_too_large(api: Any, workspace: Any, alice: Any, settings: Any):
    settings.SNAPSHOT_MAX_BYTES = 2**20
    script = make_run(workspace, alice, "exp", type=Run.Type.SCRIPT, status=Run.Status.NOT_STARTED, script="a.py")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("a.py", b"#" * (2**20 + 100))
    r = api("put", f"runs/{script.run_id}/snapshot/", data=buffer.getvalue())
    assert r.status_code == 413
    assert "a snapshot (SNAPSHOT_MAX_MB) may be at most 1 MiB" in r.json()["error"]["message"]
    assert not Snapshot.objects.filter(run=script).exists()


@pytest.mark.parametrize("size", [2**20 + 1, 3 * 2**20])  # past the chunk limit; past Django's 2.5 MB too
def test_it_answers_413_for_a_log_chunk_too_large(api: Any, run: Run, size: int):
    r = api("post", f"runs/{run.run_id}/logs/std_log.txt", params={"offset": 0}, data=b"x" * size)
    assert r.status_code == 413
    assert r.json()["error"]["message"] == f"the body is {size:,} bytes; a log chunk may be at most 1 MiB"
    assert not run.logs.exists()


def test_the_sdk_raises_the_servers_413_message(ws: sdk.Workspace, settings: Any, tmp_path: Any):
    settings.RUN_FILE_MAX_BYTES = 2**20
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (2**20 + 1))
    with (
        sdk.Experiment(ws, "exp").start_logging() as run,
        pytest.raises(sdk.UserErrorException, match="may be at most 1 MiB") as raised,
    ):
        run.upload_file("outputs/big.bin", str(big))
    assert raised.value.status_code == 413


def test_it_answers_413_when_a_body_passes_djangos_own_limit(api: Any, run: Run, settings: Any):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000  # below the log chunk limit: request.body refuses first
    r = api("post", f"runs/{run.run_id}/logs/std_log.txt", params={"offset": 0}, data=b"x" * 2000)
    assert r.status_code == 413
    assert r.json()["error"]["message"] == "a body (DATA_UPLOAD_MAX_MEMORY_SIZE) may be at most 1000 bytes"


def test_the_sdk_sends_a_metric_batch_past_the_limit_in_parts(ws: sdk.Workspace, settings: Any):
    settings.API_JSON_MAX_BYTES = 64 * 1024
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with sdk.Experiment(ws, "exp").start_logging() as run:
            for step in range(3000):
                run.log("note", f"{step:06d}" + "x" * 100)
            run.flush()
    assert [str(w.message) for w in caught if issubclass(w.category, MetricBufferWarning)] == []
    assert run.get_metrics("note")["note"] == [f"{step:06d}" + "x" * 100 for step in range(3000)]


# NUL in a name: PostgreSQL text cannot hold one, so each of these failed its query there (500).
NUL_CASES = [
    ("get", "runs/a%00b/", {}, "run_id"),
    ("get", "workspaces/a%00b/runs/", {}, "workspace"),
    ("get", "workspaces/default/experiments/a%00b/", {}, "name"),
    ("get", "runs/{run}/files/", {"params": {"prefix": "a\x00b"}}, "prefix"),
    ("get", "runs/{run}/metrics/", {"params": {"name": "a\x00b"}}, "name"),
    ("get", "workspaces/default/runs/", {"params": {"q": "a\x00b"}}, "q"),
    ("get", "workspaces/default/runs/", {"params": {"sort": "tags.a\x00b"}}, "sort"),
    (
        "post",
        "workspaces/default/alerts/",
        {"json": {"statuses": ["Failed"], "experiments": ["a\x00b"]}},
        "experiments[0]",
    ),
    ("post", "workspaces/default/alerts/", {"json": {"statuses": ["Failed"], "members": ["a\x00b"]}}, "members[0]"),
    ("post", "workspaces/default/members/", {"json": {"username": "a\x00b"}}, "username"),
    ("post", "workspaces/default/experiments/exp/runs/", {"json": {"parentRunId": "a\x00b"}}, "parentRunId"),
    ("patch", "runs/{run}/tags/", {"json": {"set": {"k\x00": "v"}}}, "set"),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "target"), NUL_CASES)
def test_it_refuses_nul_in_a_name_with_400(api: Any, run: Run, method: str, path: str, kwargs: Any, target: str):
    r = api(method, path.format(run=run.run_id), **kwargs)
    assert r.status_code == 400, r.text[:300]
    error = r.json()["error"]
    assert (error["code"], error["target"]) == ("InvalidValue", target)
    assert "NUL" in error["message"]


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("/w/default/runs/{run}%00/", "run_id"),
        ("/w/default/runs/{run}%00/metrics/", "run_id"),
        ("/w/default/compare/?runs={run},a%00b", "runs"),
        ("/w/default/runs/?q=a%00b", "q"),
    ],
)
def test_the_studio_pages_refuse_nul_in_a_name_with_400(client: Any, alice: Any, run: Run, url: str, named: str):
    """The pages look names up too: PostgreSQL failed the lookup (500) on the first three."""
    client.force_login(alice)
    r = client.get(url.format(run=run.run_id))
    assert r.status_code == 400
    assert f"{named} must not contain control characters (NUL)" in r.content.decode()


# Fields only script runs use were stored unchecked for interactive runs: PostgreSQL refused them (500).
@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"cancelGraceSeconds": 287880223383}, "cancelGraceSeconds"),
        ({"cancelGraceSeconds": "soon"}, "cancelGraceSeconds"),
        ({"script": "x" * 2000}, "path"),
        ({"arguments": "--lr"}, "arguments"),
    ],
)
def test_it_checks_an_interactive_runs_script_fields(api: Any, body: dict[str, Any], target: str):
    r = api("post", "workspaces/default/experiments/exp/runs/", json=body)
    assert r.status_code == 400, r.text[:300]
    assert r.json()["error"]["target"] == target
    assert not Run.objects.exists()
