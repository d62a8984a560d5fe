"""Benchmark Run Studio's runs list through the REST API.

The script seeds N runs through the HTTP API (exactly as the SDK would: one request to start each
run, one metrics batch, and a status change for most of them), then times the run-list queries a
user of the studio makes, and prints a Markdown table of the results.

Seeding, per run (threads: ``--concurrency``):

* ``POST /api/v1/workspaces/<ws>/experiments/<exp>/runs/`` with a display name, a description of a
  few words, 2-3 tags (``team``, ``dataset``, and ``quality`` on about a third) and a property;
* ``POST /api/v1/runs/<id>/metrics/`` with one batch: ``loss`` and ``accuracy``, 3-5 points each;
* ``POST /api/v1/runs/<id>/status/`` to Completed (~60%) or Failed (~15%); the rest stay Running.

Timing: every query is requested ``--requests`` times, one after another, after 2 warm-up
requests; the wall-clock time of each request (client side, over loopback: it includes reading and
parsing the JSON) is summarized as p50/p95/max (nearest-rank percentiles).

Server-side times (optional): give gunicorn an access log whose lines are
``<X-Bench-Id header> <status> <microseconds>`` and pass it as ``--access-log``; the tables then
also show the time each request spent in the worker.

Reproduce (from the project root, against a fresh SQLite database)::

    export STUDIO_DATA_DIR=$(mktemp -d)
    .venv/bin/python manage.py migrate -v0
    .venv/bin/python manage.py bootstrap --config $STUDIO_DATA_DIR/config.json --url http://127.0.0.1:8765
    .venv/bin/gunicorn studio.wsgi -b 127.0.0.1:8765 -w 3 --threads 4 \\
        --access-logfile $STUDIO_DATA_DIR/access.log --access-logformat '%({x-bench-id}i)s %(s)s %(D)s' &
    .venv/bin/python bench/bench_runs.py --config $STUDIO_DATA_DIR/config.json --db-label SQLite \\
        --access-log $STUDIO_DATA_DIR/access.log --write bench/RESULTS.md

For PostgreSQL, first create an empty database and point the studio at it::

    psql -h 127.0.0.1 -U postgres -c 'drop database if exists bench_studio' -c 'create database bench_studio'
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_studio

and use another port (8766) for gunicorn and ``bootstrap --url``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from common import ACCESS_LOG_FORMAT, TAG, command_line, percentile, read_access_log  # bench/common.py
from requests.adapters import HTTPAdapter

WARMUP_REQUESTS = 2
PAGE_SIZE = 50
SLOW_P95_MS = 150.0

TEAMS = ("vision", "nlp", "speech", "rl", "infra", "recsys")
DATASETS = ("imagenet", "cifar10", "coco", "librispeech", "wikitext", "squad", "movielens")
QUALITIES = ("gold", "reviewed", "flaky")
ARCHS = ("resnet50", "vit-b16", "bert-base", "gpt2-small", "unet", "efficientnet-b0", "convnext-t", "wav2vec")
# Description words. SEARCH_WORD is among them (in about 1 description in 6) and nowhere else.
VOCABULARY = (
    "baseline",
    "ablation",
    "sweep",
    "warmup",
    "cosine",
    "schedule",
    "mixup",
    "cutmix",
    "dropout",
    "labelsmoothing",
    "distillation",
    "pretrained",
    "finetune",
    "frozen",
    "backbone",
    "longer",
    "shorter",
    "bigger",
    "batch",
    "gradient",
    "clipping",
    "fp16",
    "bf16",
    "checkpoint",
    "resume",
    "seed",
    "variance",
    "regression",
    "fix",
    "retry",
)
SEARCH_WORD = "distillation"
EXPERIMENT_PREFIX = "bench-exp"

# Server-side time: run gunicorn with ``--access-logfile FILE --access-logformat '<ACCESS_LOG_FORMAT>'`` and
# pass ``--access-log FILE``. Every request the bench times carries ``X-Bench-Id: <tag>.<kind>``; gunicorn
# logs it with the request's duration in the worker (%(D)s, microseconds: from reading the request to
# having written the response).


# --- configuration and HTTP ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    url: str  # the studio's base address, e.g. http://127.0.0.1:8765
    token: str
    workspace: str

    @property
    def api(self) -> str:
        return self.url.rstrip("/") + "/api/v1"


def load_target(args: argparse.Namespace) -> Target:
    config: dict[str, Any] = {}
    if args.config:
        config = json.loads(Path(args.config).read_text())
    url = args.url or config.get("url")
    token = args.token or config.get("token")
    workspace = args.workspace or config.get("workspace") or "default"
    if not url or not token:
        sys.exit("need --url and a token: pass --config (written by `manage.py bootstrap`) or --url and --token")
    return Target(url=url, token=token, workspace=workspace)


_local = threading.local()


def session_for(target: Target, pool: int) -> requests.Session:
    """One Session per thread (a Session is not meant to be shared between threads)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {target.token}"
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _local.session = session
    return session


