"""Time the CSV exports (issue 13) over HTTP, and watch the gunicorn workers' memory while they stream.

Each case downloads one export with ``requests`` (``stream=True``, ``iter_content``), counting bytes
and CSV lines, and times the first byte and the whole download (wall clock, as the client sees it).
Meanwhile a thread reads ``VmRSS`` and ``RssAnon`` from ``/proc/<pid>/status`` of every gunicorn
worker (the children of the master ``--server-pid``) every 0.1 s; the report gives, for the worker
whose VmRSS grew most, both before the request and their peaks during it. On SQLite, VmRSS includes
the database pages the studio maps into memory (``PRAGMA mmap_size``, 1 GiB): file pages, shared and
reclaimable, which grow with what a request reads; RssAnon is the worker's private memory, the one to
watch for growth. A worker's RSS does not shrink after a big response (Python keeps the memory it has
had), so the small cases run first in each round.

Cases (``--case``, repeatable; all by default, in this order):

* ``runs-small``: the runs export with the ten columns of ``COLUMNS``, ``sort=-created``, filtered
  by ``--small-q`` (a query that matches about 1,000 runs), to compare memory with ``runs-all``;
* ``runs-all``: the same without a filter: every run of the workspace (issue 13's first bar:
  100,000 runs in at most 10 s, with flat server memory);
* ``points-small``: the metric points export, ``names=--names``, filtered by ``--small-q``;
* ``points-all``: the same without a filter (issue 13's second bar: 10 million points at
  200,000 points/s or more).

``COLUMNS`` are keys that ``seed_direct.py`` writes (tags ``team``, property ``git_commit``, metric
``loss``), so no cell is empty for want of data. Rows are the CSV lines less the header (no value
that seed_direct.py writes holds a line break).

With ``--client curl`` the download is made by curl instead (its output read here in 1 MiB blocks),
to tell the server's speed from the Python client's: both share the machine's CPUs.

Example (a database seeded by ``seed_direct.py``; the config written by ``manage.py bootstrap``)::

    .venv/bin/gunicorn studio.wsgi -b 127.0.0.1:8781 -w 2 --threads 4 --timeout 900 -p $STUDIO_DATA_DIR/gunicorn.pid &
    .venv/bin/python bench/bench_exports.py --config $STUDIO_DATA_DIR/config.json \\
        --server-pid $(cat $STUDIO_DATA_DIR/gunicorn.pid) --small-q 'created >= 2026-11-30' \\
        --rounds 3 --label SQLite --write bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
from common import append_results  # bench/common.py

COLUMNS = "name,run_id,experiment,status,submitted_by,created,duration,tags.team,properties.git_commit,metrics.loss"
CHUNK = 64 * 1024
RUNS_BAR_S = 10.0
POINTS_BAR_PER_S = 200_000.0


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    path: str  # after /api/v1/workspaces/<ws>/
    params: dict[str, str]
    unit: str  # "runs" or "points"


def cases_for(args: argparse.Namespace) -> list[Case]:
    runs = {"cols": COLUMNS, "sort": "-created", "format": "csv"}
    points = {"names": args.names, "format": "csv"}
    small_points = {**points, "q": args.small_q}
    return [
        Case("runs-small", "runs, filtered", "runs/export/", {**runs, "q": args.small_q}, "runs"),
        Case("runs-all", "runs, all", "runs/export/", runs, "runs"),
        Case("points-small", f"points ({args.names}), filtered", "runs/export/metrics/", small_points, "points"),
        Case("points-all", f"points ({args.names}), all runs", "runs/export/metrics/", points, "points"),
    ]


# --- the workers' memory ------------------------------------------------------------------------------------


def workers(master: int) -> list[int]:
    """The gunicorn master's children (its workers)."""
    children = Path(f"/proc/{master}/task/{master}/children")
    if children.exists():
        return [int(pid) for pid in children.read_text().split()]
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            found.append(int(stat.parent.name))
    return found


