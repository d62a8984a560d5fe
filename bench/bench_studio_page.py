"""Time the web studio's All runs page (``/w/<workspace>/runs/``) as a logged-in browser asks for it.

Logs in through the real login form (``POST /accounts/login/`` with the CSRF cookie and token, as a
browser does), then requests the page ``--requests`` times per case, one at a time, after
``--warmup`` untimed requests:

* ``plain``: the page as it opens (newest first);
* ``tag``: ``q=tags.team = vision``;
* ``text``: ``q=<word>`` (free-text search; ``--word``, default ``distillation``);
* ``msort``: ``sort=-metrics.loss``;
* ``combined``: ``q=tags.team = vision <word>`` and ``sort=-metrics.loss`` (the issue's target);
* ``combined-htmx``: the same with ``HX-Request: true``: the table fragment the search box fetches;
* ``grid17``: the new grid's case (issue 12): the 17 columns of ``GRID_COLUMNS`` (``cols=``), the tag
  filter and the metric sort;
* ``grid17-htmx``: the same with ``HX-Request: true``;
* ``tag-count``, ``text-count``, ``combined-count``, ``grid17-count``: the count request of the
  ``tag``, ``text``, ``combined`` and ``grid17`` pages. A filtered table draws its page first and
  fetches its count afterwards (issue 12): the page carries ``<span id="run-count" hx-get=COUNT_URL>``
  (the same query string plus ``&count=1``), which htmx requests once the page is shown. These cases
  read that URL from the page and time it with ``HX-Request: true``, as htmx sends it. Code from before
  that change has no such URL (its page counts); with ``--baseline-url``, these cases are timed on
  ``--url`` only.

``GRID_COLUMNS`` is eight default columns, description, the tags cell, two tag columns, a property and
four metric columns (last, min, max): every keyed one is a key ``seed_direct.py`` writes (it seeds tags
``team``, ``dataset`` and ``quality``, one property, ``git_commit``, and metrics ``loss`` and
``accuracy``), so no cell of the page is empty for want of data.

The view's page size is fixed (50). Reported per case: the runs matched (the page's count; ``after``
where the page leaves it to its count request), the
response size, and p50/p95/max (nearest rank) of the wall-clock time per request as the client sees
it and, with ``--access-log``, of the time the request spent in the gunicorn worker. For that, start
gunicorn with ``--access-logfile FILE --access-logformat '%({x-bench-id}i)s %(s)s %(D)s'``: every
timed request carries an ``X-Bench-Id: <run tag>.<case>`` header, which the log line pairs with
the request's duration in microseconds.

``--rounds N`` runs every case N times in turn (all cases, then all again), so that each case sees the
machine's load over the whole run; the tables pool the rounds, and each case's server p95 per round is
listed under them with the load average at the start of each round.

With ``--baseline-url`` (another server over the same data, e.g. an older commit's), every case is timed
against both servers in alternation, request by request (the order flips every request), so that both
see the same machine load; the report adds each server's table and the ratios new/baseline of the
server p50 and p95 (``--baseline-access-log``: that server's own access log).

Example (a database seeded by ``seed_direct.py``; the user made by ``manage.py bootstrap``)::

    .venv/bin/gunicorn studio.wsgi -b 127.0.0.1:8771 -w 2 --threads 4 \\
        --access-logfile $STUDIO_DATA_DIR/access.log --access-logformat '%({x-bench-id}i)s %(s)s %(D)s' &
    .venv/bin/python bench/bench_studio_page.py --url http://127.0.0.1:8771 --username bench \\
        --password bench-pass-1 --access-log $STUDIO_DATA_DIR/access.log --label 'SQLite' --write bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import html
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
from common import ACCESS_LOG_FORMAT, TAG, append_results, percentile, read_access_log  # bench/common.py

SLOW_P95_MS = 150.0
# The new grid's case (issue 12): 17 columns, all with data in a workspace seeded by seed_direct.py.
GRID_COLUMNS = (
    "name,run_id,experiment,status,submitted_by,target,created,duration,description,tags,tags.team,"
    "tags.dataset,properties.git_commit,metrics.loss,metrics.loss.min,metrics.accuracy,metrics.accuracy.max"
)
COUNT_RE = re.compile(r'<span id="run-count">(\d+)</span>')
# A filtered page's count, left to a request of its own (issue 12): the URL htmx asks for it.
COUNT_URL_RE = re.compile(r'<span id="run-count"[^>]*\bhx-get="([^"]+)"')


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    q: str = ""
    sort: str = ""
    htmx: bool = False
    cols: str = ""  # ``cols=``: the columns, comma-separated; none: the default columns
    count: bool = False  # the page's count request (its ``hx-get``), not the page

    @property
    def sends_htmx(self) -> bool:
        return self.htmx or self.count

    def params(self) -> dict[str, str]:
        params = {}
        if self.q:
            params["q"] = self.q
        if self.sort:
            params["sort"] = self.sort
        if self.cols:
            params["cols"] = self.cols
        return params

    def request_text(self) -> str:
        parts = [f"q=`{self.q}`"] if self.q else []
        if self.sort:
            parts.append(f"sort=`{self.sort}`")
        if self.cols:
            parts.append(f"cols=({len(self.cols.split(','))} columns)")
        if self.count:
            parts.append("then its count URL (`&count=1`)")
        if self.sends_htmx:
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
        Case("grid17", "17 columns + tag + metric sort", "tags.team = vision", "-metrics.loss", cols=GRID_COLUMNS),
        Case("grid17-htmx", "the same, htmx fragment", "tags.team = vision", "-metrics.loss", True, GRID_COLUMNS),
        Case("tag-count", "tag filter: count request", q="tags.team = vision", count=True),
        Case("text-count", "search word: count request", q=word, count=True),
        Case(
            "combined-count",
            "tag + word + sort: count request",
            f"tags.team = vision {word}",
            "-metrics.loss",
            count=True,
        ),
        Case(
            "grid17-count",
            "17 columns: count request",
            "tags.team = vision",
            "-metrics.loss",
            cols=GRID_COLUMNS,
            count=True,
        ),
    ]


@dataclass
class Result:
    case: Case
    ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    matches: int | None = None
    counted_after: bool = False  # the page left its count to a request of its own
    size: int = 0
    rounds: list[list[float]] = field(default_factory=list)  # server ms per round (--rounds)


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


def fetch(
    session: requests.Session, url: str, case: Case, kind: str, timeout: float, *, page: bool = False
) -> requests.Response:
    """``case``'s request; ``url`` is the page's, or for a count case (unless ``page``) its count URL,
    which carries the query string itself."""
    headers = {"X-Bench-Id": f"{TAG}.{kind}"}
    if case.htmx or (case.count and not page):
        headers["HX-Request"] = "true"
    params = case.params() if page or not case.count else None
    response = session.get(url, params=params, headers=headers, timeout=timeout, allow_redirects=False)
    if response.status_code != 200:
        raise RuntimeError(f"{case.key}: HTTP {response.status_code} {response.text[:300]!r}")
    return response


@dataclass
class Server:
    """One server under test: a logged-in session, the page's URL, and its access log."""

    label: str
    session: requests.Session
    url: str
    access_log: Path | None = None

    def count_url(self, case: Case, timeout: float) -> str:
        """The URL the page of ``case`` asks its count from (its run-count span's ``hx-get``)."""
        response = fetch(self.session, self.url, case, "count-url", timeout, page=True)
        found = COUNT_URL_RE.search(response.text)
        if not found:
            raise RuntimeError(f"{case.key}: the page at {self.url} has no count URL (a server from before issue 12?)")
        return requests.compat.urljoin(self.url, html.unescape(found.group(1)))


