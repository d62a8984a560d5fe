"""Runs never stay "Running" after whatever executed them died: heartbeats and the monitor."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from runs import monitor
from runs.models import Run
from tests.conftest import api_client, make_run, token_for

S = Run.Status


def events_of(run: Run) -> list[tuple[str, str]]:
    return [(e.from_status, e.to_status) for e in run.events.all()]


def test_a_silent_run_goes_not_responding_then_fails_with_lost_contact(
    db: Any, settings: Any, workspace: Any, alice: Any
) -> None:
    settings.RUNS_HEARTBEAT_TIMEOUT, settings.RUNS_LOST_CONTACT_AFTER = 60, 600
    run = make_run(workspace, alice)
    start = run.last_heartbeat_at
    assert monitor.sweep(now=start + timedelta(seconds=59)) == 0
    assert monitor.sweep(now=start + timedelta(seconds=61)) == 1
    run.refresh_from_db()
    assert run.status == S.NOT_RESPONDING
    assert monitor.sweep(now=start + timedelta(seconds=659)) == 0
    assert monitor.sweep(now=start + timedelta(seconds=661)) == 1
    run.refresh_from_db()
    assert run.status == S.FAILED
    assert run.error_code == "LostContact"
    assert "lost contact" in run.error_message and "660 seconds" in run.error_message
    assert events_of(run) == [(S.NOT_STARTED, S.RUNNING), (S.RUNNING, S.NOT_RESPONDING), (S.NOT_RESPONDING, S.FAILED)]


def test_a_heartbeat_brings_a_not_responding_run_back(db: Any, settings: Any, workspace: Any, alice: Any) -> None:
    settings.RUNS_HEARTBEAT_TIMEOUT = 60
    run = make_run(workspace, alice)
    monitor.sweep(now=run.last_heartbeat_at + timedelta(seconds=61))
    response = api_client(alice).post(f"/api/v1/runs/{run.run_id}/heartbeat/")
    assert response.status_code == 200 and response.json() == {"status": "Running"}
    run.refresh_from_db()
    assert run.status == S.RUNNING
    assert events_of(run)[-2:] == [(S.RUNNING, S.NOT_RESPONDING), (S.NOT_RESPONDING, S.RUNNING)]
    # and the fresh heartbeat holds off the next sweep
    assert monitor.sweep(now=timezone.now() + timedelta(seconds=30)) == 0


def test_the_monitor_never_touches_queued_or_ended_runs(db: Any, settings: Any, workspace: Any, alice: Any) -> None:
    settings.RUNS_HEARTBEAT_TIMEOUT, settings.RUNS_LOST_CONTACT_AFTER = 1, 1
    queued = make_run(workspace, alice, type="script", script="train.py", status=S.QUEUED)  # no worker yet: it waits
    ended = make_run(workspace, alice)
    ended.transition(S.COMPLETED)
    assert monitor.sweep(now=timezone.now() + timedelta(days=1)) == 0
    queued.refresh_from_db()
    ended.refresh_from_db()
    assert (queued.status, ended.status) == (S.QUEUED, S.COMPLETED)


def test_a_cancel_nobody_carries_out_ends_canceled(db: Any, settings: Any, workspace: Any, alice: Any) -> None:
    settings.RUNS_HEARTBEAT_TIMEOUT, settings.RUNS_LOST_CONTACT_AFTER = 60, 600
    run = make_run(workspace, alice, type="script", script="train.py", status=S.RUNNING)
    run.request_cancel()
    assert run.status == S.CANCEL_REQUESTED
    monitor.sweep(now=run.last_heartbeat_at + timedelta(seconds=661))
    run.refresh_from_db()
    assert run.status == S.CANCELED


def test_the_sweep_does_not_mark_a_run_that_just_sent_a_heartbeat(
    db: Any, settings: Any, workspace: Any, alice: Any
) -> None:
    """The swap also checks the run is still silent: a heartbeat between the sweep's read and its
    write wins."""
    settings.RUNS_HEARTBEAT_TIMEOUT = 60
    run = make_run(workspace, alice)
    stale_copy = Run.objects.get(pk=run.pk)
    run.heartbeat()
    later = run.last_heartbeat_at + timedelta(seconds=30)
    from django.db.models import Q

    assert (
        stale_copy.transition(S.NOT_RESPONDING, only_if=Q(last_heartbeat_at__lt=later - timedelta(seconds=60))) is False
    )
    run.refresh_from_db()
    assert run.status == S.RUNNING


KILLED = """
import os, signal
from runs.sdk import Experiment, Workspace
run = Experiment(Workspace.from_config(), "crash").start_logging(run_id="killed-run")
run.log("loss", 0.5)
run.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""