class ApiError(Exception):
    def __init__(self, method: str, path: str, response: requests.Response) -> None:
        self.status = response.status_code
        self.body = response.text[:300]
        super().__init__(f"{method} {path} -> {response.status_code}: {self.body}")


def call(
    session: requests.Session, method: str, url: str, timeout: float, kind: str = "", **kwargs: Any
) -> requests.Response:
    """One request; ``kind`` labels it in the server's access log (see ACCESS_LOG_FORMAT)."""
    headers = {"X-Bench-Id": f"{TAG}.{kind}"} if kind else {}
    response = session.request(method, url, timeout=timeout, headers=headers, **kwargs)
    if response.status_code >= 400:
        raise ApiError(method, url, response)
    return response


# --- seeding -----------------------------------------------------------------------------------------------


@dataclass
class RunPlan:
    """What one seeded run holds (deterministic for a given index and seed)."""

    index: int
    run_id: str
    experiment: str
    body: dict[str, Any]
    points: list[dict[str, Any]]
    final_status: str | None  # None: stays Running


def plan_run(index: int, rng: random.Random, experiments: int) -> RunPlan:
    arch = rng.choice(ARCHS)
    team = rng.choice(TEAMS)
    dataset = rng.choice(DATASETS)
    lr = rng.choice(("1e-3", "3e-4", "1e-4", "3e-5"))
    tags: dict[str, str] = {"team": team, "dataset": dataset}
    if rng.random() < 0.33:
        tags["quality"] = rng.choice(QUALITIES)
    words = rng.sample(VOCABULARY, rng.randint(4, 6))
    description = f"{arch} on {dataset}, lr {lr}: {' '.join(words)}."
    body = {
        "runId": f"b{TAG}_{index:06d}",
        "displayName": f"{arch} lr={lr} #{index}",
        "description": description,
        "tags": tags,
        "properties": {"git_commit": f"{rng.getrandbits(40):010x}"},
    }
    # loss falls from ~0.4-2.0 towards ~0.05-1.0; accuracy rises. The last loss is < 0.3 for ~25% of runs.
    steps = rng.randint(3, 5)
    start_loss, end_loss = rng.uniform(0.4, 2.0), rng.uniform(0.05, 1.0)
    start_acc, end_acc = rng.uniform(0.1, 0.5), rng.uniform(0.5, 0.99)
    points: list[dict[str, Any]] = []
    for step in range(steps):
        frac = step / (steps - 1)
        points.append({"name": "loss", "value": round(start_loss + (end_loss - start_loss) * frac, 5), "step": step})
        points.append({"name": "accuracy", "value": round(start_acc + (end_acc - start_acc) * frac, 5), "step": step})
    roll = rng.random()
    final_status = "Completed" if roll < 0.60 else "Failed" if roll < 0.75 else None
    return RunPlan(
        index=index,
        run_id=body["runId"],
        experiment=f"{EXPERIMENT_PREFIX}-{index % experiments:02d}",
        body=body,
        points=points,
        final_status=final_status,
    )


@dataclass
class SeedStats:
    runs: int = 0
    points: int = 0
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    request_ms: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, kind: str, ms: float) -> None:
        with self.lock:
            self.requests += 1
            self.request_ms.setdefault(kind, []).append(ms)

    def failed(self, kind: str, error: Exception) -> None:
        with self.lock:
            status = error.status if isinstance(error, ApiError) else type(error).__name__
            self.errors[f"{kind} {status}"] += 1
            if len(self.error_samples) < 10:
                self.error_samples.append(str(error))


