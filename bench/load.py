"""Readers and writers together against a running studio, for minutes: latency, errors and memory.

Starts ``--readers`` threads that page through the REST runs list (unfiltered, a tag filter, a metric
sort and a search word, in turn) and ``--writers`` threads that each start a run, log metrics to it in
batches of ``--batch`` points, and complete it every ``--batches-per-run`` batches, then start another.
Nothing is retried: every non-2xx answer and every connection error counts as an error. The whole
load stops after ``--duration`` seconds, bounded: each request has a 30 s timeout.

Reported: per kind of request its count, errors and p50/p95/max wall-clock time; points written per
second; the server's memory (RSS and PSS of the gunicorn master and workers, from /proc) at the start
and at the end. The server is found by the port in ``--url`` (or ``--pid``, gunicorn's master).

Example, against the ``make run`` server (its SDK config holds the token)::

    make run &
    .venv/bin/python bench/load.py --duration 300 --write bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlparse

import requests
from common import command_line, percentile

READS = {
    "list": {},
    "tag filter": {"q": "tags.load = reader-visible"},
    "metric sort": {"sort": "-metrics.loss"},
    "search word": {"q": "writer"},
}


class Tally:
    """Latencies and errors per kind of request, shared by every thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.points = 0

    def call(self, session: requests.Session, kind: str, method: str, url: str, **kwargs: object) -> dict | None:
        started = time.perf_counter()
        try:
            response = session.request(method, url, timeout=30, **kwargs)
            failed = None if response.ok else f"{response.status_code} {response.text[:120]}"
        except requests.RequestException as error:
            response, failed = None, f"{type(error).__name__}: {error}"
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            self.times[kind].append(elapsed)
            if failed:
                self.errors[kind].append(failed)
        return response.json() if response is not None and not failed else None


def memory_of(pids: list[int]) -> tuple[float, float]:
    """RSS and PSS in MB, summed over ``pids`` (PSS counts pages shared between workers once)."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in ("Rss", "Pss"):
                    kb = int(value.split()[0])
                    rss, pss = (rss + kb, pss) if name == "Rss" else (rss, pss + kb)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return rss / 1024, pss / 1024


def server_pids(port: int, master: int | None) -> list[int]:
    """The gunicorn master listening on ``port`` (or ``master``) and its workers."""
    if master is None:
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                    inodes.add(fields[9])
        owners = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
            except OSError:
                continue
            if any(f"socket:[{inode}]" in links for inode in inodes):
                owners.append(int(pid))
        if not owners:
            raise SystemExit(f"no process of this user listens on port {port}; give --pid")
        master = min(owners)  # the workers inherit the socket from it
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [master, *map(int, children)]


def reader(tally: Tally, api: str, token: str, stop: threading.Event) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    while not stop.is_set():
        for kind, params in READS.items():
            if stop.is_set():
                return
            tally.call(session, kind, "GET", f"{api}/workspaces/default/runs/", params={**params, "page_size": 50})


def writer(tally: Tally, api: str, token: str, stop: threading.Event, args: argparse.Namespace) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    step = 0
    while not stop.is_set():
        tags = {"load": "reader-visible", "writer": threading.current_thread().name}
        run = tally.call(session, "start run", "POST", f"{api}/workspaces/default/experiments/load/runs/",
                         json={"tags": tags})  # fmt: skip
        if run is None:
            time.sleep(0.5)
            continue
        metrics = f"{api}/runs/{run['runId']}/metrics/"
        for _ in range(args.batches_per_run):
            if stop.is_set():
                break
            points = [{"name": "loss", "value": 1 / (step + i + 1), "step": step + i} for i in range(args.batch)]
            step += args.batch
            if tally.call(session, "log batch", "POST", metrics, json={"batchId": uuid.uuid4().hex, "points": points}):
                with tally.lock:
                    tally.points += len(points)
        tally.call(session, "complete run", "POST", f"{api}/runs/{run['runId']}/status/", json={"status": "Completed"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=".studio/config.json", help="the SDK config with the url and token")
    parser.add_argument("--url", help="the studio (default: the config's)")
    parser.add_argument("--token", help="an API token (default: the config's)")
    parser.add_argument("--pid", type=int, help="gunicorn's master process (default: the one on the url's port)")
    parser.add_argument("--duration", type=float, default=300)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100, help="points per metric batch")
    parser.add_argument("--batches-per-run", type=int, default=20)
    parser.add_argument("--label", default="", help="what the server was (database, commit)")
    parser.add_argument("--write", type=Path, help="append the results to this Markdown file")
    args = parser.parse_args()
    config = json.loads(Path(args.config).read_text()) if Path(args.config).exists() else {}
    url, token = (args.url or config.get("url", "")).rstrip("/"), args.token or config.get("token", "")
    if not url or not token:
        raise SystemExit("give --url and --token, or run from a folder with .studio/config.json (make run writes it)")
    api = f"{url}/api/v1"
    pids = server_pids(urlparse(url).port or 80, args.pid)

    tally = Tally()
    stop = threading.Event()
    memory_start = memory_of(pids)
    threads = [threading.Thread(target=reader, args=(tally, api, token, stop)) for _ in range(args.readers)]
    threads += [threading.Thread(target=writer, args=(tally, api, token, stop, args)) for _ in range(args.writers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while time.monotonic() - started < args.duration:
        time.sleep(1)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.monotonic() - started
    memory_end = memory_of(server_pids(urlparse(url).port or 80, args.pid))

    lines = [
        f"### Load: {args.readers} readers and {args.writers} writers for {elapsed:.0f} s"
        + (f" ({args.label})" if args.label else ""),
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores; `{command_line()}`",
        "",
        "| requests | count | errors | p50 ms | p95 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, times in tally.times.items():
        lines.append(
            f"| {kind} | {len(times):,} | {len(tally.errors[kind])} | {percentile(times, 50):.1f} "
            f"| {percentile(times, 95):.1f} | {max(times):.1f} |"
        )
    errors = sum(len(e) for e in tally.errors.values())
    lines += [
        "",
        f"Points written: {tally.points:,} ({tally.points / elapsed:,.0f}/s). Errors: {errors}"
        + (f" (first: {next(e for e in tally.errors.values() if e)[0]})" if errors else "")
        + ".",
        f"Server memory (master + {len(pids) - 1} workers): RSS {memory_start[0]:.0f} → {memory_end[0]:.0f} MB, "
        f"PSS {memory_start[1]:.0f} → {memory_end[1]:.0f} MB.",
        "",
    ]
    print("\n".join(lines))
    if args.write:
        with args.write.open("a") as out:
            out.write("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
