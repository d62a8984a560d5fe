"""Time the web studio's All runs page (``/w/<workspace>/runs/``) as a logged-in browser asks for it.

Logs in through the real login form (``POST /accounts/login/`` with the CSRF cookie and token, as a
browser does), then requests the page ``--requests`` times per case, one at a time, after
``--warmup`` untimed requests:

* ``plain``: the page as it opens (newest first);
* ``tag``: ``q=tags.team = vision``;
* ``text``: ``q=<word>`` (free-text search; ``--word``, default ``distillation``);
* ``msort``: ``sort=-metrics.loss``;
* ``combined``: ``q=tags.team = vision <word>`` and ``sort=-metrics.loss`` (the issue's target);
* ``combined-htmx``: the same with ``HX-Request: true``: the table fragment the search box fetches.

The view's page size is fixed (50). Reported per case: the runs matched (the page's count), the
response size, and p50/p95/max (nearest rank) of the wall-clock time per request as the client sees
it and, with ``--access-log``, of the time the request spent in the gunicorn worker. For that, start
gunicorn with ``--access-logfile FILE --access-logformat '%({x-bench-id}i)s %(s)s %(D)s'``: every
timed request carries an ``X-Bench-Id: <run tag>.<case>`` header, which the log line pairs with
the request's duration in microseconds.

Example (a database seeded by ``seed_direct.py``; the user made by ``manage.py bootstrap``)::

    .venv/bin/gunicorn studio.wsgi -b 127.0.0.1:8771 -w 2 --threads 4 \\
        --access-logfile $STUDIO_DATA_DIR/access.log --access-logformat '%({x-bench-id}i)s %(s)s %(D)s' &
    .venv/bin/python bench/bench_studio_page.py --url http://127.0.0.1:8771 --username bench \\
        --password bench-pass-1 --access-log $STUDIO_DATA_DIR/access.log --label 'SQLite' --write bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
from common import ACCESS_LOG_FORMAT, TAG, command_line, percentile, read_access_log  # bench/common.py

SLOW_P95_MS = 150.0
COUNT_RE = re.compile(r'<span id="run-count">(\d+)</span>')


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    q: str = ""
    sort: str = ""
    htmx: bool = False

    def params(self) -> dict[str, str]:
        params = {}
        if self.q:
            params["q"] = self.q
        if self.sort:
            params["sort"] = self.sort
        return params

    def request_text(self) -> str:
        parts = [f"q=`{self.q}`"] if self.q else []
        if self.sort:
            parts.append(f"sort=`{self.sort}`")
        if self.htmx:
            parts.append("HX-Request")
        return " ".join(parts) or "(none)"


def cases_for(word: str) -> list[Case]:
    return [
        Case("plain", "plain (newest first)"),
        Case("tag", "tag filter", q="tags.team = vision"),
        Case("text", "search word", q=word),
        Case("msort", "sort by metric", sort="-metrics.loss"),
        Case("combined", "tag + word + metric sort", q=f"tags.team = vision {word}", sort="-metrics.loss"),
        Case("combined-htmx", "the same, htmx fragment", f"tags.team = vision {word}", "-metrics.loss", htmx=True),
    ]


@dataclass
class Result:
    case: Case
    ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    matches: int | None = None
    size: int = 0


def login(base: str, username: str, password: str, timeout: float) -> requests.Session:
    """A session logged in through the login form, as a browser would."""
    session = requests.Session()
    url = f"{base}/accounts/login/"
    session.get(url, timeout=timeout).raise_for_status()
    token = session.cookies.get("csrftoken")
    if not token:
        sys.exit("the login page set no csrftoken cookie")
    response = session.post(
        url,
        data={"csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/"},
        headers={"Referer": url},
        timeout=timeout,
        allow_redirects=False,
    )
    if response.status_code != 302 or "sessionid" not in session.cookies:
        sys.exit(f"login as {username!r} failed: HTTP {response.status_code}")
    return session


def fetch(session: requests.Session, url: str, case: Case, kind: str, timeout: float) -> requests.Response:
    headers = {"X-Bench-Id": f"{TAG}.{kind}"}
    if case.htmx:
        headers["HX-Request"] = "true"
    response = session.get(url, params=case.params(), headers=headers, timeout=timeout, allow_redirects=False)
    if response.status_code != 200:
        raise RuntimeError(f"{case.key}: HTTP {response.status_code} {response.text[:300]!r}")
    return response


def time_case(session: requests.Session, url: str, case: Case, args: argparse.Namespace) -> Result:
    result = Result(case)
    for _ in range(args.warmup):
        response = fetch(session, url, case, "warmup", args.timeout)
    for _ in range(args.requests):
        start = time.perf_counter()
        response = fetch(session, url, case, case.key, args.timeout)
        body = response.text
        result.ms.append((time.perf_counter() - start) * 1000)
    found = COUNT_RE.search(body)
    result.matches = int(found.group(1)) if found else None
    result.size = len(response.content)
    return result


def table(results: list[Result]) -> str:
    server = any(r.server_ms for r in results)
    lines = ["| Case | Request | Matches | KiB | p50 ms | p95 ms | max ms |", "|---|---|---:|---:|---:|---:|---:|"]
    if server:
        lines[0] += " server p50 | server p95 | server max |"
        lines[1] += "---:|---:|---:|"
    for r in results:
        slow = r.server_ms or r.ms
        mark = " ⚠" if percentile(slow, 95) > SLOW_P95_MS else ""
        line = (
            f"| {r.case.label}{mark} | {r.case.request_text()} | {r.matches if r.matches is not None else '?'} | "
            f"{r.size / 1024:.0f} | {percentile(r.ms, 50):.1f} | {percentile(r.ms, 95):.1f} | {max(r.ms):.1f} |"
        )
        if server and r.server_ms:
            s = r.server_ms
            line += f" {percentile(s, 50):.1f} | **{percentile(s, 95):.1f}** | {max(s):.1f} |"
        elif server:
            line += " | | |"
        lines.append(line)
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8771", help="the studio's address")
    parser.add_argument("--username", default="bench")
    parser.add_argument("--password", required=True)
    parser.add_argument("--workspace", default="default")
    parser.add_argument("--word", default="distillation", help="the search word (default: distillation)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per case (default 30)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed requests first (default 2)")
    parser.add_argument("--case", action="append", help="only these cases (repeatable): plain, tag, text, ...")
    parser.add_argument("--timeout", type=float, default=120.0, help="per-request timeout, seconds")
    parser.add_argument(
        "--access-log", type=Path, help="gunicorn's access log, format " + repr(ACCESS_LOG_FORMAT).replace("%", "%%")
    )
    parser.add_argument("--label", default="unknown database", help="what is measured, for the report")
    parser.add_argument("--write", type=Path, help="append a Markdown section with the results to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 1000 or not 0 <= args.warmup <= 100:
        parser.error("--requests must be 1-1000 and --warmup 0-100")
    known = {case.key for case in cases_for(args.word)}
    if args.case and (unknown := set(args.case) - known):
        parser.error(f"unknown case(s) {sorted(unknown)}; cases are {', '.join(sorted(known))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = args.url.rstrip("/")
    session = login(base, args.username, args.password, args.timeout)
    url = f"{base}/w/{args.workspace}/runs/"
    cases = [case for case in cases_for(args.word) if not args.case or case.key in args.case]
    print(f"Timing {len(cases)} cases of {url}, {args.requests} requests each (after {args.warmup})", flush=True)
    results = []
    for case in cases:
        result = time_case(session, url, case, args)
        print(
            f"  {case.label:<28} matches {result.matches!s:>7}  p50 {percentile(result.ms, 50):7.1f}  "
            f"p95 {percentile(result.ms, 95):7.1f}  max {max(result.ms):7.1f} ms",
            flush=True,
        )
        results.append(result)
    if args.access_log:
        server = read_access_log(args.access_log)
        if not server:
            print(f"warning: no lines tagged {TAG} in {args.access_log}; is its format right?", flush=True)
        for result in results:
            result.server_ms = server.get(result.case.key, [])
    report = table(results)
    print()
    print(report)
    if args.write:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        section = [
            f"#### {args.label}",
            "",
            f"- {now}; {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}; "
            f"{args.requests} timed requests per case after {args.warmup} warm-up; page size 50",
            f"- Command: `{command_line()}`",
            "",
            report,
            "",
        ]
        with args.write.open("a") as out:
            out.write("\n".join(section) + "\n")
        print(f"Appended to {args.write}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
