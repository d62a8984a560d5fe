"""SQLite keeps WAL, IMMEDIATE transactions, its busy timeout and mmap however it is named, and many writers
at once through a real server get no "database is locked"."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.faults.server import StudioServer, database_configurations

WRITERS = 12
ROUNDS = 8  # each writer: start a run, log metrics, tag it, complete it, per round


@pytest.fixture(params=database_configurations())
def server(request: Any, tmp_path: Path) -> Any:
    with StudioServer(tmp_path, request.param) as server:
        server.start()
        yield server


@pytest.mark.parametrize("configuration", ["sqlite-default", "sqlite-url"])
def test_sqlite_gets_the_same_options_however_it_is_configured(configuration: str, tmp_path: Path) -> None:
    # The default's folder is a path, never read as a URL: '#' and '?' are ordinary characters in it.
    data_dir = tmp_path / ("data #1?" if configuration == "sqlite-default" else "data")
    data_dir.mkdir()
    with StudioServer(data_dir, configuration) as server:
        printed = server.python(
            "import json\n"
            "from django.db import connection\n"
            "with connection.cursor() as cursor:\n"
            "    pragmas = {p: cursor.execute(f'PRAGMA {p}').fetchone()[0]\n"
            "               for p in ('journal_mode', 'busy_timeout', 'mmap_size', 'synchronous')}\n"
            "print(json.dumps({**pragmas, 'transaction_mode': connection.transaction_mode,\n"
            "                  'name': str(connection.settings_dict['NAME'])}))\n"
        )
    found = json.loads(printed)
    assert found["journal_mode"] == "wal"
    assert found["transaction_mode"] == "IMMEDIATE"
    assert found["busy_timeout"] == 30_000
    assert found["mmap_size"] == 2**30
    assert found["synchronous"] == 1  # NORMAL
    expected = "elsewhere/studio.sqlite3" if configuration == "sqlite-url" else "db.sqlite3"
    assert found["name"] == str(data_dir / expected)


def test_twelve_concurrent_writers_get_no_errors(server: StudioServer) -> None:
    failures: list[str] = []
    answered = [0] * WRITERS
    start = threading.Barrier(WRITERS)

    def writer(index: int) -> None:
        session = server.session()
        api = f"{server.url}/api/v1"

        def call(method: str, path: str, body: Any, expect: int = 200) -> dict:
            try:
                response = session.request(method, f"{api}/{path}", json=body, timeout=60)
            except requests.RequestException as error:
                failures.append(f"{method} {path}: {error}")
                return {}
            answered[index] += 1
            if response.status_code != expect:
                failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
                return {}
            return response.json()

        start.wait(timeout=60)
        for round_ in range(ROUNDS):
            run = call("POST", f"workspaces/default/experiments/writers-{index % 3}/runs/", {}, 201)
            if not run:
                continue
            run_id = run["runId"]
            points = [{"name": "loss", "value": 1.0 / (step + 1), "step": step} for step in range(50)]
            call("POST", f"runs/{run_id}/metrics/", {"batchId": f"{run_id}-1", "points": points}, 201)
            call("PATCH", f"runs/{run_id}/tags/", {"set": {"writer": str(index), "round": str(round_)}})
            call("POST", f"runs/{run_id}/heartbeat/", None)
            call("POST", f"runs/{run_id}/status/", {"status": "Completed"})

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    print(f"FIGURES writers={WRITERS} requests={sum(answered)} failed={len(failures)}")
    assert failures == [], f"{len(failures)} of {sum(answered)} requests failed; first: {failures[:5]}"
    assert sum(answered) == WRITERS * ROUNDS * 5
    runs = server.session().get(f"{server.url}/api/v1/workspaces/default/runs/?q=status%20%3D%20Completed", timeout=30)
    assert runs.status_code == 200
    assert runs.json()["count"] == WRITERS * ROUNDS
