"""Logging never slows training and loses nothing: the background sender against a live server,
reached through a real TCP proxy that we close (server down) or slow (timeouts) on demand."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import warnings
from typing import Any

import pytest

from runs import sdk
from runs.models import Metric, MetricPoint
from runs.sdk import Experiment
from runs.sdk._sender import MetricBufferWarning, MetricSender
from tests.conftest import token_for
from tests.proxy import TCPProxy


def steps_of(run_id: str, name: str) -> list[int]:
    return list(
        MetricPoint.objects.filter(metric__run__run_id=run_id, metric__name=name)
        .order_by("id")
        .values_list("step", flat=True)
    )


def test_a_long_loop_of_points_arrives_whole_and_in_order(ws: sdk.Workspace) -> None:
    run = Experiment(ws, "fast").start_logging()
    for step in range(20_000):
        run.log("loss", 1.0 / (step + 1))
    assert run.flush(timeout=120)
    assert steps_of(run.id, "loss") == list(range(20_000))
    summary = Metric.objects.get(run__run_id=run.id, name="loss")
    assert (summary.count, summary.last_number, summary.max_number) == (20_000, 1.0 / 20_000, 1.0)


def test_points_wait_while_the_server_is_down_and_arrive_in_order(proxy: TCPProxy, proxied_ws: sdk.Workspace) -> None:
    run = Experiment(proxied_ws, "outage").start_logging()
    run.log("loss", 0.0)
    assert run.flush(timeout=30)
    proxy.stop()  # connections are now refused, and log() still returns at once: it only queues
    for step in range(1, 2001):
        run.log("loss", float(step))
        run.log("acc", step / 2000)
    time.sleep(1.5)
    assert run.flush(timeout=0.1) is False  # still waiting
    assert steps_of(run.id, "loss") == [0]
    proxy.start()
    assert run.flush(timeout=60)
    assert steps_of(run.id, "loss") == list(range(2001))
    assert steps_of(run.id, "acc") == list(range(2000))
    values = list(MetricPoint.objects.filter(metric__run__run_id=run.id, metric__name="loss").order_by("id"))
    assert [p.number for p in values] == [float(s) for s in range(2001)]


def test_a_batch_retried_after_a_timeout_is_stored_once(proxy: TCPProxy, proxied_ws: sdk.Workspace) -> None:
    run = Experiment(proxied_ws, "timeouts").start_logging()
    run._client.timeout = 1.0
    proxy.delay_responses(connections=1, delay=2.5)  # the server stores the batch; its answer comes too late
    run._client.session.close()  # the next request opens a new (delayed) connection
    connections_before = proxy.connections
    for step in range(10):
        run.log("loss", float(step))
    assert run.flush(timeout=60)
    assert proxy.connections - connections_before >= 2  # the first attempt timed out; it was sent again
    assert steps_of(run.id, "loss") == list(range(10))  # each point once, though a batch was sent twice
    assert MetricPoint.objects.filter(metric__run__run_id=run.id).count() == 10


def test_the_server_ignores_a_repeated_batch_id(alice_api: Any, ws: sdk.Workspace) -> None:
    run = Experiment(ws, "idempotent").start_logging()
    body = {"batchId": "batch-1", "points": [{"name": "loss", "value": 1.0}, {"name": "loss", "value": 0.5}]}
    first = alice_api.post(f"/api/v1/runs/{run.id}/metrics/", body, format="json")
    again = alice_api.post(f"/api/v1/runs/{run.id}/metrics/", body, format="json")
    assert (first.json(), again.json()) == ({"stored": 2}, {"stored": 0})
    assert run.get_metrics() == {"loss": [1.0, 0.5]}


def test_a_full_buffer_warns_and_says_how_many_were_dropped(live_server: Any, alice: Any, workspace: Any) -> None:
    ws = sdk.Workspace("default", url=live_server.url, token=token_for(alice))
    run = Experiment(ws, "overflow").start_logging()
    own_sender = MetricSender(max_points=100)
    client = sdk.Workspace("default", url="http://127.0.0.1:9", token="x")._client  # nothing listens there
    with pytest.warns(MetricBufferWarning, match="buffer is full"):
        for step in range(150):
            own_sender.enqueue(client, run.id, {"name": "loss", "value": float(step)})
    assert own_sender.pending() == 100
    assert own_sender.take_dropped() == 50


def test_a_dozen_concurrent_writers_never_see_a_locked_database(ws: sdk.Workspace, live_server: Any) -> None:
    errors: list[BaseException] = []
    run_ids: list[str] = []

    def writer(index: int) -> None:
        try:
            experiment = Experiment(ws, "crowd")
            with experiment.start_logging(display_name=f"writer {index}") as run:
                run_ids.append(run.id)
                for step in range(200):
                    run.log("loss", step / 200)
                run.tag("writer", str(index))
                run.add_properties({"index": str(index)})
                child = run.child_run()
                child.log("x", 1)
                child.complete()
        except BaseException as error:  # noqa: BLE001 (collected and asserted below)
            errors.append(error)

    with warnings.catch_warnings():
        warnings.simplefilter("error", MetricBufferWarning)
        threads = [threading.Thread(target=writer, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert errors == []
    assert len(run_ids) == 12
    for run_id in run_ids:
        assert steps_of(run_id, "loss") == list(range(200))
    numbers = sorted(r.number for r in Experiment(ws, "crowd").get_runs())
    assert numbers == sorted(set(numbers)) and len(numbers) == 12


EXITS_WITHOUT_FLUSH = """
from runs.sdk import Experiment, Workspace
run = Experiment(Workspace.from_config(), "at-exit").start_logging(run_id="exits-without-flush")
for step in range(5000):
    run.log("loss", step / 5000)
# no complete(), no flush(): the interpreter's exit sends what is queued
"""


def test_interpreter_exit_sends_what_is_queued(live_server: Any, alice: Any, workspace: Any, tmp_path: Any) -> None:
    env = {**os.environ, "STUDIO_URL": live_server.url, "STUDIO_TOKEN": token_for(alice)}
    result = subprocess.run(
        [sys.executable, "-c", EXITS_WITHOUT_FLUSH], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "could not be sent" not in result.stderr
    assert steps_of("exits-without-flush", "loss") == list(range(5000))
