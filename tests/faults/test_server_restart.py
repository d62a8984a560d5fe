"""The server SIGKILLed and restarted under 8 SDK clients that start runs and log metrics: no client
sees an exception, no point is lost or stored twice, no run is made twice. And a client idle longer
than gunicorn's keep-alive sees no "Connection reset by peer"."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runs import sdk
from tests.faults.server import StudioServer, database_configurations
from tests.proxy import TCPProxy

CLIENTS = 8
POINTS = 200  # per run, with explicit steps, so a lost or doubled point shows


@pytest.fixture
def server(tmp_path: Path) -> Iterator[StudioServer]:
    with StudioServer(tmp_path, database_configurations()[0]) as server:  # as `make run` serves it
        server.start()
        yield server


class RetryCounter(logging.Handler):
    """Counts the SDK's "retrying" notes: proof that the kill broke requests in flight."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.count += 1


@pytest.fixture
def retries() -> Iterator[RetryCounter]:
    counter = RetryCounter()
    logger = logging.getLogger("runs.sdk")
    level = logger.level
    logger.addHandler(counter)
    logger.setLevel(logging.INFO)
    yield counter
    logger.removeHandler(counter)
    logger.setLevel(level)


def test_a_server_killed_under_eight_clients_loses_and_doubles_nothing(
    server: StudioServer, retries: RetryCounter
) -> None:
    errors: list[BaseException] = []
    started: list[list[str]] = [[] for _ in range(CLIENTS)]  # display names of the runs each client made
    done = [0] * CLIENTS
    stop = threading.Event()

    def client(index: int) -> None:
        try:
            workspace = sdk.Workspace("default", url=server.url, token=server.token)
            experiment = sdk.Experiment(workspace, "restart")
            while not stop.is_set():
                name = f"client {index} run {len(started[index])}"
                run = experiment.start_logging(display_name=name)
                started[index].append(name)
                for step in range(POINTS):
                    run.log("loss", step / POINTS, step=step)
                run.tag("client", str(index))
                run.complete()
                done[index] += 1
        except BaseException as error:  # noqa: BLE001 (collected and asserted below)
            errors.append(error)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    wait_for(lambda: errors or all(done), what="every client to finish a run")
    for _restart in range(2):
        server.kill()  # mid-flight: eight clients keep the server busy all the time
        time.sleep(0.5)
        server.start()
        wait_for(two_more_runs(done, errors), what="two more runs from each client")
    stop.set()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert retries.count > 0  # the kill did break requests, and they were sent again
    stored = json.loads(
        server.python(
            "import json\n"
            "from runs.models import MetricPoint, Run, RunStatusEvent\n"
            "runs = {}\n"
            "for run in Run.objects.filter(experiment__name='restart'):\n"
            "    points = MetricPoint.objects.filter(metric__run=run, metric__name='loss')\n"
            "    steps = points.values_list('step', flat=True)\n"
            "    events = RunStatusEvent.objects.filter(run=run).order_by('id')\n"
            "    events = events.values_list('from_status', 'to_status')\n"
            "    runs.setdefault(run.display_name, []).append(\n"
            "        {'status': run.status, 'steps': sorted(steps), 'events': list(events), 'tags': run.get_tags()})\n"
            "print(json.dumps(runs))\n"
        )
    )
    made = sorted(name for names in started for name in names)
    print(f"FIGURES runs={len(made)} points={len(made) * POINTS} retried={retries.count}")
    assert sorted(stored) == made  # every run a client started is there, and no other
    for name, copies in stored.items():
        assert len(copies) == 1, f"{name} was made {len(copies)} times"
        (run,) = copies
        assert run["steps"] == list(range(POINTS)), f"{name}: points lost or doubled"
        assert run["status"] == "Completed"
        assert run["events"] == [["NotStarted", "Running"], ["Running", "Completed"]]
        assert run["tags"] == {"client": name.split()[1]}


def test_a_client_idle_longer_than_the_keep_alive_sees_no_reset(server: StudioServer) -> None:
    """gunicorn closes a kept-alive connection idle for 2 s (its default keep-alive); a request sent
    on it as it closes is answered with a reset. The proxy makes that race certain: a request on a
    connection idle for 2 s or more is reset. The client must have dropped such connections first."""
    proxy = TCPProxy("127.0.0.1", server.port)
    proxy.idle_reset_after = 2.0
    proxy.start()
    errors: list[BaseException] = []

    def client(url: str) -> None:
        try:
            workspace = sdk.Workspace("default", url=url, token=server.token)
            run = sdk.Experiment(workspace, "idle").start_logging()
            time.sleep(3)
            run.tag("after", "3 s")
            time.sleep(3)
            run.cancel()
            assert run.get_status() == "Canceled"
        except BaseException as error:  # noqa: BLE001 (collected and asserted below)
            errors.append(error)

    try:
        threads = [threading.Thread(target=client, args=(url,)) for url in (proxy.url, server.url)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        proxy.stop()
    assert errors == []
    assert proxy.idle_resets == 0  # no request went out on a connection the server could be closing


def two_more_runs(done: list[int], errors: list[BaseException]) -> Callable[[], bool]:
    """True once each client has finished two runs more than it had now (or one failed)."""
    before = list(done)
    return lambda: bool(errors) or all(d >= b + 2 for d, b in zip(done, before, strict=True))


def wait_for(condition: Any, *, what: str, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.05)