def time_case(servers: list[Server], case: Case, args: argparse.Namespace, kind: str) -> list[Result]:
    """``case`` timed on each server; with two, their requests alternate (the order flips every
    request), so both see the same machine load. A count case is timed on the first server only (the
    others get an empty result). ``kind`` names the requests in the access log."""
    results = [Result(case) for _ in servers]
    timed = servers[:1] if case.count else servers
    urls = [server.count_url(case, args.timeout) if case.count else server.url for server in timed]
    responses: list[requests.Response | None] = [None] * len(timed)
    for _ in range(args.warmup):
        for server, url in zip(timed, urls, strict=True):
            fetch(server.session, url, case, "warmup", args.timeout)
    order = list(range(len(timed)))
    for _ in range(args.requests):
        for i in order:
            start = time.perf_counter()
            responses[i] = response = fetch(timed[i].session, urls[i], case, kind, args.timeout)
            response.text  # noqa: B018 (the body is read as part of the request's time)
            results[i].ms.append((time.perf_counter() - start) * 1000)
        order.reverse()
    for result, response in zip(results, responses, strict=False):
        assert response is not None
        found = COUNT_RE.search(response.text)
        result.matches = int(found.group(1)) if found else None
        result.counted_after = COUNT_URL_RE.search(response.text) is not None
        result.size = len(response.content)
    return results


