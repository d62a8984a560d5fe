"""Time the run grouping endpoint (issue 13: "at 100,000 runs, grouping by a tag with 3 metric
aggregates p95 ≤ 150 ms") over HTTP: ``GET /api/v1/workspaces/<ws>/runs/groups/?by=&metrics=&q=``.

Cases (``--case``, repeatable; all by default). Every key and metric is one ``seed_direct.py`` writes
(tags ``team`` (6 values), ``dataset`` (7) and ``quality`` (3, on about a third of the runs); metrics
``loss`` and ``accuracy`` on 95% of the runs):

* ``team``: ``by=tags.team``, ``metrics=loss,loss.min,accuracy.max`` (the issue's case);
* ``team-dataset``: ``by=tags.team,tags.dataset``, the same metrics (two keys, 42 groups);
* ``team-q-tag``: the issue's case with ``q=tags.dataset = imagenet`` (about 1 run in 7);
* ``team-q-text``: the issue's case with ``q=<word>`` (free text, ``--word``; about 1 run in 6);
* ``quality``: ``by=tags.quality``, the same metrics (a tag that two runs in three lack: a group of
  runs without the key);
* ``experiment-status``: ``by=experiment,status``, the same metrics (two plain keys).

Each case gets ``--warmup`` untimed requests, then ``--requests`` timed requests per case, interleaved:
one request of each case in turn, round after round, so that every case sees the same machine load.
Reported per case: the groups in the answer, the runs they count, the response size, and p50/p95/max
(nearest rank) of the wall-clock time as the client sees it and, with ``--access-log``, of the time
the request spent in the gunicorn worker (the app sends no ``Server-Timing`` header; the access log
gives the worker's time, as for ``bench_studio_page.py``). Start gunicorn with ``--access-logfile FILE
--access-logformat '%({x-bench-id}i)s %(s)s %(D)s'``: every timed request carries an ``X-Bench-Id:
<run tag>.<case>`` header, which the log line pairs with the request's duration in microseconds.

The answer of every request is checked against the first one's: the same groups and counts, and the
same statistics to a relative 1e-9 (the data does not change during a run, but PostgreSQL's parallel
workers may add the same values in another order, which changes the last bits of a sum).

With ``--baseline-url`` (another server over the same data, e.g. one running the previous
``runs/groups.py``), every request is made to both servers, in an order that flips every round, so
that both see the same machine load; their answers must be equal, and the report adds the baseline's
table and the ratios new/baseline of the p50 and p95 (``--baseline-access-log``: its access log).

Example (a database seeded by ``seed_direct.py``; the config written by ``manage.py bootstrap``)::

    .venv/bin/gunicorn studio.wsgi -b 127.0.0.1:8791 -w 2 --threads 4 \\
        --access-logfile $STUDIO_DATA_DIR/access.log --access-logformat '%({x-bench-id}i)s %(s)s %(D)s' &
    .venv/bin/python bench/bench_groups.py --config $STUDIO_DATA_DIR/config.json \\
        --access-log $STUDIO_DATA_DIR/access.log --label SQLite --write bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from common import ACCESS_LOG_FORMAT, TAG, append_results, percentile, read_access_log  # bench/common.py

BAR_P95_MS = 150.0
METRICS = "loss,loss.min,accuracy.max"


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    by: str
    q: str = ""
    metrics: str = METRICS

    def params(self) -> dict[str, str]:
        params = {"by": self.by, "metrics": self.metrics}
        if self.q:
            params["q"] = self.q
        return params

    def request_text(self) -> str:
        return f"by=`{self.by}`" + (f" q=`{self.q}`" if self.q else "")


def cases_for(word: str) -> list[Case]:
    return [
        Case("team", "a tag, 3 metrics (the bar)", "tags.team"),
        Case("team-dataset", "two tags", "tags.team,tags.dataset"),
        Case("team-q-tag", "a tag, tag filter", "tags.team", q="tags.dataset = imagenet"),
        Case("team-q-text", "a tag, free-text filter", "tags.team", q=word),
        Case("quality", "a tag most runs lack", "tags.quality"),
        Case("experiment-status", "two plain keys", "experiment,status"),
    ]


@dataclass
class Result:
    case: Case
    ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    answer: Any = None
    size: int = 0

    @property
    def groups(self) -> int:
        return len(self.answer["groups"]) if self.answer else 0

    @property
    def runs(self) -> int:
        return sum(group["count"] for group in self.answer["groups"]) if self.answer else 0


def same(a: Any, b: Any) -> bool:
    """Two answers alike: equal but for the last bits of their floats."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def fetch(session: requests.Session, url: str, case: Case, kind: str, timeout: float) -> requests.Response:
    response = session.get(url, params=case.params(), headers={"X-Bench-Id": f"{TAG}.{kind}"}, timeout=timeout)
    if response.status_code != 200:
        raise RuntimeError(f"{case.key}: HTTP {response.status_code} {response.text[:300]!r}")
    return response


