"""Every SDK call survives a broken connection: the answer lost to a reset, to a server restart or
to a client timeout after the server did the work. Each fault is made by a real TCP proxy between
the SDK and the live server, on the one request under test; the call must return normally and the
server must hold what one call makes, no more."""

from __future__ import annotations

import base64
import http.server
import io
import os
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings

from runs import sdk
from runs.models import MetricPoint, Run, RunFile, RunStatusEvent, RunTag, Snapshot
from tests.conftest import api_client, make_run, token_for
from tests.proxy import TCPProxy

# An answer lost after the server acted: the connection reset (RST), the server gone for a while
# (port closed, connections cut), or the answer so late the client gave up waiting.
FAULTS = ["reset", "restart", "timeout"]

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def break_next(proxy: TCPProxy, ws: sdk.Workspace, fault: str, match: str) -> None:
    """Break the answer to the next request whose first line holds ``match``."""
    if fault == "timeout":
        ws._client.timeout = 0.5
        proxy.fail_responses(1, "delay", seconds=1.5, match=match)
    else:
        proxy.fail_responses(1, fault, seconds=0.5, match=match)


def events_of(run_id: str) -> list[tuple[str, str]]:
    events = RunStatusEvent.objects.filter(run__run_id=run_id).order_by("id")
    return list(events.values_list("from_status", "to_status"))


@pytest.fixture
def run(proxied_ws: sdk.Workspace) -> sdk.Run:
    return sdk.Experiment(proxied_ws, "faults").start_logging()


@pytest.mark.parametrize("fault", FAULTS)
def test_start_logging_makes_one_run(proxy: TCPProxy, proxied_ws: sdk.Workspace, fault: str) -> None:
    experiment = sdk.Experiment(proxied_ws, "faults")
    break_next(proxy, proxied_ws, fault, "POST /api/v1/workspaces/default/experiments/faults/runs/")
    run = experiment.start_logging(display_name="once", tags={"a": "1"})
    assert proxy.faults_done == 1
    assert list(Run.objects.values_list("run_id", "display_name")) == [(run.id, "once")]
    assert events_of(run.id) == [("NotStarted", "Running")]
    assert list(RunTag.objects.values_list("key", "value")) == [("a", "1")]


@pytest.mark.parametrize("fault", FAULTS)
def test_create_children_makes_each_child_once(
    proxy: TCPProxy, proxied_ws: sdk.Workspace, run: sdk.Run, fault: str
) -> None:
    break_next(proxy, proxied_ws, fault, f"POST /api/v1/runs/{run.id}/children/")
    children = run.create_children(tag_key="lr", tag_values=["0.1", "0.01", "0.001"])
    assert proxy.faults_done == 1
    stored = list(Run.objects.filter(parent__run_id=run.id).order_by("number"))
    assert [child.id for child in children] == [child.run_id for child in stored]
    assert [child.get_tags() for child in stored] == [{"lr": "0.1"}, {"lr": "0.01"}, {"lr": "0.001"}]
    child = run.child_run(name="one more")  # a later request with its own key makes a new child
    assert Run.objects.filter(parent__run_id=run.id).count() == 4
    assert child.display_name == "one more"


@pytest.mark.parametrize("fault", FAULTS)
def test_logged_points_are_stored_once(proxy: TCPProxy, proxied_ws: sdk.Workspace, run: sdk.Run, fault: str) -> None:
    break_next(proxy, proxied_ws, fault, f"POST /api/v1/runs/{run.id}/metrics/")
    for step in range(50):
        run.log("loss", float(step))
    assert run.flush(timeout=30)
    assert proxy.faults_done == 1
    steps = MetricPoint.objects.filter(metric__run__run_id=run.id).order_by("id").values_list("step", flat=True)
    assert list(steps) == list(range(50))


@pytest.mark.parametrize("fault", FAULTS)
def test_tags_are_written_once(proxy: TCPProxy, proxied_ws: sdk.Workspace, run: sdk.Run, fault: str) -> None:
    break_next(proxy, proxied_ws, fault, f"PATCH /api/v1/runs/{run.id}/tags/")
    run.set_tags({"team": "vision", "note": None})
    break_next(proxy, proxied_ws, fault, f"PATCH /api/v1/runs/{run.id}/tags/")
    run.tag("team", "audio")
    assert proxy.faults_done == 2
    assert run.get_tags() == {"team": "audio", "note": None}
    assert RunTag.objects.filter(run__run_id=run.id).count() == 2