def seed_one(plan: RunPlan, target: Target, stats: SeedStats, pool: int, timeout: float) -> None:
    session = session_for(target, pool)

    def post(kind: str, path: str, body: dict[str, Any]) -> requests.Response:
        start = time.perf_counter()
        response = call(session, "POST", target.api + path, timeout, kind=f"seed.{kind.replace(' ', '_')}", json=body)
        stats.timed(kind, (time.perf_counter() - start) * 1000)
        return response

    step = "start"
    try:
        post("start run", f"/workspaces/{target.workspace}/experiments/{plan.experiment}/runs/", plan.body)
        step = "metrics"
        stored = post("log metrics", f"/runs/{plan.run_id}/metrics/", {"batchId": "b0", "points": plan.points})
        step = "status"
        if plan.final_status == "Failed":
            error = {"code": "UserError", "message": "CUDA out of memory (bench)"}
            post("set status", f"/runs/{plan.run_id}/status/", {"status": "Failed", "error": error})
        elif plan.final_status:
            post("set status", f"/runs/{plan.run_id}/status/", {"status": plan.final_status})
    except (ApiError, requests.RequestException) as error:
        stats.failed(step, error)
        return
    with stats.lock:
        stats.runs += 1
        stats.points += stored.json().get("stored", 0)


