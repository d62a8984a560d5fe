"""A script logging through ``start_logging()`` SIGKILLed mid-stream: the run goes NotResponding, then
Failed, within the configured heartbeat timeouts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

from django.conf import settings

from runs.models import Run
from tests.conftest import token_for
from tests.test_script_runs import wait_until

S = Run.Status

LOGGING_FOREVER = """
import itertools, time
from runs.sdk import Experiment, Workspace
run = Experiment(Workspace.from_config(), "faults").start_logging(run_id="killed-while-logging")
for step in itertools.count():
    run.log("loss", 1 / (step + 1))
    if step == 0:
        run.flush()
        print("logging", flush=True)
    time.sleep(0.01)
"""


def test_a_logging_script_killed_mid_stream_ends_failed_within_the_timeouts(
    live_server: Any, alice: Any, workspace: Any, monitor: Any, tmp_path: Any
) -> None:
    env = {
        **os.environ,
        "STUDIO_URL": live_server.url,
        "STUDIO_TOKEN": token_for(alice),
        "STUDIO_HEARTBEAT_INTERVAL": "0.2",
    }
    script = subprocess.Popen(
        [sys.executable, "-c", LOGGING_FOREVER], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert script.stdout.readline() == "logging\n"
        time.sleep(0.5)  # heartbeats and batches in flight
        script.kill()
        killed_at = time.monotonic()
        assert script.wait(timeout=10) == -signal.SIGKILL
    finally:
        script.kill()
    run = wait_until(lambda: Run.objects.filter(run_id="killed-while-logging", status=S.FAILED).first(), what="Failed")
    took = time.monotonic() - killed_at

    # Silent for HEARTBEAT_TIMEOUT: NotResponding; for LOST_CONTACT_AFTER more: Failed. The sweep runs every
    # 0.1 s; the rest of the allowance is this machine's scheduling under load.
    allowed = settings.RUNS_HEARTBEAT_TIMEOUT + settings.RUNS_LOST_CONTACT_AFTER + 2.0
    assert took < allowed, f"Failed {took:.1f} s after the kill; the timeouts allow {allowed} s"
    assert run.error_code == "LostContact"
    silent, lost = list(run.events.all())[-2:]
    assert (silent.to_status, lost.to_status) == (S.NOT_RESPONDING, S.FAILED)
    assert silent.at - run.last_heartbeat_at >= timedelta(seconds=settings.RUNS_HEARTBEAT_TIMEOUT)  # not sooner
    assert run.metrics.filter(name="loss").exists()