@dataclass
class Server:
    """One server under test: its groups URL, its access log, and a result per case."""

    label: str
    url: str
    access_log: Path | None
    results: list[Result]


def time_cases(session: requests.Session, servers: list[Server], args: argparse.Namespace) -> None:
    """Every case on every server, ``--warmup`` times untimed, then ``--requests`` rounds: one
    request of each case in turn (on each server, in an order that flips every round)."""
    for _ in range(args.warmup):
        for server in servers:
            for result in server.results:
                response = fetch(session, server.url, result.case, "warmup", args.timeout)
                result.answer, result.size = response.json(), len(response.content)
    order = list(servers)
    for round_ in range(1, args.requests + 1):
        for i in range(len(servers[0].results)):
            for server in order:
                result = server.results[i]
                start = time.perf_counter()
                response = fetch(session, server.url, result.case, result.case.key, args.timeout)
                answer = response.json()
                result.ms.append((time.perf_counter() - start) * 1000)
                if result.answer is None:
                    result.answer, result.size = answer, len(response.content)
                elif not same(answer, result.answer):
                    raise RuntimeError(f"{result.case.key}: {server.label}'s answer changed in round {round_}")
        order.reverse()
        if round_ % 10 == 0 or round_ == args.requests:
            for server in servers:
                text = "  ".join(
                    f"{r.case.key} {percentile(r.ms, 50):.0f}/{percentile(r.ms, 95):.0f}" for r in server.results
                )
                print(f"  {round_:>4} rounds, {server.label[:12]:<12} client p50/p95 ms: {text}", flush=True)
    for server in servers[1:]:
        for result, first in zip(server.results, servers[0].results, strict=True):
            if not same(result.answer, first.answer):
                raise RuntimeError(f"{result.case.key}: {server.label} answers differently from {servers[0].label}")


