"""Execute one script run and report on it over the REST API: ``python -m runs.runner RUN_ID``.

The same supervisor serves the ``local`` target (started detached by the SDK) and the Celery
workers of named compute targets. It talks to the studio only through the API (the SDK's client),
so it runs on any machine that can reach the studio.

1. Takes the run: Queued -> Starting. Someone else took or canceled it first: nothing to do.
2. Fetches the snapshot and unzips it into a fresh folder: Preparing, then Running.
3. Starts a watchdog (``runs.watchdog``), then the script in its own process group, with
   STUDIO_RUN_ID, STUDIO_URL, STUDIO_TOKEN and STUDIO_WORKSPACE set, so ``Run.get_context()`` finds
   its run, and STUDIO_RUN_TREE, which marks every process it starts: if the runner dies, however it
   dies, the watchdog ends them.
4. While it runs: stdout and stderr go to ``logs/std_log.txt``, shipped every half second by byte
   offset (a chunk sent twice is stored once); a heartbeat every second, whose answer tells of a
   cancel request. On cancel: SIGTERM to the whole process group, SIGKILL after the run's grace
   period. System metrics (``runs.sdk.system_metrics``) of the script's process tree are sampled
   from here, not from the script (STUDIO_SYSTEM_METRICS_BY_RUNNER tells its SDK so), until the
   script exits or its run ends; their last points are sent before the run is ended.
5. When the script is gone, whatever it left behind goes too: the process group, and (the runner
   being a child subreaper) orphans that left the group.
6. Ships the rest of the output, uploads ``outputs/``, and ends the run: Canceled after a cancel;
   otherwise Finalizing, then Completed for exit code 0 or Failed with the code and the tail of
   stderr. A run the script ended itself keeps its status.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from runs import wire
from runs.sdk import system_metrics
from runs.sdk._http import Client, path_quote
from runs.sdk._sender import sender
from runs.sdk._snapshot import extract_snapshot
from runs.sdk.exceptions import ConflictException, ServiceException, StudioException
from runs.sdk.workspace import Workspace
from runs.watchdog import MARKER_VARIABLE

log = logging.getLogger("runs.runner")

LOG_PATH = "logs/std_log.txt"
CHUNK = 1024 * 1024
SHIP_EVERY = 0.5
HEARTBEAT_EVERY = 1.0
STDERR_TAIL_BYTES = 4096
TERMINAL = ("Completed", "Failed", "Canceled")


class Supervisor:
    def __init__(self, workspace: Workspace, run_id: str) -> None:
        self.workspace = workspace
        self.client: Client = workspace._client
        self.run_id = run_id
        self.path = f"runs/{path_quote(run_id)}/"
        self.shipped = 0
        self.stderr_tail = bytearray()
        self.stderr_ranges: list[tuple[int, int]] = []  # of the log: what came from stderr
        self._write_lock = threading.Lock()

    # -- the API --

    def _move(self, status: str, **body: Any) -> bool:
        """Change the run's status; False if the state machine says no (it was canceled, say)."""
        try:
            self.client.post(self.path + "status/", {"status": status, **body}, retry_unsent_only=False)
            return True
        except ConflictException as error:
            log.info("run %s: cannot become %s: %s", self.run_id, status, error.message)
            return False

    def _status(self) -> str:
        return self.client.get(self.path)["status"]

    def _heartbeat(self) -> str | None:
        try:
            return self.client.request("POST", self.path + "heartbeat/", retries=0).json()["status"]
        except (StudioException, requests.RequestException) as error:
            log.warning("run %s: heartbeat failed: %s", self.run_id, error)
            return None

    # -- the run --

    def run(self) -> str | None:
        """Execute the run; returns its final status, or None if it was not ours to run."""
        details = self.client.get(self.path)
        if details["status"] != "Queued" or not self._move("Starting"):
            log.info("run %s is %s: not starting it", self.run_id, details["status"])
            return None
        workdir = Path(tempfile.mkdtemp(prefix="studio-run-"))
        try:
            source = workdir / "src"
            archive = self.client.download(self.path + "snapshot/", workdir / "snapshot.zip")
            extract_snapshot(archive, source)
            if not (self._move("Preparing") and self._move("Running")):
                return self._status()
            returncode, canceled = self._execute(source, workdir / "std_log.txt", details)
            return self._finish(source, returncode, canceled)
        except Exception as error:
            log.exception("run %s: the runner failed", self.run_id)
            with contextlib.suppress(StudioException, requests.RequestException):
                self._move("Failed", error={"code": "RunnerError", "message": f"the runner failed: {error}"})
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _execute(self, source: Path, log_file: Path, details: dict[str, Any]) -> tuple[int, bool]:
        grace = details.get("cancelGraceSeconds", 10)
        marker = f"{self.run_id}.{secrets.token_hex(4)}"  # this execution's, should another studio share the id
        env = {
            **os.environ,
            "STUDIO_RUN_ID": self.run_id,
            MARKER_VARIABLE: marker,
            "STUDIO_URL": self.workspace.url,
            "STUDIO_TOKEN": self.workspace._token,
            "STUDIO_WORKSPACE": self.workspace.name,
            "PYTHONUNBUFFERED": "1",
            system_metrics.RUNNER_VARIABLE: self.run_id,  # sampled from here: not again from the script
        }
        script = source / details["script"]
        with log_file.open("ab") as output, _watchdog(marker, grace) as watchdog:
            process = subprocess.Popen(
                [sys.executable, str(script), *details.get("arguments", [])],
                cwd=source,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group: a cancel reaches everything it starts
            )
            readers = [
                threading.Thread(target=self._copy, args=(process.stdout, output, False), daemon=True),
                threading.Thread(target=self._copy, args=(process.stderr, output, True), daemon=True),
            ]
            for reader in readers:
                reader.start()
            sampling = system_metrics.start_for_run(self.client, self.run_id, pid=process.pid)
            canceled_at: float | None = None
            next_heartbeat = 0.0
            while process.poll() is None:
                now = time.monotonic()
                if now >= next_heartbeat:
                    next_heartbeat = now + HEARTBEAT_EVERY
                    status = self._heartbeat()
                    if status in TERMINAL:  # the script ended its run itself: it takes no more points
                        system_metrics.stop_for_run(self.run_id)
                    if canceled_at is None and status == "CancelRequested":
                        canceled_at = now
                        log.info("run %s: cancel requested; SIGTERM to the process group", self.run_id)
                        _signal_group(process.pid, signal.SIGTERM)
                if canceled_at is not None and now - canceled_at >= grace:
                    _signal_group(process.pid, signal.SIGKILL)
                self._ship(log_file)
                time.sleep(SHIP_EVERY)
            system_metrics.stop_for_run(self.run_id)
            _stop_everything_left(process.pid, spare=watchdog)
            for reader in readers:
                reader.join(timeout=10)
        self._ship(log_file, final=True)
        if sampling is not None and not sender().flush(self.run_id, timeout=60):
            log.warning("run %s: system metrics could not all be sent before the run ends", self.run_id)
        return process.returncode, canceled_at is not None

    def _copy(self, pipe: Any, output: Any, is_stderr: bool) -> None:
        """Copy a pipe into the log as bytes arrive: binary noise and partial lines included."""
        descriptor = pipe.fileno()
        while data := os.read(descriptor, 65536):
            with self._write_lock:
                start = output.tell()
                output.write(data)
                output.flush()
                if is_stderr:
                    self.stderr_tail += data
                    del self.stderr_tail[:-STDERR_TAIL_BYTES]
                    if self.stderr_ranges and self.stderr_ranges[-1][1] == start:
                        self.stderr_ranges[-1] = (self.stderr_ranges[-1][0], start + len(data))
                    else:
                        self.stderr_ranges.append((start, start + len(data)))
        pipe.close()

    def _stderr_within(self, start: int, end: int) -> list[tuple[int, int]]:
        """The stderr ranges of the log's bytes [start, end), cut to them."""
        with self._write_lock:
            return [(max(a, start), min(b, end)) for a, b in self.stderr_ranges if a < end and b > start]

    def _ship(self, log_file: Path, *, final: bool = False) -> None:
        """Send the log's new bytes, a chunk at a time, from where the studio's copy ends."""
        attempts = 0
        while (size := log_file.stat().st_size) > self.shipped:
            with log_file.open("rb") as file:
                file.seek(self.shipped)
                data = file.read(min(CHUNK, size - self.shipped))
            try:
                stderr = self._stderr_within(self.shipped, self.shipped + len(data))
                answer = self.client.request(
                    "POST",
                    self.path + f"logs/{LOG_PATH}",
                    params={"offset": self.shipped, **({"stderr": wire.encode_ranges(stderr)} if stderr else {})},
                    data=data,
                    retries=0,
                    retry_unsent_only=False,
                )
                self.shipped = answer.json()["size"]
                with self._write_lock:  # the ranges shipped are the studio's now
                    self.stderr_ranges = [r for r in self.stderr_ranges if r[1] > self.shipped]
            except ConflictException as error:  # the studio has another length: go on from there
                self.shipped = min(int(error.details.get("size", self.shipped)), size)
            except (ServiceException, requests.RequestException) as error:
                attempts += 1
                if not final or attempts > 30:
                    log.warning("run %s: cannot ship output yet: %s", self.run_id, error)
                    return
                time.sleep(min(5.0, 0.25 * attempts))

    def _finish(self, source: Path, returncode: int, canceled: bool) -> str:
        status = self._status()
        if status in TERMINAL:  # the script ended its run itself
            return status
        if canceled or status == "CancelRequested":
            self._upload_outputs(source)
            self._move("Canceled")
            return self._status()
        self._move("Finalizing")
        self._upload_outputs(source)
        if returncode == 0:
            self._move("Completed")
        else:
            how = f"exited with code {returncode}" if returncode > 0 else f"was killed by signal {-returncode}"
            tail = self.stderr_tail.decode(errors="replace")
            self._move(
                "Failed",
                error={"code": "ScriptFailed", "message": f"the script {how}", "details": tail},
            )
        return self._status()

    def _upload_outputs(self, source: Path) -> None:
        """Azure ML's convention: what the script wrote to ./outputs is kept with the run."""
        outputs = source / "outputs"
        if not outputs.is_dir():
            return
        for file in sorted(p for p in outputs.rglob("*") if p.is_file()):
            name = file.relative_to(source).as_posix()
            try:
                with file.open("rb") as content:
                    self.client.put(self.path + f"files/{path_quote(name)}", data=content, retry_unsent_only=True)
            except ConflictException:
                pass  # the script uploaded it itself


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@contextlib.contextmanager
def _watchdog(marker: str, grace: float) -> Iterator[int]:
    """Run ``runs.watchdog`` for the block, in a session of its own; yields its pid. It reads a pipe whose
    write end only this process holds (pipes are not inherited), so it sees end-of-file when the block
    ends or when we die, and ends whatever carries the marker (normally nothing by then)."""
    read_end, write_end = os.pipe()
    # A runner started by another run's script carries that run's marker; its watchdog must not, or the
    # other run's watchdog would end it before it could end this run's processes.
    env = {key: value for key, value in os.environ.items() if key != MARKER_VARIABLE}
    try:
        watchdog = subprocess.Popen(
            [sys.executable, "-m", "runs.watchdog", marker, str(grace)],
            stdin=read_end,
            env=env,
            start_new_session=True,  # a kill of the runner's (or its Celery worker's) group misses it
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    try:
        yield watchdog.pid
    finally:
        os.close(write_end)
        with contextlib.suppress(subprocess.TimeoutExpired):
            watchdog.wait(timeout=grace + 5)


def _orphans() -> list[int]:
    """Processes that were reparented to this runner (it is a child subreaper)."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            found.append(int(entry.name))
    return found


def _stop_everything_left(group: int, *, spare: int) -> None:
    """No orphans: end the script's process group, and descendants that left it, TERM then KILL.
    ``spare`` is the watchdog, a child too, which ends when the runner closes its pipe."""
    for sig, pause in ((signal.SIGTERM, 0.5), (signal.SIGKILL, 0.0)):
        _signal_group(group, sig)
        for pid in set(_orphans()) - {spare}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        time.sleep(pause)
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:  # reap them
            pass


def _become_subreaper() -> None:
    """Orphaned descendants of the script are reparented to us, not to init, so we can end them."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runs.runner", description=__doc__.splitlines()[0])
    parser.add_argument("run_id")
    parser.add_argument("--detach", action="store_true", help="fork into the background and return at once")
    args = parser.parse_args(argv)
    if args.detach and os.fork():
        return 0  # the SDK waits for this process only; the run goes on in the grandchild
    if args.detach:
        os.setsid()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    _become_subreaper()
    Supervisor(Workspace.from_config(), args.run_id).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