def memory_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, RssAnon) of a process, KiB. RssAnon is its private memory; the rest of VmRSS is mostly
    file pages, such as the SQLite database that the studio maps into memory (``mmap_size``)."""
    got: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "RssAnon:")):
                got[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        return None
    return got.get("VmRSS", 0), got.get("RssAnon", 0)


@dataclass
class Memory:
    pid: int
    rss_before: int = 0
    rss_peak: int = 0
    anon_before: int = 0
    anon_peak: int = 0


class RssSampler(threading.Thread):
    """Every ``interval`` s, each worker's VmRSS and RssAnon; keeps the first reading and the peaks."""

    def __init__(self, pids: list[int], interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.memory: dict[int, Memory] = {}
        for pid in pids:
            rss, anon = memory_kib(pid) or (0, 0)
            self.memory[pid] = Memory(pid, rss, rss, anon, anon)
        self.stopping = threading.Event()

    def sample(self) -> None:
        for pid, memory in self.memory.items():
            if (now := memory_kib(pid)) is not None:
                memory.rss_peak = max(memory.rss_peak, now[0])
                memory.anon_peak = max(memory.anon_peak, now[1])

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            self.sample()

    def stop(self) -> Memory:
        """The worker whose VmRSS grew most (ties: the largest peak): the one that served the export."""
        self.stopping.set()
        self.join()
        self.sample()
        return max(self.memory.values(), key=lambda m: (m.rss_peak - m.rss_before, m.rss_peak))


# --- one download -------------------------------------------------------------------------------------------


@dataclass
class Download:
    case: Case
    round: int
    bytes: int = 0
    lines: int = 0
    first_byte_s: float = 0.0
    total_s: float = 0.0
    memory: Memory | None = None

    @property
    def rows(self) -> int:
        return max(0, self.lines - 1)

    @property
    def rate(self) -> float:
        return self.rows / self.total_s if self.total_s else 0.0


def download_requests(
    session: requests.Session, url: str, params: dict[str, str], timeout: float, result: Download
) -> None:
    start = time.perf_counter()
    with session.get(url, params=params, stream=True, timeout=timeout) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{result.case.key}: HTTP {response.status_code} {response.text[:300]!r}")
        for chunk in response.iter_content(CHUNK):
            if not result.bytes:
                result.first_byte_s = time.perf_counter() - start
            result.bytes += len(chunk)
            result.lines += chunk.count(b"\n")
    result.total_s = time.perf_counter() - start


def download_curl(token: str, url: str, params: dict[str, str], timeout: float, result: Download) -> None:
    full = requests.Request("GET", url, params=params).prepare().url
    assert full is not None
    command = ["curl", "-sS", "--fail", "--max-time", str(int(timeout)), "-H", f"Authorization: Bearer {token}", full]
    start = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE) as curl:
        assert curl.stdout is not None
        while block := curl.stdout.read1(1 << 20):
            if not result.bytes:
                result.first_byte_s = time.perf_counter() - start
            result.bytes += len(block)
            result.lines += block.count(b"\n")
    result.total_s = time.perf_counter() - start
    if curl.returncode:
        raise RuntimeError(f"{result.case.key}: curl exited {curl.returncode}")


def run_case(case: Case, round_: int, args: argparse.Namespace, session: requests.Session, base: str) -> Download:
    url = f"{base}/api/v1/workspaces/{args.workspace}/{case.path}"
    result = Download(case, round_)
    sampler = RssSampler(workers(args.server_pid)) if args.server_pid else None
    if sampler:
        sampler.start()
    try:
        if args.client == "curl":
            download_curl(args.token, url, case.params, args.timeout, result)
        else:
            download_requests(session, url, case.params, args.timeout, result)
    finally:
        if sampler:
            result.memory = sampler.stop()
    return result


# --- the report ---------------------------------------------------------------------------------------------


@dataclass
class Summary:
    case: Case
    downloads: list[Download] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(d, attribute) for d in self.downloads)


def memory_text(memory: Memory | None, long: bool = False) -> str:
    if memory is None:
        return ""
    mib = [round(kib / 1024) for kib in (memory.rss_before, memory.rss_peak, memory.anon_before, memory.anon_peak)]
    if long:
        return f"worker {memory.pid} VmRSS {mib[0]} -> {mib[1]} MiB, RssAnon {mib[2]} -> {mib[3]} MiB"
    return f"{mib[0]} → {mib[1]} ({mib[2]} → {mib[3]})"