def table(results: list[Result]) -> str:
    server = any(r.server_ms for r in results)
    lines = [
        "| Case | Request | Groups | Runs | KiB | p50 ms | p95 ms | max ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    if server:
        lines[0] += " server p50 | server p95 | server max | Bar (server p95 ≤ 150 ms) |"
        lines[1] += "---:|---:|---:|---|"
    for r in results:
        line = (
            f"| {r.case.label} | {r.case.request_text()} | {r.groups} | {r.runs:,} | {r.size / 1024:.1f} | "
            f"{percentile(r.ms, 50):.1f} | {percentile(r.ms, 95):.1f} | {max(r.ms):.1f} |"
        )
        if server and r.server_ms:
            s = r.server_ms
            met = "met" if percentile(s, 95) <= BAR_P95_MS else "**missed**"
            line += f" {percentile(s, 50):.1f} | **{percentile(s, 95):.1f}** | {max(s):.1f} | {met} |"
        elif server:
            line += " | | | |"
        lines.append(line)
    return "\n".join(lines)


def ratio_table(new: list[Result], old: list[Result], new_label: str, old_label: str) -> str:
    """p50 and p95 of two servers side by side (server time where there is an access log), and new/old."""
    lines = [
        f"| Case | p50 {new_label} | p50 {old_label} | p50 ratio | p95 {new_label} | p95 {old_label} | p95 ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for a, b in zip(new, old, strict=True):
        ms_a, ms_b = a.server_ms or a.ms, b.server_ms or b.ms
        p50 = percentile(ms_a, 50), percentile(ms_b, 50)
        p95 = percentile(ms_a, 95), percentile(ms_b, 95)
        lines.append(
            f"| {a.case.label} | {p50[0]:.1f} | {p50[1]:.1f} | {p50[0] / p50[1]:.2f} | "
            f"{p95[0]:.1f} | {p95[1]:.1f} | {p95[0] / p95[1]:.2f} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="SDK config JSON {url, workspace, token} (manage.py bootstrap)")
    parser.add_argument("--url", help="the studio's address (default: the config's url)")
    parser.add_argument("--token", help="an API token (default: the config's token)")
    parser.add_argument("--workspace", help="the workspace (default: the config's, else 'default')")
    parser.add_argument("--word", default="distillation", help="the free-text filter's word (default: distillation)")
    parser.add_argument("--requests", type=int, default=60, help="timed requests per case (default 60)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed requests per case first (default 2)")
    parser.add_argument("--case", action="append", help="only these cases (repeatable): team, team-dataset, ...")
    parser.add_argument("--timeout", type=float, default=120.0, help="per-request timeout, seconds")
    parser.add_argument(
        "--access-log", type=Path, help="gunicorn's access log, format " + repr(ACCESS_LOG_FORMAT).replace("%", "%%")
    )
    parser.add_argument("--label", default="unknown database", help="what is measured, for the report")
    parser.add_argument("--baseline-url", help="a second server to time in alternation with --url (e.g. older code)")
    parser.add_argument("--baseline-access-log", type=Path, help="the second server's gunicorn access log")
    parser.add_argument("--baseline-label", default="baseline", help="the second server's name, for the report")
    parser.add_argument("--write", type=Path, help="append a Markdown section with the results to this file")
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text()) if args.config else {}
    args.url = (args.url or config.get("url") or "").rstrip("/")
    args.token = args.token or config.get("token")
    args.workspace = args.workspace or config.get("workspace") or "default"
    if not args.url or not args.token:
        parser.error("need --url and a token: pass --config (written by `manage.py bootstrap`) or --url and --token")
    if not 1 <= args.requests <= 1000 or not 0 <= args.warmup <= 100:
        parser.error("--requests must be 1-1000 and --warmup 0-100")
    known = {case.key for case in cases_for(args.word)}
    if args.case and (unknown := set(args.case) - known):
        parser.error(f"unknown case(s) {sorted(unknown)}; cases are {', '.join(sorted(known))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {args.token}"
    cases = [case for case in cases_for(args.word) if not args.case or case.key in args.case]
    servers = [
        Server(label, f"{address.rstrip('/')}/api/v1/workspaces/{args.workspace}/runs/groups/", log, [])
        for label, address, log in (
            (args.label, args.url, args.access_log),
            (args.baseline_label, args.baseline_url, args.baseline_access_log),
        )
        if address
    ]
    for server in servers:
        server.results = [Result(case) for case in cases]
    urls = " and ".join(server.url for server in servers)
    load_before = os.getloadavg()[0]
    print(f"Timing {len(cases)} cases of {urls}, {args.requests} requests each (after {args.warmup})", flush=True)
    time_cases(session, servers, args)
    load = f"load average (1 min) {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    print(load, flush=True)
    for server in servers:
        if server.access_log:
            logged = read_access_log(server.access_log)
            if not logged:
                print(f"warning: no lines tagged {TAG} in {server.access_log}; is its format right?", file=sys.stderr)
            for result in server.results:
                result.server_ms = logged.get(result.case.key, [])
    if len(servers) == 1:
        report = table(servers[0].results)
    else:
        new, old = servers
        ratios = ratio_table(new.results, old.results, new.label, old.label)
        tables = [f"{server.label}:\n\n{table(server.results)}" for server in servers]
        report = "\n\n".join([*tables, f"Server time (client time without an access log), new/baseline:\n\n{ratios}"])
    print()
    print(report)
    if args.write:
        append_results(
            args.write,
            args.label if len(servers) == 1 else f"{args.label} against {args.baseline_label}",
            f"{args.requests} timed requests per case (per server) after {args.warmup} warm-up, "
            "interleaved across cases" + (" and servers" if len(servers) > 1 else "") + f"; {load}",
            report,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
