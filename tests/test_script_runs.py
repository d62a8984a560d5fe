"""Script runs, really executed: submit, live logs, exit codes, cancel that stops the whole
process tree, snapshots, and Run.get_context(). Each test submits real scripts to the live server;
the SDK starts a detached runner process for each."""

from __future__ import annotations

import os
import textwrap
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from runs import sdk
from runs.models import Run as RunModel
from runs.sdk import Experiment, Run, ScriptRunConfig

S = RunModel.Status


def write(folder: Path, name: str, code: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code))
    return path


def wait_until(predicate: Any, timeout: float = 30, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _if_holds(data: bytes, needle: bytes) -> bytes | None:
    return data if needle in data else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead too


def test_a_submitted_script_runs_logs_and_completes(ws: sdk.Workspace, tmp_path: Path, capsys: Any) -> None:
    write(
        tmp_path,
        "train.py",
        """
        import argparse, sys
        from runs.sdk import Run
        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float)
        args = parser.parse_args()
        run = Run.get_context()
        print(f"training with lr={args.lr} in run {run.id}")
        for step in range(3):
            run.log("loss", 1.0 / (step + 1))
        print("a warning", file=sys.stderr)
        import os
        os.makedirs("outputs", exist_ok=True)
        open("outputs/model.txt", "w").write("weights")
        """,
    )
    write(tmp_path, "helpers/util.py", "X = 1\n")
    exp = Experiment(ws, "scripts")
    config = ScriptRunConfig(source_directory=str(tmp_path), script="train.py", arguments=["--lr", 0.01])
    run = exp.submit(config, tags={"team": "vision"})
    assert run.get_details()["type"] == "script" and run.tags == {"team": "vision"}

    details = run.wait_for_completion(show_output=True)
    printed = capsys.readouterr().out
    assert details["status"] == "Completed", details
    assert f"training with lr=0.01 in run {run.id}" in printed
    assert "a warning" in printed
    log = RunModel.objects.get(run_id=run.id).logs.get(path="logs/std_log.txt")
    data = b"".join(log.iter_bytes())
    assert [data[a:b] for a, b in log.stderr_ranges] == [b"a warning\n"]  # the runner said which bytes were stderr
    assert run.get_metrics() == {"loss": [1.0, 0.5, 1 / 3]}
    assert "outputs/model.txt" in run.get_file_names()
    assert "logs/std_log.txt" in details["logFiles"]
    statuses = [e.to_status for e in RunModel.objects.get(run_id=run.id).events.all()]
    assert statuses == [S.QUEUED, S.STARTING, S.PREPARING, S.RUNNING, S.FINALIZING, S.COMPLETED]

    snapshot = run.restore_snapshot(tmp_path / "restored.zip")
    assert sorted(zipfile.ZipFile(snapshot).namelist()) == ["helpers/util.py", "train.py"]


def test_a_failing_script_fails_its_run_with_the_exit_code_and_stderr(ws: sdk.Workspace, tmp_path: Path) -> None:
    write(tmp_path, "bad.py", "import sys\nprint('about to fail')\nsys.exit('the data is corrupt')\n")
    run = Experiment(ws, "scripts").submit(ScriptRunConfig(source_directory=str(tmp_path), script="bad.py"))
    with pytest.raises(sdk.ActivityFailedException, match="the script exited with code 1"):
        run.wait_for_completion()
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed"
    assert details["error"]["error"]["code"] == "ScriptFailed"
    assert "the data is corrupt" in details["error"]["error"]["details"]


def test_output_reaches_readers_while_the_script_runs(ws: sdk.Workspace, tmp_path: Path) -> None:
    write(
        tmp_path,
        "slow.py",
        """
        import time
        for tick in range(100):
            print(f"tick {tick}", flush=True)
            time.sleep(0.1)
        """,
    )
    run = Experiment(ws, "scripts").submit(ScriptRunConfig(source_directory=str(tmp_path), script="slow.py"))
    wait_until(lambda: run.get_status() == "Running", what="Running")
    started = time.monotonic()
    wait_until(lambda: b"tick 5" in run._read_log("logs/std_log.txt", 0)[0], timeout=10, what="output")
    assert time.monotonic() - started < 5  # a little after it was printed, while the script still runs
    assert run.get_status() == "Running"
    run.cancel()
    run.wait_for_completion(raise_on_error=False)


def test_cancel_stops_the_script_and_every_process_it_started(ws: sdk.Workspace, tmp_path: Path) -> None:
    write(
        tmp_path,
        "spawner.py",
        """
        import subprocess, time
        child = subprocess.Popen(["sleep", "300"])                          # same process group
        escaped = subprocess.Popen(["sleep", "301"], start_new_session=True)  # left the group
        print(f"pids {child.pid} {escaped.pid}", flush=True)
        while True:
            time.sleep(1)
        """,
    )
    run = Experiment(ws, "scripts").submit(ScriptRunConfig(source_directory=str(tmp_path), script="spawner.py"))
    line = wait_until(
        lambda: b"pids" in run._read_log("logs/std_log.txt", 0)[0] and run._read_log("logs/std_log.txt", 0)[0],
        what="pids",
    )
    pids = [int(p) for p in line.decode().split("pids")[1].split()[:2]]
    assert all(alive(pid) for pid in pids)
    run.cancel()
    assert run.get_status() in ("CancelRequested", "Canceled")
    details = run.wait_for_completion()
    assert details["status"] == "Canceled"
    assert not any(alive(pid) for pid in pids)
    statuses = [e.to_status for e in RunModel.objects.get(run_id=run.id).events.all()]
    assert statuses[-2:] == [S.CANCEL_REQUESTED, S.CANCELED]


def test_a_script_that_ignores_sigterm_is_killed_after_the_grace_period(ws: sdk.Workspace, tmp_path: Path) -> None:
    write(
        tmp_path,
        "stubborn.py",
        """
        import signal, time
        signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
        print("ready", flush=True)
        while True:
            time.sleep(0.1)
        """,
    )
    config = ScriptRunConfig(source_directory=str(tmp_path), script="stubborn.py", cancel_grace_seconds=1)
    run = Experiment(ws, "scripts").submit(config)
    wait_until(lambda: b"ready" in run._read_log("logs/std_log.txt", 0)[0], what="ready")
    run.cancel()
    assert run.wait_for_completion()["status"] == "Canceled"
    assert b"ignoring SIGTERM" in run._read_log("logs/std_log.txt", 0)[0]  # it got TERM first


def test_a_script_that_ends_its_own_run_keeps_that_status(ws: sdk.Workspace, tmp_path: Path) -> None:
    write(
        tmp_path,
        "selfish.py",
        "import sys\nfrom runs.sdk import Run\nRun.get_context().complete()\nsys.exit(4)\n",
    )
    run = Experiment(ws, "scripts").submit(ScriptRunConfig(source_directory=str(tmp_path), script="selfish.py"))
    assert run.wait_for_completion()["status"] == "Completed"


def test_logs_of_any_size_binary_noise_and_partial_lines_arrive_whole(ws: sdk.Workspace, tmp_path: Path) -> None:
    write(
        tmp_path,
        "noisy.py",
        """
        import os, sys, hashlib
        data = b"".join(os.urandom(1024) + b"partial line without newline" for _ in range(5 * 1024))
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        open("digest.txt", "w").write(hashlib.sha256(data).hexdigest())
        os.makedirs("outputs", exist_ok=True)
        os.replace("digest.txt", "outputs/digest.txt")
        """,
    )
    run = Experiment(ws, "scripts").submit(ScriptRunConfig(source_directory=str(tmp_path), script="noisy.py"))
    assert run.wait_for_completion()["status"] == "Completed"
    import hashlib

    logged = run.download_file("logs/std_log.txt", tmp_path / "log.bin").read_bytes()
    digest = run.download_file("outputs/digest.txt", tmp_path / "digest.txt").read_text()
    assert len(logged) == 5 * 1024 * (1024 + 28)  # about 5 MiB, more than one chunk
    assert hashlib.sha256(logged).hexdigest() == digest


def test_a_script_can_submit_a_child_and_wait_for_it(ws: sdk.Workspace, tmp_path: Path) -> None:
    write(tmp_path, "child.py", "from runs.sdk import Run\nRun.get_context().log('child metric', 7)\n")
    write(
        tmp_path,
        "parent.py",
        """
        from runs.sdk import Run, ScriptRunConfig
        run = Run.get_context()
        child = run.submit_child(ScriptRunConfig(source_directory=".", script="child.py"))
        details = child.wait_for_completion()
        print("child ended", details["status"])
        """,
    )
    run = Experiment(ws, "scripts").submit(ScriptRunConfig(source_directory=str(tmp_path), script="parent.py"))
    assert run.wait_for_completion()["status"] == "Completed"
    (child,) = run.get_children()
    assert child.get_status() == "Completed" and child.get_metrics() == {"child metric": 7}
    assert b"child ended Completed" in run._read_log("logs/std_log.txt", 0)[0]


def test_the_snapshot_leaves_out_what_studioignore_says_and_the_token(ws: sdk.Workspace, tmp_path: Path) -> None:
    write(tmp_path, "train.py", "print('ok')\n")
    write(tmp_path, "data/big.bin", "x" * 1000)
    write(tmp_path, "notes.md", "kept\n")
    write(tmp_path, ".gitignore", "notes.md\n")  # .studioignore wins over .gitignore
    write(tmp_path, ".studioignore", "data/\n")
    write(tmp_path, ".studio/config.json", '{"token": "secret"}')
    write(tmp_path, ".git/HEAD", "ref: refs/heads/main\n")
    run = Experiment(ws, "scripts").submit(ScriptRunConfig(source_directory=str(tmp_path), script="train.py"))
    run.wait_for_completion()
    names = sorted(zipfile.ZipFile(run.restore_snapshot(tmp_path)).namelist())
    assert names == [".gitignore", ".studioignore", "notes.md", "train.py"]


def test_bad_submissions_are_refused_and_leave_nothing_behind(
    ws: sdk.Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    write(tmp_path, "train.py", "print('ok')\n")
    exp = Experiment(ws, "scripts")
    with pytest.raises(sdk.UserErrorException, match="no script 'missing.py'"):
        exp.submit(ScriptRunConfig(source_directory=str(tmp_path), script="missing.py"))
    with pytest.raises(sdk.UserErrorException, match="unknown compute target 'gpu-cluster'"):
        exp.submit(ScriptRunConfig(source_directory=str(tmp_path), script="train.py", compute_target="gpu-cluster"))
    monkeypatch.setenv("STUDIO_SNAPSHOT_MAX_MB", "0")
    with pytest.raises(sdk.UserErrorException, match="holds more than 0 MiB"):
        exp.submit(ScriptRunConfig(source_directory=str(tmp_path), script="train.py"))
    assert RunModel.objects.count() == 0
    monkeypatch.delenv("STUDIO_SNAPSHOT_MAX_MB")
    settings.SNAPSHOT_MAX_BYTES = 10  # the server's own cap
    with pytest.raises(sdk.UserErrorException, match=r"a snapshot \(SNAPSHOT_MAX_MB\) may be at most 10 bytes"):
        exp.submit(ScriptRunConfig(source_directory=str(tmp_path), script="train.py"))
    (refused,) = RunModel.objects.all()
    assert (refused.status, refused.error_code) == (S.FAILED, "SubmitFailed")  # not left NotStarted


def test_cancel_on_an_ended_script_run_is_a_conflict(ws: sdk.Workspace, tmp_path: Path) -> None:
    write(tmp_path, "train.py", "print('ok')\n")
    run = Experiment(ws, "scripts").submit(ScriptRunConfig(source_directory=str(tmp_path), script="train.py"))
    run.wait_for_completion()
    with pytest.raises(sdk.ConflictException, match="already ended"):
        run.cancel()
    assert run.get_status() == "Completed"


def test_get_context_outside_a_run_is_offline_and_never_fails(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STUDIO_RUN_ID", raising=False)
    run = Run.get_context()
    assert isinstance(run, sdk.OfflineRun) and run.get_status() == "Running"
    run.log("loss", 0.5)
    run.tag("team", "vision")
    run.upload_file("outputs/x", "nowhere")
    run.complete()
    out = capsys.readouterr().out
    assert "[offline run] loss = 0.5" in out and "[offline run] tag('team', 'vision')" in out
    assert run.get_status() == "Completed"
    with pytest.raises(sdk.UserErrorException):
        Run.get_context(allow_offline=False)


SUBMIT_AND_LEAVE = """
from runs.sdk import Experiment, ScriptRunConfig, Workspace
run = Experiment(Workspace.from_config(), "scripts").submit(ScriptRunConfig(source_directory=".", script="late.py"))
print(run.id)
"""


def test_a_run_outlives_the_process_that_submitted_it(
    live_server: Any, alice: Any, workspace: Any, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from tests.conftest import token_for

    write(tmp_path, "late.py", "import time\ntime.sleep(2)\nprint('still here')\n")
    env = {**os.environ, "STUDIO_URL": live_server.url, "STUDIO_TOKEN": token_for(alice)}
    result = subprocess.run(
        [sys.executable, "-c", SUBMIT_AND_LEAVE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    assert RunModel.objects.get(run_id=run_id).status not in RunModel.TERMINAL  # the submitter is gone
    run = wait_until(lambda: RunModel.objects.filter(run_id=run_id, status=S.COMPLETED).first(), what="Completed")
    assert run.read_log("logs/std_log.txt")[0] == b"still here\n"
