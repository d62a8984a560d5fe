"""How far behind the script a run's live log is on its Outputs tab, for a script printing 1,000
lines a second (issue 14's bar: the log tail stays within 2 s of the script).

Everything in one command, in a studio of its own (bench_run_page.py's ``Studio``: a fresh data
folder under /tmp, SQLite or a fresh PostgreSQL database, ``bootstrap``, gunicorn ``-w 2 --threads
4`` with an access log):

1. A script run is submitted to the ``local`` target with the SDK (``Experiment.submit``), as a user
   does: the SDK starts the runner (``runs/runner.py``), which runs the script, copies its output to
   the log file as it arrives and ships the new bytes to the studio every 0.5 s. The script prints
   ``--rate`` lines a second (default 1,000) for ``--seconds`` (default 30), each stamped with
   ``time.time()`` when printed, one ``print(..., flush=True)`` a line (about 75 bytes a line).
2. Meanwhile a "page" follows the log exactly as the browser's Outputs tab does: a session logged in
   through the login form opens ``/w/<ws>/runs/<run>/outputs/`` (which opens on the log), reads the
   live tail's poller from it (``<span class="tail" hx-get=".../logs/?path=logs/std_log.txt&after=N"
   hx-trigger="load delay:2s">``), and then, as htmx does, waits the poller's delay, GETs that URL with
   ``HX-Request: true``, takes the lines in the answer and the next poller from it, waits its delay,
   ... until the answer has no poller (the run has ended and all of the log is read). The delay
   (``load delay:500ms`` after an answer with lines, ``2s`` after one without) starts when the poller
   is swapped in, so a cycle is the delay plus the request's own time. For each line received:
   receive time minus the line's stamp. ``--poll-every`` fixes the interval instead (a what-if).
3. At the same time an API reader (``--api-every``, default 0.1 s; 0 turns it off) follows the same
   log over ``GET /api/v1/runs/<run>/logs/logs/std_log.txt?after=N``, as ``studio run logs
   --follow`` does: its lag is how soon a line can be read from the studio at all (the runner's
   0.5 s shipping, the upload, storing), i.e. the part of the page's lag that is not the poll
   interval.

Reported: for the page and the API reader, p50/p95/max of the lag, the lines received (each line once,
in order, none missing), the lines/s delivered, and the server time of their requests (gunicorn's
``%(D)s``); the rate the script really printed at; the bar met or not.

    .venv/bin/python bench/bench_log_tail.py --write bench/RESULTS.md
    .venv/bin/python bench/bench_log_tail.py --database postgres --port 8764 --write bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import html
import os
import re
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_run_page import BENCH_DIR, WORKSPACE, Studio, login  # noqa: E402
from common import TAG, append_results, percentile, read_access_log  # noqa: E402

LOG = "logs/std_log.txt"
POLL_EVERY = 0.0  # 0: as the page's poller says (hx-trigger="load delay:500ms" after lines, "2s" when quiet)
DELAY_RE = re.compile(r'hx-trigger="(?:load delay:|every )(\d+(?:\.\d+)?)(ms|s)"')
BAR_S = 2.0
TAIL_RE = re.compile(r'<span class="tail" hx-get="([^"]+)"')
LINE_RE = re.compile(r'<span class="ln[^"]*">(.*?)</span>')

SCRIPT = """
import random, sys, time
rate, seconds = {rate}, {seconds}
total = int(rate * seconds)
start = time.time()
for n in range(total):
    target = start + n / rate
    now = time.time()
    if now < target:
        time.sleep(target - now)
    print(f"{{time.time():.6f}} line {{n:07d}} step={{n // 10}} loss={{random.random():.6f}} lr=3.0e-04 ok", flush=True)