def seed(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    plans = [
        plan_run(index, random.Random(args.seed * 1_000_003 + index), args.experiments) for index in range(args.runs)
    ]
    stats = SeedStats()
    progress_every = max(1, args.runs // 20)
    print(
        f"Seeding {args.runs} runs into workspace {target.workspace!r} at {target.url} "
        f"with {args.concurrency} threads (run ids b{TAG}_NNNNNN)...",
        flush=True,
    )
    started = time.perf_counter()
    done = 0
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        futures = [pool.submit(seed_one, plan, target, stats, args.concurrency, args.timeout) for plan in plans]
        for future in as_completed(futures):
            future.result()
            done += 1
            if done % progress_every == 0 or done == len(futures):
                elapsed = time.perf_counter() - started
                print(
                    f"  {done:>7}/{args.runs} runs  {elapsed:7.1f} s  {stats.runs / elapsed:7.1f} runs/s  "
                    f"{stats.points / elapsed:8.1f} points/s  errors: {sum(stats.errors.values())}",
                    flush=True,
                )
    elapsed = time.perf_counter() - started
    summary = {
        "runs": stats.runs,
        "points": stats.points,
        "requests": stats.requests,
        "seconds": elapsed,
        "runs_per_s": stats.runs / elapsed,
        "points_per_s": stats.points / elapsed,
        "requests_per_s": stats.requests / elapsed,
        "errors": dict(stats.errors),
        "error_samples": stats.error_samples,
        "request_ms": {kind: summarize(ms) for kind, ms in stats.request_ms.items()},
        "concurrency": args.concurrency,
    }
    print(
        f"Seeded {stats.runs} runs ({stats.points} metric points, {stats.requests} requests) in {elapsed:.1f} s: "
        f"{summary['runs_per_s']:.1f} runs/s, {summary['points_per_s']:.0f} points/s, "
        f"{summary['requests_per_s']:.1f} requests/s",
        flush=True,
    )
    if stats.errors:
        print(f"Seeding errors: {dict(stats.errors)}", flush=True)
        for sample in stats.error_samples:
            print(f"  {sample}", flush=True)
    return summary


# --- timing -------------------------------------------------------------------------------------------------


def summarize(ms: Sequence[float]) -> dict[str, float]:
    return {"n": len(ms), "p50": percentile(ms, 50), "p95": percentile(ms, 95), "max": max(ms)}


@dataclass(frozen=True)
class Case:
    key: str  # names the case in the access log
    label: str
    q: str = ""
    sort: str = ""
    detail: bool = False  # a single run's details instead of a list


CASES = (
    Case("plain", "plain list (newest first)"),
    Case("tag", "tag filter", q="tags.team = vision"),
    Case("text", "free-text search", q=SEARCH_WORD),
    Case("status", "status filter", q="status = Failed"),
    Case("metric", "metric range", q="metrics.loss < 0.3"),
    Case("msort", "sort by metric", sort="-metrics.loss"),
    Case("combined", "tag + text + metric sort", q=f"tags.team = vision {SEARCH_WORD}", sort="-metrics.loss"),
    Case("detail", "run details", detail=True),
)


@dataclass
class Result:
    case: Case
    ms: list[float]
    matches: int | None
    server_ms: list[float] = field(default_factory=list)
    error: str | None = None  # the query failed: the first error, and no timings


def time_case(case: Case, target: Target, args: argparse.Namespace, run_ids: list[str]) -> Result:
    """WARMUP_REQUESTS untimed requests, then args.requests timed ones, one at a time."""
    session = session_for(target, 1)
    list_url = f"{target.api}/workspaces/{target.workspace}/runs/"
    params: dict[str, Any] = {"page_size": PAGE_SIZE}
    if case.q:
        params["q"] = case.q
    if case.sort:
        params["sort"] = case.sort

    def request(i: int, kind: str) -> requests.Response:
        if case.detail:
            return call(session, "GET", f"{target.api}/runs/{run_ids[i % len(run_ids)]}/", args.timeout, kind)
        return call(session, "GET", list_url, args.timeout, kind, params=params)

    matches = None
    for i in range(WARMUP_REQUESTS):
        response = request(i, "warmup")
        if not case.detail:
            matches = response.json()["count"]
    ms: list[float] = []
    for i in range(args.requests):
        start = time.perf_counter()
        request(i, f"q.{case.key}").json()
        ms.append((time.perf_counter() - start) * 1000)
    return Result(case, ms, matches)


def sample_run_ids(target: Target, args: argparse.Namespace) -> list[str]:
    """Run ids for the details request: one page of the workspace's runs."""
    session = session_for(target, 1)
    url = f"{target.api}/workspaces/{target.workspace}/runs/"
    response = call(session, "GET", url, args.timeout, params={"page_size": PAGE_SIZE, "sort": "run_id"})
    ids = [run["runId"] for run in response.json()["results"]]
    if not ids:
        sys.exit(f"workspace {target.workspace!r} has no runs: seed it first (drop --skip-seed)")
    return ids


def run_timings(target: Target, args: argparse.Namespace) -> list[Result]:
    run_ids = sample_run_ids(target, args)
    results: list[Result] = []
    for case in CASES:
        try:
            result = time_case(case, target, args, run_ids)
        except (ApiError, requests.RequestException) as error:
            print(f"  {case.label:<28} FAILED: {error}", flush=True)
            results.append(Result(case, [], None, error=str(error)[:200]))
            continue
        stats = summarize(result.ms)
        print(
            f"  {case.label:<28} p50 {stats['p50']:7.1f} ms  p95 {stats['p95']:7.1f} ms  max {stats['max']:7.1f} ms",
            flush=True,
        )
        results.append(result)
    return results


# --- report ------------------------------------------------------------------------------------------------


def request_text(case: Case) -> str:
    if case.detail:
        return "`GET runs/<id>/`"
    parts = [f"page_size={PAGE_SIZE}"]
    if case.q:
        parts.append(f"q=`{case.q}`")
    if case.sort:
        parts.append(f"sort=`{case.sort}`")
    return " ".join(parts)


def results_table(results: list[Result]) -> str:
    has_server = any(result.server_ms for result in results)
    header = "| Query | Request | Matches | p50 ms | p95 ms | max ms |"
    rule = "|---|---|---:|---:|---:|---:|"
    if has_server:
        header += " server p50 ms | server p95 ms |"
        rule += "---:|---:|"
    lines = [header, rule]
    for result in results:
        if result.error is not None:
            error = result.error.replace("|", "/")
            lines.append(f"| {result.case.label} ✗ | {request_text(result.case)} | failed: {error} | | | |")
            continue
        stats = summarize(result.ms)
        slow = " ⚠" if stats["p95"] > SLOW_P95_MS else ""
        matches = "1" if result.case.detail else str(result.matches)
        line = (
            f"| {result.case.label}{slow} | {request_text(result.case)} | {matches} | "
            f"{stats['p50']:.1f} | {stats['p95']:.1f} | {stats['max']:.1f} |"
        )
        if has_server and result.server_ms:
            line += f" {percentile(result.server_ms, 50):.1f} | {percentile(result.server_ms, 95):.1f} |"
        elif has_server:
            line += " | |"
        lines.append(line)
    return "\n".join(lines)


def seeding_text(summary: dict[str, Any], server: dict[str, list[float]]) -> str:
    lines = [
        f"Seeded {summary['runs']} runs, {summary['points']} metric points, {summary['requests']} requests "
        f"in {summary['seconds']:.1f} s with {summary['concurrency']} client threads: "
        f"**{summary['runs_per_s']:.1f} runs/s, {summary['points_per_s']:.0f} points/s** "
        f"({summary['requests_per_s']:.1f} requests/s). Errors: {summary['errors'] or 'none'}.",
    ]
    for sample in summary["error_samples"]:
        lines.append(f"    {sample}")
    header = "| Seeding request | n | p50 ms | p95 ms | max ms |"
    rule = "|---|---:|---:|---:|---:|"
    if server:
        header += " server p50 ms | server p95 ms | server max ms |"
        rule += "---:|---:|---:|"
    lines += ["", header, rule]
    for kind, stats in summary["request_ms"].items():
        line = f"| {kind} | {stats['n']} | {stats['p50']:.1f} | {stats['p95']:.1f} | {stats['max']:.1f} |"
        if on_server := server.get(f"seed.{kind.replace(' ', '_')}"):
            s = summarize(on_server)
            line += f" {s['p50']:.1f} | {s['p95']:.1f} | {s['max']:.1f} |"
        elif server:
            line += " | | |"
        lines.append(line)
    return "\n".join(lines)


def count_runs(target: Target, args: argparse.Namespace) -> int:
    session = session_for(target, 1)
    url = f"{target.api}/workspaces/{target.workspace}/runs/"
    return call(session, "GET", url, args.timeout, params={"page_size": 1}).json()["count"]


def project_version() -> str:
    """The git commit of the project this script sits in, as a hint of the code the server runs."""
    root = Path(__file__).resolve().parent.parent

    def git(*command: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *command], capture_output=True, text=True, timeout=10)
        return done.stdout.strip() if done.returncode == 0 else ""

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not commit:
        return "unknown (not a git checkout)"
    return commit + (" with uncommitted changes outside bench/" if dirty else "")


def write_section(path: Path, args: argparse.Namespace, body: str, total_runs: int) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = [
        f"## {args.db_label}: {total_runs} runs",
        "",
        f"- Date: {now}",
        f"- Machine: {os.cpu_count()} CPUs (nproc), {platform.machine()}, {platform.system()} {platform.release()}",
        f"- Python: {platform.python_version()} (client; the server runs in the same venv)",
        f"- Database: {args.db_label}",
        f"- Runs in the workspace: {total_runs} (seeded by this command: {0 if args.skip_seed else args.runs})",
        f"- Requests per query: {args.requests} timed, after {WARMUP_REQUESTS} warm-up; page_size={PAGE_SIZE}",
        f"- Project code: git {project_version()} (when the report was written; the server runs what it loaded)",
        f"- Command: `{command_line()}`",
        "",
        body,
        "",
    ]
    with path.open("a") as out:
        out.write("\n".join(section) + "\n")
    print(f"Appended the results to {path}", flush=True)


# --- main --------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000, help="runs to seed (default 10000)")
    parser.add_argument("--config", help="SDK config JSON {url, workspace, token} (manage.py bootstrap writes it)")
    parser.add_argument("--url", help="the studio's address (default: the config's url)")
    parser.add_argument("--token", help="an API token (default: the config's token)")
    parser.add_argument("--workspace", help="the workspace (default: the config's, else 'default')")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per query (default 30)")
    parser.add_argument("--concurrency", type=int, default=8, help="seeding threads (default 8)")
    parser.add_argument("--experiments", type=int, default=10, help="experiments to spread the runs over")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the generated runs")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-request timeout in seconds")
    parser.add_argument("--db-label", default="unknown database", help="the database, for the report")
    parser.add_argument("--write", type=Path, help="append a Markdown section with the results to this file")
    parser.add_argument(
        "--access-log",
        type=Path,
        help="gunicorn's access log, written with --access-logformat "
        f"'{ACCESS_LOG_FORMAT.replace('%', '%%')}': adds server-side times",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--seed-only", action="store_true", help="seed, do not time")
    mode.add_argument("--skip-seed", action="store_true", help="time the runs already there")
    args = parser.parse_args(argv)
    if args.runs < 0 or args.requests < 1 or args.concurrency < 1 or args.experiments < 1:
        parser.error("--runs must be >= 0; --requests, --concurrency and --experiments >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    target = load_target(args)
    summary: dict[str, Any] | None = None
    results: list[Result] = []
    if not args.skip_seed and args.runs:
        summary = seed(target, args)
    total_runs = count_runs(target, args)
    if not args.seed_only:
        print(f"Timing {len(CASES)} queries over {total_runs} runs ({args.requests} requests each)...", flush=True)
        results = run_timings(target, args)
    server = read_access_log(args.access_log) if args.access_log else {}
    if args.access_log and not server:
        print(f"warning: no lines for this run ({TAG}) in {args.access_log}; is its format right?", flush=True)
    for result in results:
        result.server_ms = server.get(f"q.{result.case.key}", [])

    report: list[str] = []
    if summary is not None:
        report += ["### Seeding", "", seeding_text(summary, server), ""]
    if results:
        table = results_table(results)
        report += ["### Queries", "", table, ""]
        slow = [r.case.label for r in results if r.ms and summarize(r.ms)["p95"] > SLOW_P95_MS]
        if slow:
            report += [f"⚠ p95 above {SLOW_P95_MS:.0f} ms: {', '.join(slow)}.", ""]
    print()
    print("\n".join(report))
    if args.write:
        write_section(args.write, args, "\n".join(report).rstrip(), total_runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
