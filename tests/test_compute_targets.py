"""Compute targets on Celery: a real redis-server as the broker and real `studio worker`
processes (started as a user would, from the CLI) executing submitted runs."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from runs import sdk
from runs.models import Run as RunModel
from runs.sdk import Experiment, ScriptRunConfig
from tests.conftest import api_client, token_for
from tests.test_script_runs import alive, wait_until, write

S = RunModel.Status
BROKER = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
STUDIO = shutil.which("studio", path=os.path.dirname(sys.executable))


@pytest.fixture
def broker(settings: Any) -> str:
    """A Redis database as the studio's broker. Not flushed: another test run on this machine may be
    using it; each test process has a queue of its own (TARGET)."""
    try:
        redis.Redis.from_url(BROKER).ping()
    except redis.ConnectionError as error:  # make test starts one: never skip silently
        raise AssertionError(f"no Redis at {BROKER} ({error}); run scripts/ensure-services.sh redis") from None
    settings.CELERY_BROKER_URL = BROKER
    return BROKER


# The compute target's name, so its queue, is this process's: two runs of the suite on one machine
# share Redis, and a worker of one must never take the other's runs.
TARGET = f"gpu-{os.getpid()}"


@pytest.fixture
def target(ws: sdk.Workspace, broker: str) -> str:
    ws._client.post(ws._path("compute/"), {"name": TARGET, "description": "the GPU boxes"})
    return TARGET


@pytest.fixture
def start_worker(
    live_server: Any, alice: Any, broker: str, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start `studio worker --target NAME` processes; each is stopped (its whole process group) after the test."""
    workers: list[subprocess.Popen] = []

    def start(target: str, name: str = "w1") -> subprocess.Popen:
        log = tmp_path / f"worker-{name}.log"
        env = {
            **os.environ,
            "STUDIO_URL": live_server.url,
            "STUDIO_TOKEN": token_for(alice),
            "STUDIO_WORKSPACE": "default",
            "CELERY_BROKER_URL": broker,
        }
        process = subprocess.Popen(
            [STUDIO, "worker", "--target", target],
            env=env,
            cwd=tmp_path,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        workers.append(process)
        wait_until(lambda: b" ready." in log.read_bytes(), timeout=60, what=f"worker {name} to be ready")
        return process

    yield start
    for process in workers:
        with_signal(process, signal.SIGTERM)
    for process in workers:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with_signal(process, signal.SIGKILL)
            process.wait()


def with_signal(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def test_a_worker_executes_runs_submitted_to_its_target(
    ws: sdk.Workspace, target: str, start_worker: Any, tmp_path: Path
) -> None:
    listed = ws._client.get(ws._path("compute/"))
    assert [(t["name"], t["queue"]) for t in listed] == [(TARGET, f"studio.default.{TARGET}")]
    start_worker(target)
    write(
        tmp_path,
        "src/train.py",
        "from runs.sdk import Run\nprint('on the cluster')\nRun.get_context().log('acc', 0.9)\n",
    )
    config = ScriptRunConfig(source_directory=str(tmp_path / "src"), script="train.py", compute_target=target)
    run = Experiment(ws, "cluster").submit(config)
    assert run.get_details()["target"] == TARGET
    details = run.wait_for_completion()
    assert details["status"] == "Completed"
    assert run.get_metrics() == {"acc": 0.9}
    assert run._read_log("logs/std_log.txt", 0)[0] == b"on the cluster\n"


def test_workers_on_one_target_share_its_queue(
    ws: sdk.Workspace, target: str, start_worker: Any, tmp_path: Path
) -> None:
    start_worker(target, "w1")
    start_worker(target, "w2")
    write(tmp_path, "src/slow.py", "import time\ntime.sleep(3)\n")
    config = ScriptRunConfig(source_directory=str(tmp_path / "src"), script="slow.py", compute_target=target)
    runs = [Experiment(ws, "cluster").submit(config) for _ in range(2)]
    for run in runs:
        assert run.wait_for_completion()["status"] == "Completed"
    first, second = (RunModel.objects.get(run_id=run.id) for run in runs)
    # Each worker runs one at a time, so the two runs overlapping means both workers took one.
    assert first.started_at < second.ended_at and second.started_at < first.ended_at


def test_a_run_for_a_target_with_no_live_worker_stays_queued_and_can_be_canceled(
    ws: sdk.Workspace, target: str, start_worker: Any, tmp_path: Path
) -> None:
    write(tmp_path, "src/train.py", "print('never')\n")
    config = ScriptRunConfig(source_directory=str(tmp_path / "src"), script="train.py", compute_target=target)
    run = Experiment(ws, "cluster").submit(config)
    time.sleep(2)
    assert run.get_status() == "Queued"
    assert [r.id for r in Experiment(ws, "cluster").get_runs(status="Queued")] == [run.id]
    run.cancel()
    assert run.get_status() == "Canceled"
    start_worker(target)  # it takes the message, finds the run canceled, and leaves it
    later = Experiment(ws, "cluster").submit(config)
    assert later.wait_for_completion()["status"] == "Completed"
    assert run.get_status() == "Canceled"
    assert RunModel.objects.get(run_id=run.id).read_log("logs/std_log.txt")[0] == b""


def test_a_worker_that_dies_mid_run_leaves_the_run_failed_not_stuck(
    ws: sdk.Workspace, target: str, start_worker: Any, monitor: Any, tmp_path: Path
) -> None:
    worker = start_worker(target)
    write(tmp_path, "src/long.py", "import os, time\nprint('pid', os.getpid(), flush=True)\ntime.sleep(300)\n")
    config = ScriptRunConfig(source_directory=str(tmp_path / "src"), script="long.py", compute_target=target)
    run = Experiment(ws, "cluster").submit(config)
    output = wait_until(lambda: b"pid" in (data := run._read_log("logs/std_log.txt", 0)[0]) and data, what="the pid")
    script_pid = int(output.split()[1])
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its runner die at once; no goodbye
    try:
        model = wait_until(lambda: RunModel.objects.filter(run_id=run.id, status=S.FAILED).first(), what="Failed")
        assert model.error_code == "LostContact"
        statuses = [e.to_status for e in model.events.all()]
        assert statuses[-2:] == [S.NOT_RESPONDING, S.FAILED]
    finally:
        if alive(script_pid):
            os.kill(script_pid, signal.SIGKILL)


def test_compute_targets_are_checked(
    ws: sdk.Workspace, alice: Any, bob: Any, settings: Any, broker: str, target: str
) -> None:
    owner, reader = api_client(alice), api_client(bob)
    url = "/api/v1/workspaces/default/compute/"
    again = owner.post(url, {"name": target}, format="json")
    assert again.status_code == 409 and again.json()["error"]["target"] == "name"
    assert owner.post(url, {"name": "local"}, format="json").status_code == 400
    assert owner.post(url, {"name": "bad name"}, format="json").status_code == 400
    assert reader.post(url, {"name": "cpu"}, format="json").status_code == 403
    assert reader.get(url).status_code == 200
    assert owner.get(url + "nowhere/").status_code == 404
    settings.CELERY_BROKER_URL = ""
    no_broker = owner.post(url, {"name": "cpu"}, format="json")
    assert no_broker.status_code == 400 and "CELERY_BROKER_URL" in no_broker.json()["error"]["message"]


def test_a_broker_that_is_down_fails_the_run_with_the_reason(
    ws: sdk.Workspace, target: str, settings: Any, tmp_path: Path
) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens there
    write(tmp_path, "src/train.py", "print('x')\n")
    config = ScriptRunConfig(source_directory=str(tmp_path / "src"), script="train.py", compute_target=target)
    with pytest.raises(sdk.ServiceException, match="the broker cannot be reached"):
        Experiment(ws, "cluster").submit(config)
    (run,) = RunModel.objects.all()
    assert (run.status, run.error_code) == (S.FAILED, "QueueUnavailable")


def test_the_cli_creates_and_lists_targets(ws: sdk.Workspace, broker: str, capsys: Any, monkeypatch: Any) -> None:
    import json

    from runs.cli import main

    monkeypatch.setenv("STUDIO_URL", ws.url)
    monkeypatch.setenv("STUDIO_TOKEN", ws._token)
    assert main(["compute", "create", "cpu-pool", "--description", "spare CPUs"]) == 0
    assert json.loads(capsys.readouterr().out)["queue"] == "studio.default.cpu-pool"
    assert main(["compute", "list", "--query", "[].name"]) == 0
    assert json.loads(capsys.readouterr().out) == ["cpu-pool"]