QUIET_THEN_EXITS = """
import time
from runs.sdk import Experiment, Workspace
run = Experiment(Workspace.from_config(), "quiet").start_logging(run_id="quiet-run")
time.sleep(3)  # logs nothing for three heartbeat timeouts
# and exits without complete()
"""

RAISES = """
from runs.sdk import Experiment, Workspace
run = Experiment(Workspace.from_config(), "raises").start_logging(run_id="raising-run")
raise RuntimeError("diverged")
"""


def run_script(code: str, live_server: Any, user: Any, tmp_path: Any) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "STUDIO_URL": live_server.url,
        "STUDIO_TOKEN": token_for(user),
        "STUDIO_HEARTBEAT_INTERVAL": "0.2",
    }
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


def wait_for_status(run_id: str, status: str, timeout: float = 20) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = Run.objects.get(run_id=run_id)
        if run.status == status:
            return run
        time.sleep(0.1)
    raise AssertionError(f"{run_id} is {Run.objects.get(run_id=run_id).status}, not {status}")


def test_a_script_killed_with_sigkill_leaves_no_run_running(
    live_server: Any, alice: Any, workspace: Any, monitor: Any, tmp_path: Any
) -> None:
    result = run_script(KILLED, live_server, alice, tmp_path)
    assert result.returncode == -9
    run = wait_for_status("killed-run", S.FAILED)
    assert run.error_code == "LostContact"
    assert events_of(run) == [(S.NOT_STARTED, S.RUNNING), (S.RUNNING, S.NOT_RESPONDING), (S.NOT_RESPONDING, S.FAILED)]
    assert run.metric_values() == {"loss": 0.5}


def test_sdk_heartbeats_keep_a_quiet_run_alive_and_exit_completes_it(
    live_server: Any, alice: Any, workspace: Any, monitor: Any, tmp_path: Any
) -> None:
    result = run_script(QUIET_THEN_EXITS, live_server, alice, tmp_path)
    assert result.returncode == 0, result.stderr
    run = Run.objects.get(run_id="quiet-run")
    assert run.status == S.COMPLETED
    assert events_of(run) == [(S.NOT_STARTED, S.RUNNING), (S.RUNNING, S.COMPLETED)]  # never NotResponding


def test_an_uncaught_exception_fails_the_runs_left_open(
    live_server: Any, alice: Any, workspace: Any, tmp_path: Any
) -> None:
    result = run_script(RAISES, live_server, alice, tmp_path)
    assert result.returncode == 1 and "RuntimeError: diverged" in result.stderr
    run = Run.objects.get(run_id="raising-run")
    assert (run.status, run.error_code, run.error_message) == (S.FAILED, "RuntimeError", "RuntimeError: diverged")


@pytest.mark.parametrize("interval", [0.05])
def test_the_background_monitor_starts_once_and_stops(settings: Any, db: Any, interval: float) -> None:
    first = monitor.start_in_background(interval)
    assert monitor.start_in_background(interval) is first and first.is_alive()
    monitor.stop()
    assert not first.is_alive()
