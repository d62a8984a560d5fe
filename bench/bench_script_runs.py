"""Script runs: how soon readers see output, how soon a cancel stops the script, and how fast
the log pipeline carries a script that prints as fast as it can.

Against a running studio (the server `make run` starts, say), from the project folder:

    .venv/bin/python bench/bench_script_runs.py --config .studio/config.json

1. Output latency. A script prints a wall-clock timestamp every 100 ms for 10 s; a reader follows
   the log over the API (as `studio run logs --follow` and `wait_for_completion` do, polling every
   100 ms here) and notes, for each line, how long after it was printed the reader first saw it.
2. Cancel latency, over 5 runs. From `run.cancel()` returning to the script's process being gone
   (polling /proc every 10 ms), and to the run's status being Canceled. The script exits on SIGTERM.
3. Log throughput. A script writes `--megabytes` of output as fast as it can. The measure is the
   time from the run starting until the studio's copy of the log is complete, checked by SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

from runs.sdk import Experiment, Run, ScriptRunConfig, Workspace

LOG = "logs/std_log.txt"


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    return f"p50 {rank(50):.2f} s, p95 {rank(95):.2f} s, max {ordered[-1]:.2f} s (n={len(ordered)})"


def submit(experiment: Experiment, folder: Path, script: str, code: str) -> Run:
    (folder / script).write_text(textwrap.dedent(code))
    return experiment.submit(ScriptRunConfig(source_directory=str(folder), script=script))


def wait_for(predicate, timeout: float = 60.0, every: float = 0.01):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(every)
    raise TimeoutError("gave up waiting")


def output_latency(experiment: Experiment, folder: Path) -> list[float]:
    run = submit(
        experiment,
        folder,
        "ticks.py",
        """
        import time
        for _ in range(100):
            print(f"tick {time.time():.6f}", flush=True)
            time.sleep(0.1)
        """,
    )
    seen: list[float] = []
    offset, pending = 0, b""
    while True:
        ended = run.get_status() in ("Completed", "Failed", "Canceled")
        data, offset = run._read_log(LOG, offset)
        now = time.time()
        pending += data
        *lines, pending = pending.split(b"\n")
        seen += [now - float(line.split()[1]) for line in lines if line.startswith(b"tick ")]
        if ended and not data:
            return seen
        time.sleep(0.1)


def cancel_latency(experiment: Experiment, folder: Path, rounds: int) -> tuple[list[float], list[float]]:
    to_gone, to_canceled = [], []
    for index in range(rounds):
        run = submit(
            experiment,
            folder,
            f"waits{index}.py",
            """
            import os, time
            print("pid", os.getpid(), flush=True)
            time.sleep(600)
            """,
        )
        pid = int(wait_for(lambda run=run: _pid_in(run._read_log(LOG, 0)[0]), every=0.05))
        started = time.monotonic()
        run.cancel()
        wait_for(lambda pid=pid: not _alive(pid))
        to_gone.append(time.monotonic() - started)
        wait_for(lambda run=run: run.get_status() == "Canceled", every=0.05)
        to_canceled.append(time.monotonic() - started)
    return to_gone, to_canceled


def _pid_in(data: bytes) -> str | None:
    return data.split()[1].decode() if data.startswith(b"pid ") and len(data.split()) > 1 else None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def throughput(experiment: Experiment, folder: Path, megabytes: int) -> tuple[float, bool]:
    run = submit(
        experiment,
        folder,
        "flood.py",
        f"""
        import hashlib, os, sys
        block = os.urandom(65536)
        digest = hashlib.sha256()
        for _ in range({megabytes} * 16):
            sys.stdout.buffer.write(block)
            digest.update(block)
        sys.stdout.buffer.flush()
        os.makedirs("outputs", exist_ok=True)
        open("outputs/sha256.txt", "w").write(digest.hexdigest())
        """,
    )
    wait_for(lambda: run.get_status() in ("Running", "Finalizing", "Completed"), every=0.05)
    started = time.monotonic()
    details = run.wait_for_completion()
    elapsed = time.monotonic() - started
    with tempfile.TemporaryDirectory() as scratch:
        logged = run.download_file(LOG, Path(scratch) / "log.bin")
        expected = run.download_file("outputs/sha256.txt", Path(scratch) / "sha.txt").read_text()
        digest = hashlib.sha256(logged.read_bytes()).hexdigest()
    return elapsed, details["status"] == "Completed" and digest == expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--cancel-rounds", type=int, default=5)
    parser.add_argument("--megabytes", type=int, default=50)
    args = parser.parse_args()
    experiment = Experiment(Workspace.from_config(args.config), "bench-script-runs")
    with tempfile.TemporaryDirectory() as folder:
        seen = output_latency(experiment, Path(folder))
        print(f"| output seen by a reader after it was printed | {percentiles(seen)} |")
        gone, canceled = cancel_latency(experiment, Path(folder), args.cancel_rounds)
        print(f"| cancel() to the script's process gone | {percentiles(gone)} |")
        print(f"| cancel() to status Canceled | {percentiles(canceled)} |")
        elapsed, whole = throughput(experiment, Path(folder), args.megabytes)
        verdict = "bytes identical (SHA-256)" if whole else "LOG DIFFERS"
        rate = args.megabytes / elapsed
        print(f"| {args.megabytes} MiB of output, start to stored | {elapsed:.1f} s, {rate:.1f} MiB/s, {verdict} |")
    print(f"(standard deviation of the output latency: {statistics.pstdev(seen):.2f} s)")


if __name__ == "__main__":
    main()