def bar_text(summary: Summary) -> str:
    if summary.case.key == "runs-all":
        met = summary.median("total_s") <= RUNS_BAR_S
        return f"≤ {RUNS_BAR_S:.0f} s: {'met' if met else '**missed**'}"
    if summary.case.key == "points-all":
        met = summary.median("rate") >= POINTS_BAR_PER_S
        return f"≥ {POINTS_BAR_PER_S:,.0f}/s: {'met' if met else '**missed**'}"
    return ""


def table(summaries: list[Summary]) -> str:
    lines = [
        "| Case | Rows | MB | First byte s | Total s (rounds) | Rows/s "
        "| Worker MiB before → peak, per round: VmRSS (RssAnon) | Bar |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for s in summaries:
        rounds = ", ".join(f"{d.total_s:.1f}" for d in s.downloads)
        rss = "; ".join(memory_text(d.memory) for d in s.downloads if d.memory)
        rows = {d.rows for d in s.downloads}
        lines.append(
            f"| {s.case.label} | {'/'.join(f'{r:,}' for r in sorted(rows))} | {s.median('bytes') / 1e6:.1f} | "
            f"{s.median('first_byte_s'):.2f} | **{s.median('total_s'):.1f}** ({rounds}) | "
            f"{s.median('rate'):,.0f} {s.case.unit}/s | {rss or 'n/a'} | {bar_text(s)} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="SDK config JSON {url, workspace, token} (manage.py bootstrap)")
    parser.add_argument("--url", help="the studio's address (default: the config's url)")
    parser.add_argument("--token", help="an API token (default: the config's token)")
    parser.add_argument("--workspace", help="the workspace (default: the config's, else 'default')")
    parser.add_argument("--server-pid", type=int, help="the gunicorn master's PID, to watch its workers' RSS")
    parser.add_argument("--small-q", default="created >= 2026-11-30", help="a query matching about 1,000 runs")
    parser.add_argument("--names", default="loss", help="metric names for the points export (default: loss)")
    parser.add_argument("--case", action="append", help="only these cases (repeatable): runs-small, runs-all, ...")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all cases (default 3)")
    parser.add_argument("--client", choices=("requests", "curl"), default="requests", help="who downloads")
    parser.add_argument("--timeout", type=float, default=900.0, help="per-download timeout, seconds")
    parser.add_argument("--label", default="unknown database", help="what is measured, for the report")
    parser.add_argument("--write", type=Path, help="append a Markdown section with the results to this file")
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text()) if args.config else {}
    args.url = (args.url or config.get("url") or "").rstrip("/")
    args.token = args.token or config.get("token")
    args.workspace = args.workspace or config.get("workspace") or "default"
    if not args.url or not args.token:
        parser.error("need --url and a token: pass --config (written by `manage.py bootstrap`) or --url and --token")
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be 1-20")
    known = {case.key for case in cases_for(args)}
    if args.case and (unknown := set(args.case) - known):
        parser.error(f"unknown case(s) {sorted(unknown)}; cases are {', '.join(sorted(known))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {args.token}"
    cases = [case for case in cases_for(args) if not args.case or case.key in args.case]
    summaries = [Summary(case) for case in cases]
    if args.server_pid and not workers(args.server_pid):
        sys.exit(f"no workers under the gunicorn master {args.server_pid}")
    print(f"{len(cases)} cases, {args.rounds} rounds, client {args.client}, {args.url}", flush=True)
    for round_ in range(1, args.rounds + 1):
        for summary in summaries:
            d = run_case(summary.case, round_, args, session, args.url)
            summary.downloads.append(d)
            print(
                f"  round {round_} {summary.case.key:<13} {d.rows:>10,} {summary.case.unit:<6} "
                f"{d.bytes / 1e6:8.1f} MB  first byte {d.first_byte_s:6.2f} s  total {d.total_s:7.2f} s  "
                f"{d.rate:>9,.0f}/s  {memory_text(d.memory, long=True)}",
                flush=True,
            )
    report = table(summaries)
    print()
    print(report)
    if args.write:
        append_results(
            args.write,
            args.label,
            f"{args.rounds} rounds, client {args.client}; medians, with each round's total in brackets",
            report,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