@pytest.mark.parametrize("fault", FAULTS)
def test_cancel_cancels_once(proxy: TCPProxy, proxied_ws: sdk.Workspace, run: sdk.Run, fault: str) -> None:
    break_next(proxy, proxied_ws, fault, f"POST /api/v1/runs/{run.id}/cancel/")
    run.cancel()
    assert proxy.faults_done == 1
    assert run.status == "Canceled"
    assert events_of(run.id) == [("NotStarted", "Running"), ("Running", "Canceled")]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("end", ["complete", "fail"])
def test_complete_and_fail_end_the_run_once(
    proxy: TCPProxy, proxied_ws: sdk.Workspace, run: sdk.Run, fault: str, end: str
) -> None:
    run.log("loss", 1.0)
    break_next(proxy, proxied_ws, fault, f"POST /api/v1/runs/{run.id}/status/")
    run.complete() if end == "complete" else run.fail(error_details="bad data")
    assert proxy.faults_done == 1
    ended = "Completed" if end == "complete" else "Failed"
    assert run.status == ended
    assert events_of(run.id) == [("NotStarted", "Running"), ("Running", ended)]


@pytest.mark.parametrize("fault", FAULTS)
def test_upload_file_stores_one_file(
    proxy: TCPProxy, proxied_ws: sdk.Workspace, run: sdk.Run, fault: str, tmp_path: Path
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(300_000))
    break_next(proxy, proxied_ws, fault, f"PUT /api/v1/runs/{run.id}/files/outputs/model.bin")
    run.upload_file("outputs/model.bin", source)
    assert proxy.faults_done == 1
    (stored,) = RunFile.objects.filter(run__run_id=run.id)
    assert stored.open().read() == source.read_bytes()
    pk = Run.objects.get(run_id=run.id).pk
    assert os.listdir(Path(settings.MEDIA_ROOT) / f"runs/{pk}/outputs") == ["model.bin"]  # no stray copy


@pytest.mark.parametrize("fault", FAULTS)
def test_log_image_stores_one_image_and_one_point(
    proxy: TCPProxy, proxied_ws: sdk.Workspace, run: sdk.Run, fault: str, tmp_path: Path
) -> None:
    image = tmp_path / "curve.png"
    image.write_bytes(PNG)
    break_next(proxy, proxied_ws, fault, f"POST /api/v1/runs/{run.id}/images/")
    run.log_image("curve", path=image)
    assert proxy.faults_done == 1
    assert list(RunFile.objects.filter(run__run_id=run.id).values_list("path", flat=True)) == ["outputs/curve.png"]
    assert run.get_metrics() == {"curve": "outputs/curve.png"}


# --- the server's side: what a key makes idempotent, and what it does not ----------------------------------


def keyed(api: Any, key: str) -> Callable[..., Any]:
    def post(url: str, body: Any = None) -> Any:
        return api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)

    return post


def test_a_status_change_sent_again_with_its_key_changes_nothing(alice_api: Any, alice: Any, workspace: Any) -> None:
    started = keyed(alice_api, "start-1")("/api/v1/workspaces/default/experiments/e/runs/", {"type": "interactive"})
    again = keyed(alice_api, "start-1")("/api/v1/workspaces/default/experiments/e/runs/", {"type": "interactive"})
    assert (started.status_code, again.status_code) == (201, 201)
    run_id = started.json()["runId"]
    assert again.json()["runId"] == run_id and Run.objects.count() == 1
    done = keyed(alice_api, "done-1")(f"/api/v1/runs/{run_id}/status/", {"status": "Completed"})
    done_again = keyed(alice_api, "done-1")(f"/api/v1/runs/{run_id}/status/", {"status": "Completed"})
    assert (done.status_code, done_again.status_code) == (200, 200)
    assert done_again.json()["status"] == "Completed"
    # Another request (another key, or none) is still refused: the run has ended.
    assert keyed(alice_api, "done-2")(f"/api/v1/runs/{run_id}/status/", {"status": "Completed"}).status_code == 409
    assert alice_api.post(f"/api/v1/runs/{run_id}/cancel/").status_code == 409
    assert events_of(run_id) == [("NotStarted", "Running"), ("Running", "Completed")]


def test_a_status_key_used_for_another_change_or_by_another_user_is_refused(
    alice_api: Any, alice: Any, carol: Any, workspace: Any
) -> None:
    """Not answered as done: the key made another change (or someone else's), so this one never happened."""
    run = make_run(workspace, alice, run_id="keyed", type="script", status="Queued", script="train.py")
    url = f"/api/v1/runs/{run.run_id}/"
    assert keyed(alice_api, "k-1")(f"{url}status/", {"status": "Starting"}).status_code == 200
    other_change = keyed(alice_api, "k-1")(f"{url}status/", {"status": "Running"})
    other_user = keyed(api_client(carol), "k-1")(f"{url}status/", {"status": "Starting"})
    cancel = keyed(alice_api, "k-1")(f"{url}cancel/")
    for refused in (other_change, other_user, cancel):
        assert refused.status_code == 409, refused.content
        assert refused.json()["error"]["target"] == "Idempotency-Key"
    assert events_of(run.run_id)[-1] == ("Queued", "Starting")