def merge(rounds: list[Result]) -> Result:
    """One case's results over the rounds, pooled."""
    pooled = Result(rounds[0].case, matches=rounds[-1].matches, counted_after=rounds[-1].counted_after)
    pooled.size = rounds[-1].size
    for result in rounds:
        pooled.ms += result.ms
    return pooled


def matches_text(result: Result) -> str:
    if result.matches is not None:
        return str(result.matches)
    return "after" if result.counted_after else "?"


def table(results: list[Result]) -> str:
    server = any(r.server_ms for r in results)
    lines = ["| Case | Request | Matches | KiB | p50 ms | p95 ms | max ms |", "|---|---|---:|---:|---:|---:|---:|"]
    if server:
        lines[0] += " server p50 | server p95 | server max |"
        lines[1] += "---:|---:|---:|"
    for r in results:
        if not r.ms:  # a count case, not timed on this server
            continue
        slow = r.server_ms or r.ms
        mark = " ⚠" if percentile(slow, 95) > SLOW_P95_MS else ""
        line = (
            f"| {r.case.label}{mark} | {r.case.request_text()} | {matches_text(r)} | "
            f"{r.size / 1024:.0f} | {percentile(r.ms, 50):.1f} | {percentile(r.ms, 95):.1f} | {max(r.ms):.1f} |"
        )
        if server and r.server_ms:
            s = r.server_ms
            line += f" {percentile(s, 50):.1f} | **{percentile(s, 95):.1f}** | {max(s):.1f} |"
        elif server:
            line += " | | |"
        lines.append(line)
    return "\n".join(lines)


