"""Bodies past their limit, sent to gunicorn as `make run` starts it: the 413 is answered before the
body is read, and still reaches a client that is sending it (no connection reset), whose next request
on the same connection pool works."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.faults.server import StudioServer, database_configurations


@pytest.mark.parametrize("configuration", database_configurations()[:1])
def test_a_body_past_its_limit_is_refused_unread_with_413(tmp_path: Path, configuration: str):
    server = StudioServer(tmp_path, configuration)
    server.env |= {"RUN_FILE_MAX_MB": "1", "API_JSON_MAX_MB": "1"}
    with server, requests.Session() as session:
        server.start()
        session.headers["Authorization"] = f"Bearer {server.token}"
        api = f"{server.url}/api/v1"
        run_id = session.post(f"{api}/workspaces/default/experiments/e/runs/", json={}, timeout=30).json()["runId"]
        size = 100 * 2**20
        r = session.put(f"{api}/runs/{run_id}/files/big.bin", data=b"x" * size, timeout=60)
        assert r.status_code == 413
        assert (
            r.json()["error"]["message"]
            == f"the body is {size:,} bytes; a run file (RUN_FILE_MAX_MB) may be at most 1 MiB"
        )
        body = b'{"points": [' + b" " * size + b"]}"
        r = session.post(
            f"{api}/runs/{run_id}/metrics/", data=body, headers={"Content-Type": "application/json"}, timeout=60
        )
        assert r.status_code == 413
        assert "a JSON body (API_JSON_MAX_MB) may be at most 1 MiB" in r.json()["error"]["message"]
        assert session.get(f"{api}/runs/{run_id}/files/", timeout=30).json() == []