def test_two_claims_of_a_queued_run_still_exclude_each_other(alice_api: Any, alice: Any, workspace: Any) -> None:
    """Runners take a run with Queued -> Starting; a second runner, with its own key, must lose."""
    run = make_run(workspace, alice, run_id="queued", type="script", status="Queued", script="train.py")
    first = keyed(alice_api, "runner-a")(f"/api/v1/runs/{run.run_id}/status/", {"status": "Starting"})
    first_again = keyed(alice_api, "runner-a")(f"/api/v1/runs/{run.run_id}/status/", {"status": "Starting"})
    second = keyed(alice_api, "runner-b")(f"/api/v1/runs/{run.run_id}/status/", {"status": "Starting"})
    assert (first.status_code, first_again.status_code, second.status_code) == (200, 200, 409)


def test_a_key_is_not_answered_with_another_users_runs(alice_api: Any, workspace: Any, carol: Any) -> None:
    url = "/api/v1/workspaces/default/experiments/e/runs/"
    assert keyed(alice_api, "mine")(url, {}).status_code == 201
    refused = keyed(api_client(carol), "mine")(url, {})
    assert refused.status_code == 409 and refused.json()["error"]["target"] == "Idempotency-Key"
    too_long = keyed(alice_api, "k" * 65)(url, {})
    assert too_long.status_code == 400 and too_long.json()["error"]["target"] == "Idempotency-Key"


def test_the_same_bytes_again_are_a_no_op_other_bytes_a_conflict(alice_api: Any, ws: sdk.Workspace) -> None:
    run = sdk.Experiment(ws, "files").start_logging()
    url = f"/api/v1/runs/{run.id}/files/outputs/a.txt"
    put = lambda body: alice_api.generic("PUT", url, body, content_type="application/octet-stream")  # noqa: E731
    assert [put(b"hello").status_code, put(b"hello").status_code] == [201, 201]
    assert [put(b"hellO").status_code, put(b"hello!").status_code, put(b"hell").status_code] == [409, 409, 409]
    assert RunFile.objects.get(run__run_id=run.id).open().read() == b"hello"


def test_a_snapshot_sent_again_is_a_no_op(alice_api: Any, alice: Any, workspace: Any) -> None:
    def zipped(text: str) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            # A fixed time: writestr stamps the entry with the current second, so two zips of the same
            # text made a second apart differ (the retry sends the very bytes of the first attempt).
            archive.writestr(zipfile.ZipInfo("train.py", date_time=(2026, 1, 1, 0, 0, 0)), text)
        return buffer.getvalue()

    run = make_run(workspace, alice, type="script", status="NotStarted", script="train.py")
    url = f"/api/v1/runs/{run.run_id}/snapshot/"
    put = lambda body: alice_api.generic("PUT", url, body, content_type="application/zip")  # noqa: E731
    assert [put(zipped("print(1)")).status_code, put(zipped("print(1)")).status_code] == [201, 201]
    assert put(zipped("print(2)")).status_code == 409


def test_an_image_key_used_for_another_image_is_refused(alice_api: Any, alice: Any, workspace: Any) -> None:
    run = make_run(workspace, alice)

    def post(name: str) -> Any:
        url = f"/api/v1/runs/{run.run_id}/images/?name={name}"
        return alice_api.generic("POST", url, PNG, content_type="image/png", HTTP_IDEMPOTENCY_KEY="image-1")

    assert [post("a").status_code, post("a").status_code, post("b").status_code] == [201, 201, 409]
    assert list(RunFile.objects.filter(run=run).values_list("path", flat=True)) == ["outputs/a.png"]


def test_an_image_whose_metric_is_refused_leaves_no_file(alice_api: Any, alice: Any, workspace: Any) -> None:
    """The file and its metric are one transaction: a request that fails (or dies) between them leaves
    neither, so its retry stores the image at the same path, not a second copy beside an unnamed one."""
    run = make_run(workspace, alice)
    run.log_metrics([{"name": "curve", "value": 0.5}])  # "curve" holds numbers: an image cannot be added
    url = f"/api/v1/runs/{run.run_id}/images/?name=curve"
    refused = alice_api.generic("POST", url, PNG, content_type="image/png", HTTP_IDEMPOTENCY_KEY="image-2")
    assert refused.status_code == 400, refused.content
    assert not RunFile.objects.filter(run=run).exists()
    assert not any(Path(settings.MEDIA_ROOT).rglob("*.png"))


