"""A run's studio link (the SDK's get_portal_url and the "Web View" line of wait_for_completion) opens
its page in the studio, not the JSON API; `studio run show` gives the error flat."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from runs import sdk
from runs.cli import main

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_portal_url_is_the_runs_studio_page(ws: sdk.Workspace, live_server: Any, client: Any, alice: Any) -> None:
    run = sdk.Experiment(ws, "links").start_logging()
    url = run.get_portal_url()
    assert url == f"{live_server.url}/w/default/runs/{run.id}/"
    client.force_login(alice)
    page = client.get(url.removeprefix(live_server.url))
    assert page.status_code == 200 and b'id="run-live"' in page.content
    run.complete()
    said = io.StringIO()
    run.wait_for_completion(show_output=True, stream=said)
    assert f"Web View: {url}" in said.getvalue()
    assert requests.get(url, timeout=10, allow_redirects=False).status_code == 302  # to the login page


def test_run_show_gives_the_error_flat(attached: Path, capsys: Any) -> None:
    run = sdk.Experiment(sdk.Workspace.from_config(), "links").start_logging()
    run.fail(error_details=RuntimeError("out of memory"))
    capsys.readouterr()
    assert main(["run", "show", "-r", run.id, "--query", "error"]) == 0
    error = json.loads(capsys.readouterr().out)
    assert error["code"] == "RuntimeError" and error["message"].endswith("out of memory")
    assert "error" not in error and "time" in error
    assert run.get_details()["error"]["error"]["code"] == "RuntimeError"  # the SDK keeps Azure's shape