def ratio_table(new: list[Result], old: list[Result], new_label: str, old_label: str) -> str:
    """Server p50 and p95 of two servers side by side (client times where there is no access log),
    and new/old."""
    lines = [
        f"| Case | p50 {new_label} | p50 {old_label} | p50 ratio | p95 {new_label} | p95 {old_label} | p95 ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for a, b in zip(new, old, strict=True):
        if not a.ms or not b.ms:  # a count case: the baseline has none
            continue
        ms_a, ms_b = a.server_ms or a.ms, b.server_ms or b.ms
        p50 = percentile(ms_a, 50), percentile(ms_b, 50)
        p95 = percentile(ms_a, 95), percentile(ms_b, 95)
        lines.append(
            f"| {a.case.label} | {p50[0]:.1f} | {p50[1]:.1f} | {p50[0] / p50[1]:.2f} | "
            f"{p95[0]:.1f} | {p95[1]:.1f} | {p95[0] / p95[1]:.2f} |"
        )
    return "\n".join(lines)


def rounds_text(servers: list[Server], results: list[list[Result]], loads: list[float]) -> str:
    """Each case's server p95 per round, per server (where there is an access log)."""
    lines = [
        f"Server p95 per round (ms; load average at each round's start: {', '.join(f'{x:.1f}' for x in loads)}):",
        "",
    ]
    for server, pooled in zip(servers, results, strict=True):
        for result in pooled:
            if result.rounds:
                per_round = ", ".join(f"{percentile(ms, 95):.0f}" for ms in result.rounds)
                lines.append(f"- {server.label}, {result.case.label}: {per_round}")
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
    parser.add_argument("--rounds", type=int, default=1, help="run every case this many times in turn (default 1)")
    parser.add_argument("--case", action="append", help="only these cases (repeatable): plain, tag, text, ...")
    parser.add_argument("--timeout", type=float, default=120.0, help="per-request timeout, seconds")
    parser.add_argument(
        "--access-log", type=Path, help="gunicorn's access log, format " + repr(ACCESS_LOG_FORMAT).replace("%", "%%")
    )
    parser.add_argument("--label", default="unknown database", help="what is measured, for the report")
    parser.add_argument("--baseline-url", help="a second server to time in alternation with --url (e.g. an old commit)")
    parser.add_argument("--baseline-access-log", type=Path, help="the second server's gunicorn access log")
    parser.add_argument("--baseline-label", default="baseline", help="the second server's name, for the report")
    parser.add_argument("--write", type=Path, help="append a Markdown section with the results to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 1000 or not 0 <= args.warmup <= 100 or not 1 <= args.rounds <= 20:
        parser.error("--requests must be 1-1000, --warmup 0-100 and --rounds 1-20")
    known = {case.key for case in cases_for(args.word)}
    if args.case and (unknown := set(args.case) - known):
        parser.error(f"unknown case(s) {sorted(unknown)}; cases are {', '.join(sorted(known))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    servers = []
    for label, address, log in (
        (args.label, args.url, args.access_log),
        (args.baseline_label, args.baseline_url, args.baseline_access_log),
    ):
        if address:
            base = address.rstrip("/")
            session = login(base, args.username, args.password, args.timeout)
            servers.append(Server(label, session, f"{base}/w/{args.workspace}/runs/", log))
    cases = [case for case in cases_for(args.word) if not args.case or case.key in args.case]
    urls = " and ".join(server.url for server in servers)
    print(
        f"Timing {len(cases)} cases of {urls}, {args.requests} requests each (after {args.warmup}), "
        f"{args.rounds} round(s)",
        flush=True,
    )
    # per round, per server, per case
    by_round: list[list[list[Result]]] = []
    loads: list[float] = []  # the 1-minute load average as each round starts
    for number in range(args.rounds):
        loads.append(os.getloadavg()[0])
        if args.rounds > 1:
            print(f"Round {number + 1} of {args.rounds} (load average {loads[-1]:.1f})", flush=True)
        per_server: list[list[Result]] = [[] for _ in servers]
        for case in cases:
            kind = f"{case.key}.r{number}" if args.rounds > 1 else case.key
            for server, result, rows in zip(servers, time_case(servers, case, args, kind), per_server, strict=True):
                rows.append(result)
                if result.ms:
                    print(
                        f"  {case.label:<32} {server.label[:16]:<16} matches {matches_text(result):>7}  "
                        f"p50 {percentile(result.ms, 50):7.1f}  p95 {percentile(result.ms, 95):7.1f}  "
                        f"max {max(result.ms):7.1f} ms",
                        flush=True,
                    )
        by_round.append(per_server)
    results = [
        [merge([by_round[n][s][c] for n in range(args.rounds)]) for c in range(len(cases))] for s in range(len(servers))
    ]
    for index, (server, pooled) in enumerate(zip(servers, results, strict=True)):
        if server.access_log:
            logged = read_access_log(server.access_log)
            if not logged:
                print(f"warning: no lines tagged {TAG} in {server.access_log}; is its format right?", flush=True)
            for c, result in enumerate(pooled):
                for number in range(args.rounds):
                    kind = f"{result.case.key}.r{number}" if args.rounds > 1 else result.case.key
                    ms = logged.get(kind, [])
                    by_round[number][index][c].server_ms = ms
                    result.server_ms += ms
                    if ms:
                        result.rounds.append(ms)
    if len(servers) == 1:
        report = table(results[0])
    else:
        tables = [f"{server.label}:\n\n{table(rows)}" for server, rows in zip(servers, results, strict=True)]
        ratios = ratio_table(results[0], results[1], servers[0].label, servers[1].label)
        report = "\n\n".join([*tables, f"Server time, new/baseline:\n\n{ratios}"])
    if args.rounds > 1:
        report += "\n\n" + rounds_text(servers, results, loads)
    print()
    print(report)
    if args.write:
        rounds = f", {args.rounds} rounds pooled" if args.rounds > 1 else ""
        append_results(
            args.write,
            args.label,
            f"{args.requests} timed requests per case{rounds} after {args.warmup} warm-up; page size 50",
            report,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