class Gateway(http.server.ThreadingHTTPServer):
    """A reverse proxy in front of the live server, as nginx would be: it answers ``fail_next`` requests with
    its own ``status`` page (the studio behind it restarting), and forwards the rest."""

    def __init__(self, upstream: str, status: int, fail_next: int) -> None:
        self.upstream, self.status, self.fail_next = upstream, status, fail_next
        super().__init__(("127.0.0.1", 0), GatewayHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class GatewayHandler(http.server.BaseHTTPRequestHandler):
    server: Gateway

    def log_message(self, *args: Any) -> None:
        pass

    def _relay(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.fail_next:
            self.server.fail_next -= 1
            page = b"<html><body><h1>Bad Gateway</h1></body></html>"
            self.send_response(self.server.status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        url = self.server.upstream + self.path
        answer = requests.request(self.command, url, headers=headers, data=body, timeout=30)
        self.send_response(answer.status_code)
        if "Content-Type" in answer.headers:
            self.send_header("Content-Type", answer.headers["Content-Type"])
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_keyed_post_answered_by_a_gateway_is_sent_again(live_server: Any, alice: Any, workspace: Any, status: int):
    """Behind nginx, a studio restarting shows as a 502/503/504 page: start_logging and cancel go through."""
    gateway = Gateway(live_server.url, status, fail_next=1)
    threading.Thread(target=gateway.serve_forever, daemon=True).start()
    try:
        ws = sdk.Workspace("default", url=gateway.url, token=token_for(alice))
        run = sdk.Experiment(ws, "gateway").start_logging()
        gateway.fail_next = 1
        run.cancel()
    finally:
        gateway.shutdown()
        gateway.server_close()
    assert Run.objects.filter(experiment__name="gateway").count() == 1
    assert events_of(run.id) == [("NotStarted", "Running"), ("Running", "Canceled")]


def test_the_studios_own_503_to_a_post_is_final(live_server: Any, alice: Any, workspace: Any, settings: Any):
    """A broker that is down is the studio's answer, in its JSON error: raised at once, not retried."""
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens there
    from runs.models import ComputeTarget

    ComputeTarget.objects.create(workspace=workspace, name="pool")
    run = make_run(workspace, alice, type="script", status="NotStarted", script="train.py", target="pool")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("train.py", "print(1)\n")
    snapshot_url = f"/api/v1/runs/{run.run_id}/snapshot/"
    api_client(alice).generic("PUT", snapshot_url, archive.getvalue(), content_type="application/zip")
    ws = sdk.Workspace("default", url=live_server.url, token=token_for(alice))
    with pytest.raises(sdk.ServiceException) as raised:
        ws._client.post(f"runs/{run.run_id}/status/", {"status": "Queued"})
    assert raised.value.status_code == 503
    run.refresh_from_db()
    assert (run.status, run.error_code) == ("Failed", "QueueUnavailable")


def test_an_upload_and_its_overlapping_retry_both_succeed(live_server: Any, alice: Any, workspace: Any) -> None:
    """A slow upload and its retry (the SDK timed out and sent it again) race to store the same bytes: both
    are answered 201 with the one stored copy, never a 500 or a 409."""
    runs = [make_run(workspace, alice, type="script", status="NotStarted", script="train.py") for _ in range(6)]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("train.py", "print(1)\n" * 20_000)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token_for(alice)}"
    answers: list[int] = []

    def put(url: str, body: bytes, start: threading.Barrier) -> None:
        start.wait(timeout=30)
        answers.append(session.put(url, data=body, timeout=60).status_code)

    for run in runs:
        for url, body in (
            (f"{live_server.url}/api/v1/runs/{run.run_id}/snapshot/", archive.getvalue()),
            (f"{live_server.url}/api/v1/runs/{run.run_id}/files/outputs/model.bin", os.urandom(1 << 20)),
        ):
            start = threading.Barrier(2)
            threads = [threading.Thread(target=put, args=(url, body, start)) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
    assert answers == [201] * len(runs) * 4
    assert Snapshot.objects.filter(run__in=runs).count() == len(runs)
    assert RunFile.objects.filter(run__in=runs).count() == len(runs)
    on_disk = {str(p.relative_to(settings.MEDIA_ROOT)) for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()}
    rows = RunFile.objects.filter(run__in=runs).values_list("storage_name", flat=True)
    snapshots = Snapshot.objects.filter(run__in=runs).values_list("storage_name", flat=True)
    assert on_disk == {*rows, *snapshots}, "the loser's copy is deleted"
