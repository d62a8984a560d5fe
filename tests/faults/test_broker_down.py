"""Redis, the compute targets' broker, down at submit: the submitter hears why at once (the SDK's
ServiceException, the API's 503 with the usual error body), the run ends Failed with the reason rather
than sitting Queued with no message behind it, and submits work again once the broker is back, with no
restart of the studio."""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from runs import sdk
from runs.models import Run
from runs.sdk import Experiment, ScriptRunConfig
from tests.test_script_runs import wait_until, write

S = Run.Status


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[[int], subprocess.Popen]]:
    """Start a redis-server of this test's on a port of its own: the suite's shared one is never stopped."""
    servers: list[subprocess.Popen] = []

    def start(port: int) -> subprocess.Popen:
        server = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        servers.append(server)
        wait_until(lambda: _answers(port), timeout=10, what="redis-server")
        return server

    yield start
    for server in servers:
        server.kill()
        server.wait()


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.ConnectionError:
        return False


def test_a_submit_while_the_broker_is_down_fails_clearly_and_works_once_it_is_back(
    ws: sdk.Workspace, live_server: Any, settings: Any, own_redis: Any, tmp_path: Path
) -> None:
    port = free_port()
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    server = own_redis(port)
    ws._client.post(ws._path("compute/"), {"name": "gpu"})
    server.kill()
    server.wait()

    write(tmp_path, "src/train.py", "print('x')\n")
    config = ScriptRunConfig(source_directory=str(tmp_path / "src"), script="train.py", compute_target="gpu")
    started = time.monotonic()
    with pytest.raises(sdk.ServiceException) as refused:
        Experiment(ws, "faults").submit(config)
    took = time.monotonic() - started
    assert took < 15, f"the submit took {took:.1f} s to fail"
    assert (refused.value.status_code, refused.value.code) == (503, "BrokerUnavailable")
    assert refused.value.message.startswith("the broker cannot be reached")
    (run,) = Run.objects.all()
    assert (run.status, run.error_code) == (S.FAILED, "QueueUnavailable")
    assert "could not queue the run on gpu" in run.error_message

    # The API itself: an error status and the JSON error body, for the step that queues the run.
    api = f"{live_server.url}/api/v1/"
    headers = {"Authorization": f"Bearer {ws._token}"}
    created = requests.post(
        api + "workspaces/default/experiments/faults/runs/",
        json={"type": "script", "script": "train.py", "target": "gpu"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    path = f"{api}runs/{created.json()['runId']}/"
    snapshot = io.BytesIO()
    with zipfile.ZipFile(snapshot, "w") as archive:
        archive.writestr("train.py", "print('x')\n")
    assert requests.put(path + "snapshot/", data=snapshot.getvalue(), headers=headers).status_code in (200, 201)
    answer = requests.post(path + "status/", json={"status": "Queued"}, headers=headers)
    assert answer.status_code == 503
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["error"]["code"] == "BrokerUnavailable"
    assert answer.json()["error"]["message"].startswith("the broker cannot be reached")
    assert requests.get(path, headers=headers).json()["status"] == "Failed"
    assert not Run.objects.filter(status=S.QUEUED).exists()  # nothing is left waiting for a message never sent

    own_redis(port)  # the broker is back: the same studio process queues the next run
    later = Experiment(ws, "faults").submit(config)
    assert later.get_status() == "Queued"
    assert redis.Redis(port=port).llen("studio.default.gpu") == 1  # its message is on the target's queue