print(f"done {{total}} lines in {{time.time() - start:.3f}} s", flush=True)
"""


@dataclass
class Reader:
    """Lines as one reader received them: for each, its number, its stamp, and when it arrived."""

    name: str
    numbers: list[int] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    requests: int = 0
    bytes: int = 0
    done_line: str = ""

    def take(self, lines: list[str], now: float) -> None:
        for line in lines:
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "line":
                self.numbers.append(int(parts[2]))
                self.lags.append(now - float(parts[0]))
                self.arrivals.append(now)
            elif line.startswith("done "):
                self.done_line = line


def _delay(poller: str) -> float:
    """The seconds htmx waits before the poller's request: its hx-trigger's delay."""
    found = DELAY_RE.search(poller)
    if found is None:
        raise ValueError(f"no delay in the poller {poller[:200]!r}")
    return float(found[1]) / (1000 if found[2] == "ms" else 1)


def follow_page(
    session: requests.Session, base: str, run_id: str, reader: Reader, errors: list[str], every: float = POLL_EVERY
) -> None:
    """The Outputs tab's live log, as the browser's htmx follows it (``every``: the poller's interval;
    the page's is 2 s, another is a what-if)."""
    try:
        page = session.get(f"{base}/w/{WORKSPACE}/runs/{run_id}/outputs/", timeout=60)
        page.raise_for_status()
        text = page.text
        reader.take([html.unescape(x) for x in LINE_RE.findall(text)], time.time())
        while found := TAIL_RE.search(text):
            time.sleep(every or _delay(text[found.start() :]))
            url = requests.compat.urljoin(base, html.unescape(found.group(1)))
            headers = {"HX-Request": "true", "X-Bench-Id": f"{TAG}.page"}
            response = session.get(url, headers=headers, timeout=60)
            now = time.time()
            response.raise_for_status()
            reader.requests += 1
            reader.bytes += len(response.content)
            text = response.text
            reader.take([html.unescape(x) for x in LINE_RE.findall(text)], now)
    except Exception as error:  # noqa: BLE001 (reported by the main thread)
        errors.append(f"page: {error!r}")


def follow_api(
    config_token: str, base: str, run_id: str, every: float, reader: Reader, stop: threading.Event, errors: list[str]
) -> None:
    """The same log over the REST API, every ``every`` seconds, as ``studio run logs --follow``."""
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {config_token}", "X-Bench-Id": f"{TAG}.api"})
    url = f"{base}/api/v1/runs/{run_id}/logs/{LOG}"
    offset, pending = 0, b""
    try:
        while True:
            ending = stop.is_set()
            response = session.get(url, params={"after": offset}, timeout=60)
            now = time.time()
            if response.status_code == 404:  # no output yet
                time.sleep(every)
                continue
            response.raise_for_status()
            reader.requests += 1
            reader.bytes += len(response.content)
            offset = int(response.headers.get("X-Next-Offset", offset))
            pending += response.content
            *lines, pending = pending.split(b"\n")
            reader.take([line.decode(errors="replace") for line in lines], now)
            if ending and not response.content:
                return
            time.sleep(every)
    except Exception as error:  # noqa: BLE001
        errors.append(f"api: {error!r}")


def summary(reader: Reader, expected: int, server_ms: list[float]) -> str:
    if not reader.lags:
        return f"| {reader.name} | 0 of {expected} lines | | | | | | |"
    numbers_ok = reader.numbers == list(range(expected))
    span = max(reader.arrivals) - min(reader.arrivals)
    delivered = len(reader.numbers) / span if span > 0 else float("nan")
    server = (
        f"{percentile(server_ms, 50):.0f} / {percentile(server_ms, 95):.0f} / {max(server_ms):.0f}" if server_ms else ""
    )
    return (
        f"| {reader.name} | {len(reader.numbers):,} of {expected:,}{'' if numbers_ok else ' ⚠ not each once in order'} "
        f"| {percentile(reader.lags, 50):.2f} | **{percentile(reader.lags, 95):.2f}** | {max(reader.lags):.2f} "
        f"| {delivered:,.0f} | {reader.requests} ({reader.bytes / 1024:,.0f} KiB) | {server} |"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL, without a database")
    parser.add_argument("--port", type=int, default=8763)
    parser.add_argument("--src", type=Path, default=BENCH_DIR.parent, help="the checkout to serve (default: this one)")
    parser.add_argument("--rate", type=int, default=1000, help="lines a second the script prints")
    parser.add_argument("--seconds", type=float, default=30.0, help="for how long")
    parser.add_argument(
        "--poll-every", type=float, default=POLL_EVERY, help="a fixed poll interval (default: the poller's own delay)"
    )
    parser.add_argument("--api-every", type=float, default=0.1, help="the API reader's interval (0: no API reader)")
    parser.add_argument("--keep", action="store_true", help="keep the data folder and database")
    parser.add_argument("--label", default="", help="for the report (default: the database)")
    parser.add_argument("--write", type=Path, help="append the results to this Markdown file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    studio = Studio(args.src.resolve(), args.database, args.port, args.pg_url, args.keep, "bench_log_tail")
    try:
        studio.setup_django()
        database = studio.describe()
        studio.serve()
        from runs.sdk import Experiment, ScriptRunConfig, Workspace

        workspace = Workspace.from_config(studio.config)
        session = login(studio.url)
        expected = int(args.rate * args.seconds)
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "prints.py").write_text(textwrap.dedent(SCRIPT.format(rate=args.rate, seconds=args.seconds)))
            experiment = Experiment(workspace, "bench-log-tail")
            run = experiment.submit(ScriptRunConfig(source_directory=folder, script="prints.py"))
            submitted = time.time()
            print(f"Submitted {run.id}; following its log for ~{args.seconds:.0f} s", flush=True)
            polling = f"every {args.poll_every:g} s" if args.poll_every else "as its poller says"
            page, api, errors = (
                Reader(f"page (Outputs tab, htmx {polling})"),
                Reader("API reader"),
                [],
            )
            if args.poll_every != POLL_EVERY:
                page.name += " (a what-if: the page polls as its poller says)"
            stop = threading.Event()
            threads = [
                threading.Thread(target=follow_page, args=(session, studio.url, run.id, page, errors, args.poll_every))
            ]
            if args.api_every > 0:
                api.name = f"API reader (every {args.api_every:g} s)"
                threads.append(
                    threading.Thread(
                        target=follow_api,
                        args=(workspace._token, studio.url, run.id, args.api_every, api, stop, errors),
                    )
                )
            load_start = os.getloadavg()[0]
            for thread in threads:
                thread.start()
            details = run.wait_for_completion()
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
            load_end = os.getloadavg()[0]
        if errors:
            print("\n".join(errors), flush=True)
        logged = read_access_log(studio.access_log)
        done = page.done_line or api.done_line
        rows = [summary(page, expected, logged.get("page", []))]
        if args.api_every > 0:
            rows.append(summary(api, expected, logged.get("api", [])))
        report = "\n".join(
            [
                "| Reader | lines received | lag p50 (s) | lag p95 (s) | lag max (s) | lines/s delivered "
                "| requests (bytes) | server p50 / p95 / max (ms) |",
                "|---|---:|---:|---:|---:|---:|---:|---:|",
                *rows,
            ]
        )
        bar = "met" if page.lags and percentile(page.lags, 95) <= BAR_S else "**missed**"
        report += (
            f"\n\nThe script: `{done}` (asked: {expected:,} lines in {args.seconds:g} s); the run "
            f"{details['status']}, {time.time() - submitted:.0f} s from submit to the end of reading; load "
            f"average {load_start:.1f} at the start, {load_end:.1f} at the end. Bar (the page's lag p95 ≤ 2 s): {bar}."
        )
        if errors:
            report += "\n\nErrors: " + "; ".join(errors)
        print()
        print(report, flush=True)
        if args.write:
            method = (
                f"{database}; gunicorn -w 2 --threads 4; a script run (local target, submitted with the SDK) "
                f"printing {args.rate:,} lines/s for {args.seconds:g} s; the runner, script, server and readers "
                f"on this machine"
            )
            append_results(args.write, args.label or database, method, report)
    finally:
        studio.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
