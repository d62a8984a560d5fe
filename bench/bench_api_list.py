"""Time the REST runs list (``GET /api/v1/workspaces/<ws>/runs/``) as the SDK asks for it: a token, the
default page size, and a new connection per request (issue 15's bar).

Cases (``--case``, repeatable; all by default):

* ``page1``: the first page, newest first;
* ``tag``: ``q=tags.team = vision``;
* ``msort``: ``sort=-metrics.loss``;
* ``tag-msort``: both;
* ``text``: ``q=<--word>`` (free-text search);
* ``page20``: page 20, newest first (an offset of 1,900 runs).

Each request opens its own connection (``requests.get``, no Session), as a script calling the API now
and then does. With ``--baseline-url`` (a second server over the same database, e.g. an older commit), or
``--baseline-config`` (a second server over another database: 1,000 runs against 100,000), the
requests alternate between the two servers, the order flipping every request, so that both see
the same machine load; the report then gives the ratio of their server times. Server times come from
gunicorn's access log (start it with ``--access-logfile FILE --access-logformat
'%({x-bench-id}i)s %(s)s %(D)s'`` and pass ``--access-log FILE``); client times are wall clock.

Example (a database seeded by ``seed_direct.py``; the config written by ``manage.py bootstrap``)::

    .venv/bin/gunicorn studio.wsgi -b 127.0.0.1:8791 -w 2 --threads 4 \\
        --access-logfile $STUDIO_DATA_DIR/access.log --access-logformat '%({x-bench-id}i)s %(s)s %(D)s' &
    .venv/bin/python bench/bench_api_list.py --config $STUDIO_DATA_DIR/config.json \\
        --access-log $STUDIO_DATA_DIR/access.log --rounds 3 --label 'SQLite, 100,000 runs' --write bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
from common import TAG, append_results, percentile, read_access_log  # bench/common.py

BAR_P95_MS = 50.0


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    params: dict[str, str]


def cases_for(word: str) -> list[Case]:
    return [
        Case("page1", "page 1, newest first", {}),
        Case("tag", "tag filter", {"q": "tags.team = vision"}),
        Case("msort", "metric sort", {"sort": "-metrics.loss"}),
        Case("tag-msort", "tag filter + metric sort", {"q": "tags.team = vision", "sort": "-metrics.loss"}),
        Case("text", f"free text ({word})", {"q": word}),
        Case("page20", "page 20, newest first", {"page": "20"}),
    ]


@dataclass
class Server:
    label: str
    url: str  # the runs list's URL
    token: str
    access_log: Path | None
    client_ms: dict[str, list[float]] = field(default_factory=dict)
    counts: dict[str, object] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=dict)

    def get(self, case: Case, kind: str, timeout: float) -> float:
        headers = {"Authorization": f"Token {self.token}", "X-Bench-Id": f"{TAG}.{kind}", "Connection": "close"}
        start = time.perf_counter()
        response = requests.get(self.url, params=case.params, headers=headers, timeout=timeout)
        body = response.json()
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{self.label} {case.key}: HTTP {response.status_code} {response.text[:300]!r}")
        self.counts[case.key] = body["count"]
        self.ids[case.key] = [run["runId"] for run in body["results"]]
        return elapsed


def time_cases(servers: list[Server], cases: list[Case], args: argparse.Namespace, round_number: int) -> None:
    for case in cases:
        for server in servers:
            for _ in range(args.warmup):
                server.get(case, "warmup", args.timeout)
        order = list(range(len(servers)))
        for _ in range(args.requests):
            for i in order:
                ms = servers[i].get(case, f"{case.key}.{round_number}", args.timeout)
                servers[i].client_ms.setdefault(case.key, []).append(ms)
            order.reverse()
        if not args.baseline_config and len(servers) == 2 and servers[0].ids[case.key] != servers[1].ids[case.key]:
            raise RuntimeError(f"{case.key}: the servers answered different pages")


def server_ms(server: Server, case: Case, rounds: int) -> list[float]:
    if server.access_log is None:
        return []
    logged = read_access_log(server.access_log)
    return [ms for r in range(rounds) for ms in logged.get(f"{case.key}.{r}", [])]


def report(servers: list[Server], cases: list[Case], rounds: int) -> str:
    def p(values: list[float], q: float) -> str:
        return f"{percentile(values, q):.1f}" if values else "–"

    lines = [
        "| Case | count | server | server p50 / p95 ms | client p50 / p95 ms | p95 ≤ 50 ms |",
        "|---|---:|---|---:|---:|---|",
    ]
    for case in cases:
        for server in servers:
            timed = server_ms(server, case, rounds) or server.client_ms[case.key]
            met = "met" if percentile(timed, 95) <= BAR_P95_MS else "**missed**"
            client = server.client_ms[case.key]
            lines.append(
                f"| {case.label} | {server.counts.get(case.key)} | {server.label} | "
                f"{p(server_ms(server, case, rounds), 50)} / {p(server_ms(server, case, rounds), 95)} | "
                f"{p(client, 50)} / {p(client, 95)} | {met} |"
            )
    if len(servers) == 2:
        new, old = servers
        lines += ["", f"Server time, {new.label} ÷ {old.label}:", "", "| Case | p50 ratio | p95 ratio |"]
        lines.append("|---|---:|---:|")
        for case in cases:
            a, b = server_ms(new, case, rounds), server_ms(old, case, rounds)
            if a and b:
                lines.append(
                    f"| {case.label} | {percentile(a, 50) / percentile(b, 50):.2f} | "
                    f"{percentile(a, 95) / percentile(b, 95):.2f} |"
                )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="SDK config JSON {url, workspace, token}")
    parser.add_argument("--url", help="the studio's address (default: the config's url)")
    parser.add_argument("--access-log", type=Path, help="the server's gunicorn access log")
    parser.add_argument("--baseline-url", help="a second server to time in alternation with the first")
    parser.add_argument(
        "--baseline-config", type=Path, help="the second server's own config (another database, e.g. 1,000 runs)"
    )
    parser.add_argument("--baseline-access-log", type=Path, help="the second server's gunicorn access log")
    parser.add_argument("--baseline-label", default="baseline")
    parser.add_argument("--label", default="unknown database", help="what is measured, for the report")
    parser.add_argument("--case", action="append", help="only these cases (repeatable): page1, tag, msort, ...")
    parser.add_argument("--word", default="distillation", help="the free-text search word")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per case and round (default 30)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed requests first (default 2)")
    parser.add_argument("--rounds", type=int, default=1, help="run every case this many times in turn")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--write", type=Path, help="append a Markdown section with the results to this file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = json.loads(args.config.read_text())
    workspace = config.get("workspace", "default")
    path = f"/api/v1/workspaces/{workspace}/runs/"
    servers = [Server(args.label, (args.url or config["url"]).rstrip("/") + path, config["token"], args.access_log)]
    if args.baseline_url or args.baseline_config:
        other = json.loads(args.baseline_config.read_text()) if args.baseline_config else config
        url = (args.baseline_url or other["url"]).rstrip(
            "/"
        ) + f"/api/v1/workspaces/{other.get('workspace', 'default')}/runs/"
        servers.append(Server(args.baseline_label, url, other["token"], args.baseline_access_log))
    cases = [case for case in cases_for(args.word) if not args.case or case.key in args.case]
    loads = []
    for round_number in range(args.rounds):
        loads.append(os.getloadavg()[0])
        time_cases(servers, cases, args, round_number)
    text = report(servers, cases, args.rounds)
    print(text)
    if args.write:
        method = (
            f"{args.rounds} rounds × {args.requests} requests per case and server, a new connection each, "
            f"{args.warmup} warm-up; load average at each round's start: {', '.join(f'{x:.1f}' for x in loads)}"
        )
        append_results(args.write, args.label, method, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
