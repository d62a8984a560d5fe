"""What sampling system metrics costs (issue 14's bar: below 1% of one core).

Runs ``runs.sdk.system_metrics.SystemMetrics``, the thread that the SDK (interactive runs) and the
runner (script runs) start, in this process for ``--seconds`` at each interval of ``--intervals``
(default: the default 10 s, then 1 s), and reads the CPU time of that thread alone from the kernel
(``psutil.Process().threads()``, the thread's user + system time): its cost as % of one core. The
sampled "run" is this process with ``--children`` child processes (a training script's DataLoader
workers, say), so the process-tree walk does real work. Points go to a list, as the sampler hands
them to the SDK's sender (sending is the sender thread's work, which batches them with the run's
other points).

Then ``--samples`` back-to-back ``SystemSampler.sample()`` calls, timed with the thread's CPU clock:
the CPU of one sample, and what it comes to at each interval.

No Django, no server::

    .venv/bin/python bench/bench_system_metrics.py                  # 60 s at 10 s, then 60 s at 1 s
    .venv/bin/python bench/bench_system_metrics.py --seconds 10 --intervals 1 0.2
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runs.sdk.system_metrics import SystemMetrics, SystemSampler, gpus  # noqa: E402

BAR = 1.0  # % of one core


def thread_cpu(native_id: int) -> float:
    for thread in psutil.Process().threads():
        if thread.id == native_id:
            return thread.user_time + thread.system_time
    raise LookupError(f"thread {native_id} is gone")


def run_thread(every: float, seconds: float) -> dict[str, Any]:
    batches: list[list[dict[str, Any]]] = []
    sampler = SystemMetrics(batches.append, every=every)
    sampler.start()
    time.sleep(0.05)  # let it start
    native_id = sampler._thread.native_id
    assert native_id is not None
    started = time.monotonic()
    time.sleep(seconds)
    used = thread_cpu(native_id)  # from the thread's start: NVML's and psutil's set-up included
    elapsed = time.monotonic() - started
    sampler.stop()
    return {
        "every": every,
        "seconds": elapsed,
        "samples": len(batches),
        "points": sum(len(b) for b in batches),
        "cpu_s": used,
        "percent": 100.0 * used / elapsed,
        "ms_per_sample": 1000.0 * used / max(1, len(batches)),
    }


def per_sample(count: int) -> float:
    sampler = SystemSampler(gpus=gpus())
    start = time.thread_time()
    for _ in range(count):
        sampler.sample()
    return 1000.0 * (time.thread_time() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each interval runs (default 60)")
    parser.add_argument("--intervals", type=float, nargs="+", default=[10.0, 1.0])
    parser.add_argument("--children", type=int, default=4, help="child processes in the sampled tree (default 4)")
    parser.add_argument("--samples", type=int, default=500, help="back-to-back samples timed (default 500)")
    args = parser.parse_args()

    children = [
        subprocess.Popen(["sleep", str(10 * args.seconds * len(args.intervals) + 60)]) for _ in range(args.children)
    ]
    try:
        load_before = os.getloadavg()[0]
        results = [run_thread(every, args.seconds) for every in args.intervals]
        one_sample_ms = per_sample(args.samples)
        load_after = os.getloadavg()[0]
    finally:
        for child in children:
            child.kill()
            child.wait()

    gpu_count = len(gpus().handles)
    print(
        f"- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs, {platform.machine()}, "
        f"Python {platform.python_version()}, psutil {psutil.__version__}; {len(psutil.pids())} processes on the "
        f"machine; the sampled tree: this process and {args.children} children; GPUs seen by NVML: {gpu_count}; "
        f"load average (1 min) {load_before:.1f} at the start, {load_after:.1f} at the end"
    )
    command = " ".join(["bench/bench_system_metrics.py", *sys.argv[1:]])
    print(f"- Command: `.venv/bin/python {command}`\n")
    print(
        f"| Interval | Ran (s) | Samples | Points | Thread CPU (s) | ms per sample | % of one core | Bar (< {BAR}%) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        verdict = "met" if r["percent"] < BAR else "**missed**"
        print(
            f"| {r['every']:g} s | {r['seconds']:.1f} | {r['samples']} | {r['points']} | {r['cpu_s']:.3f} | "
            f"{r['ms_per_sample']:.2f} | **{r['percent']:.3f}** | {verdict} |"
        )
    print(
        f"\nOne sample, {args.samples} back to back (thread CPU clock): {one_sample_ms:.2f} ms, which is "
        + ", ".join(f"{one_sample_ms / (10 * every):.3f}% of one core every {every:g} s" for every in args.intervals)
        + " (without the thread's start-up)."
    )


if __name__ == "__main__":
    main()
