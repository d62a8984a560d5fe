"""What the benchmark scripts share: percentiles, gunicorn's access log, and the command line
to write down with the results."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import secrets
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# gunicorn --access-logformat for server-side times: the X-Bench-Id header, the status, microseconds.
ACCESS_LOG_FORMAT = "%({x-bench-id}i)s %(s)s %(D)s"
TAG = secrets.token_hex(3)  # this invocation's, in every X-Bench-Id it sends


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def read_access_log(path: Path) -> dict[str, list[float]]:
    """This invocation's requests in a gunicorn access log written with ACCESS_LOG_FORMAT:
    what followed the tag in X-Bench-Id -> server milliseconds."""
    time.sleep(0.5)  # let the workers' last lines land
    by_kind: dict[str, list[float]] = {}
    with path.open(errors="replace") as log:
        for line in log:
            parts = line.split()
            if len(parts) == 3 and parts[0].startswith(f"{TAG}.") and parts[2].isdigit():
                by_kind.setdefault(parts[0].removeprefix(f"{TAG}."), []).append(int(parts[2]) / 1000)
    return by_kind


def command_line() -> str:
    """This command as it was typed, to write down beside its results."""
    executable = Path(sys.executable)
    try:
        shown = str(executable.relative_to(Path.cwd()))
    except ValueError:
        shown = str(executable)
    return " ".join(shlex.quote(part) for part in [shown, *sys.argv])


def append_results(path: Path, label: str, method: str, report: str) -> None:
    """Append a run's section to bench/RESULTS.md: its label, when and where, ``method`` (how it
    was measured), the command line, and the ``report`` table."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}"
    section = [f"#### {label}", "", f"- {now}; {machine}; {method}", f"- Command: `{command_line()}`", "", report, ""]
    with path.open("a") as out:
        out.write("\n".join(section) + "\n")
    print(f"Appended to {path}", flush=True)
