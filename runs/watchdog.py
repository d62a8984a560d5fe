"""End a run's processes when its runner dies, however it dies: ``python -m runs.watchdog MARKER GRACE``.

The runner (``runs.runner``) starts one watchdog per run, before the script, and gives the script and so
every process it starts ``STUDIO_RUN_TREE=MARKER`` in its environment. The watchdog's stdin is the read end
of a pipe whose write end only the runner holds, so it reads end-of-file when the runner closes it at the
end of the run or when the kernel closes it because the runner died (SIGKILL, the OOM killer, a Celery
worker killed with its pool). Then it ends every process of this user whose environment carries the
marker: SIGTERM, ``GRACE`` seconds, SIGKILL.

Why the environment: a script's descendants can leave its process group and session (``setsid``, a
daemon's double fork), and once the runner is dead its orphans are reparented to init, so neither a group
kill nor the runner's child-subreaper walk can find them. Every process inherits its parent's environment
across fork, exec and setsid, and ``/proc/PID/environ`` keeps the one a process started with even after it
deletes the variable. Only a process started with a scrubbed environment (``env -i``) escapes.

Why a process and not PR_SET_PDEATHSIG: that signal reaches only the direct child, fires when the parent
*thread* that started it exits, and needs something alive afterwards to find the grandchildren. The
watchdog lives in a session of its own, so a kill of the runner's process group (or of a Celery worker's)
does not reach it. No Django here: it runs wherever the runner runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

MARKER_VARIABLE = "STUDIO_RUN_TREE"
KILL_ROUNDS = 50  # a process forking as fast as it is killed: give up after this many SIGKILL passes
PAUSE = 0.05


def carrying(marker: str) -> list[int]:
    """The live processes (of this user: others' environments are unreadable) started with the marker."""
    entry, me, found = f"{MARKER_VARIABLE}={marker}".encode(), os.getpid(), []
    for path in Path("/proc").iterdir():
        if not path.name.isdigit() or int(path.name) == me:
            continue
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours
            # A zombie's environment reads empty: it is dead already, and its parent (or init) reaps it.
            if entry in (path / "environ").read_bytes().split(b"\0"):
                found.append(int(path.name))
    return found


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def end_processes(marker: str, grace: float) -> int:
    """SIGTERM every process carrying the marker, SIGKILL what is left after ``grace`` seconds, and
    repeat until none is left (one may have forked meanwhile). Returns how many there were at first."""
    first = carrying(marker)
    _signal(first, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while carrying(marker) and time.monotonic() < deadline:
        time.sleep(PAUSE)
    for _ in range(KILL_ROUNDS):
        if not (left := carrying(marker)):
            break
        _signal(left, signal.SIGKILL)
        time.sleep(PAUSE)
    return len(first)


def main(argv: list[str] | None = None) -> int:
    marker, grace = (argv or sys.argv[1:])[:2]
    while sys.stdin.buffer.read(65536):  # nothing is ever written: this waits for end-of-file
        pass
    if ended := end_processes(marker, float(grace)):
        with contextlib.suppress(OSError):  # the runner's log may be a pipe nobody reads now
            print(f"watchdog: ended {ended} processes left by run {marker}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
