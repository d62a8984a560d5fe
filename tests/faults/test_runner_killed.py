"""A runner SIGKILLed, on the local target and inside a Celery worker: the run goes NotResponding, then
Failed, and no process of its script is left, even one that left the script's session."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import tests.test_compute_targets as compute_targets
from runs import sdk
from runs.models import Run as RunModel
from runs.sdk import Experiment, ScriptRunConfig
from tests.test_script_runs import alive, wait_until, write

S = RunModel.Status
broker, target, start_worker = compute_targets.broker, compute_targets.target, compute_targets.start_worker

# The script starts a child, which starts a grandchild in a session of its own: a kill of the script's
# process group does not reach it, and once the runner is dead nothing is its parent but init.
CHILD = """
import subprocess, time
grandchild = subprocess.Popen(["sleep", "301"], start_new_session=True)
print(grandchild.pid, flush=True)
time.sleep(300)
"""
SPAWNER = f"""
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", {CHILD!r}], stdout=subprocess.PIPE, text=True)
grandchild = int(child.stdout.readline())
print("pids", os.getppid(), os.getpid(), child.pid, grandchild, flush=True)
time.sleep(300)
"""


def processes_of(run_id: str) -> list[int]:
    """Live processes whose environment names the run, as the runner gave it to the script."""
    needle, found = f"STUDIO_RUN_ID={run_id}".encode(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if needle in (entry / "environ").read_bytes().split(b"\0") and alive(int(entry.name)):
                    found.append(int(entry.name))
    return found


def pids_from_log(run: sdk.Run) -> list[int]:
    line = wait_until(
        lambda: b"pids" in (data := run._read_log("logs/std_log.txt", 0)[0]) and data, what="the script's pids"
    )
    return [int(pid) for pid in line.split(b"pids", 1)[1].split()[:4]]


def kill_leftovers(run_id: str) -> None:
    for pid in processes_of(run_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def assert_lost_and_nothing_left(run_id: str, script_pids: list[int]) -> None:
    run = wait_until(lambda: RunModel.objects.filter(run_id=run_id, status=S.FAILED).first(), what="Failed")
    left = processes_of(run_id)  # right when the run is marked lost
    assert run.error_code == "LostContact"
    assert [e.to_status for e in run.events.all()][-2:] == [S.NOT_RESPONDING, S.FAILED]
    assert left == []
    assert [pid for pid in script_pids if alive(pid)] == []


def test_a_runner_killed_on_the_local_target_leaves_no_process_of_its_run(
    ws: sdk.Workspace, monitor: Any, tmp_path: Path
) -> None:
    write(tmp_path, "spawner.py", SPAWNER)
    run = Experiment(ws, "faults").submit(ScriptRunConfig(source_directory=str(tmp_path), script="spawner.py"))
    try:
        runner, *script_pids = pids_from_log(run)
        assert b"runs.runner" in Path(f"/proc/{runner}/cmdline").read_bytes()
        assert sorted(processes_of(run.id)) == sorted(script_pids)
        os.kill(runner, signal.SIGKILL)
        assert_lost_and_nothing_left(run.id, script_pids)
    finally:
        kill_leftovers(run.id)


def test_a_celery_worker_killed_mid_run_leaves_the_run_failed_and_no_process_of_it(
    ws: sdk.Workspace,
    target: str,
    start_worker: Any,
    monitor: Any,
    tmp_path: Path,
) -> None:
    worker = start_worker(target)
    write(tmp_path, "src/spawner.py", SPAWNER)
    config = ScriptRunConfig(source_directory=str(tmp_path / "src"), script="spawner.py", compute_target=target)
    run = Experiment(ws, "faults").submit(config)
    try:
        _, *script_pids = pids_from_log(run)
        assert sorted(processes_of(run.id)) == sorted(script_pids)
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its runner die at once; no goodbye
        assert_lost_and_nothing_left(run.id, script_pids)
    finally:
        kill_leftovers(run.id)
