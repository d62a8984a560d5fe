"""Time the three writes the SDK makes most, in-process (issue 15, "Lean writes"): starting a run, a
batch of metrics, a status change. Each goes through the REST API with Django's test Client as the
SDK sends it (an API token, an Idempotency-Key), against a fresh database, one request at a time:

* ``start``: ``POST .../experiments/bench/runs/`` with a display name, two tags and a property (as
  bench_runs.py seeds runs);
* ``metrics``: ``POST /api/v1/runs/<id>/metrics/``, one batch of ``loss`` and ``accuracy``, 4 points each;
* ``status``: ``POST /api/v1/runs/<id>/status/`` to Completed.

Each round is a child process of its own (a fresh database, ``--warmup`` untimed runs, then ``--runs``
timed ones), and reports milliseconds per call (mean, p50, p95) and the SQL of one call of each
kind: its statements, and apart from them the BEGIN and COMMIT that Django records with them.

``--compare SRC`` times the source tree SRC too (e.g. ``git archive HEAD | tar -x -C /tmp/before``),
its rounds alternating with this checkout's, so that both see the same machine (repeat it for more)::

    .venv/bin/python bench/bench_writes.py --compare /tmp/before --rounds 5
    .venv/bin/python bench/bench_writes.py --compare /tmp/before --rounds 5 --pg-url postgres://postgres@127.0.0.1:5432

``--write bench/RESULTS.md`` appends the table there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
KINDS = ("start", "metrics", "status")
TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK)", re.IGNORECASE)


def child(src: Path, runs: int, warmup: int) -> dict[str, Any]:
    """One round in this process, against the source tree ``src`` and the database the environment names."""
    sys.path.insert(0, str(src))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from runs.models import ApiToken, Membership, Workspace

    setup_test_environment()  # the test Client's host, "testserver", is allowed
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("bench", "bench@example.org", "x")
    Workspace.objects.create(name="default").add_member(user, Membership.Role.OWNER)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {ApiToken.objects.create_token(user, 'bench')[1]}")

    def post(url: str, body: dict[str, Any], key: str) -> Any:
        response = client.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)
        assert response.status_code in (200, 201), response.content
        return response

    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    queries: dict[str, dict[str, Any]] = {}

    def call(kind: str, url: str, body: dict[str, Any], index: int) -> Any:
        key = f"{kind}-{index}"
        if index == warmup - 1:  # the last untimed run: its SQL, as the timed ones send it
            with CaptureQueriesContext(connection) as captured:
                response = post(url, body, key)
            statements = [q["sql"] for q in captured.captured_queries]
            queries[kind] = {
                "statements": sum(1 for sql in statements if not TRANSACTION_CONTROL.match(sql)),
                "transaction": sum(1 for sql in statements if TRANSACTION_CONTROL.match(sql)),
                "sql": [sql[:140] for sql in statements],
            }
            return response
        started = time.perf_counter()
        response = post(url, body, key)
        if index >= warmup:
            times[kind].append((time.perf_counter() - started) * 1000)
        return response

    for index in range(warmup + runs):
        start = {
            "displayName": f"resnet50 lr=3e-4 #{index}",
            "tags": {"team": "vision", "dataset": f"set-{index % 7}"},
            "properties": {"git_commit": f"{index:040x}"},
        }
        run_id = call("start", "/api/v1/workspaces/default/experiments/bench/runs/", start, index).json()["runId"]
        points = [{"name": "loss", "value": 1 / (step + index + 1), "step": step} for step in range(4)]
        points += [{"name": "accuracy", "value": step / 4, "step": step} for step in range(4)]
        call("metrics", f"/api/v1/runs/{run_id}/metrics/", {"batchId": f"b{index}", "points": points}, index)
        call("status", f"/api/v1/runs/{run_id}/status/", {"status": "Completed"}, index)
    return {"times": times, "queries": queries, "vendor": connection.vendor}


def run_round(src: Path, args: argparse.Namespace, tag: str) -> dict[str, Any]:
    env = {**os.environ, "STUDIO_MONITOR": "False", "STUDIO_NOTIFY": "False", "LOG_LEVEL": "ERROR"}
    with tempfile.TemporaryDirectory(prefix="bench-writes-") as data_dir:
        env["STUDIO_DATA_DIR"] = data_dir
        database = None
        if args.pg_url:
            database = f"bench_writes_{tag}"
            _psql(args.pg_url, f"DROP DATABASE IF EXISTS {database}", f"CREATE DATABASE {database}")
            env["DATABASE_URL"] = f"{args.pg_url.rstrip('/')}/{database}"
        else:
            env.pop("DATABASE_URL", None)
        try:
            command = [sys.executable, __file__, "--child", str(src), "--runs", str(args.runs)]
            command += ["--warmup", str(args.warmup)]
            output = subprocess.run(command, env=env, check=True, capture_output=True, text=True, cwd=src).stdout
        finally:
            if database:
                _psql(args.pg_url, f"DROP DATABASE IF EXISTS {database}")
    return json.loads(output.strip().splitlines()[-1])


def _psql(url: str, *statements: str) -> None:
    for statement in statements:
        subprocess.run(["psql", f"{url.rstrip('/')}/postgres", "-qc", statement], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per round (each: start, metrics, status)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--compare", type=Path, action="append", default=[], help="another source tree to time (repeatable)"
    )
    parser.add_argument("--pg-url", help="a PostgreSQL server (postgres://user@host:port): a fresh database per round")
    parser.add_argument("--write", type=Path, help="append the results to this file (bench/RESULTS.md)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.warmup = max(1, args.warmup)
    if args.child:
        print(json.dumps(child(args.child, args.runs, args.warmup)))
        return

    trees = {str(src): src.resolve() for src in args.compare} | {"this checkout": HERE}
    results: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
    for round_number in range(args.rounds):
        for position, (label, src) in enumerate(trees.items()):
            result = run_round(src, args, f"{os.getpid()}_{round_number}_{position}")
            results[label].append(result)
            means = ", ".join(f"{kind} {statistics.mean(result['times'][kind]):.2f}" for kind in KINDS)
            print(f"round {round_number + 1} {label}: ms per call {means}", flush=True)

    vendor = next(iter(results.values()))[0]["vendor"]
    lines = [
        "| tree | request | SQL statements (+ transaction control) | mean ms | p50 ms | p95 ms | round means |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, rounds in results.items():
        for kind in KINDS:
            every = [t for result in rounds for t in result["times"][kind]]
            counted = rounds[0]["queries"][kind]
            round_means = " / ".join(f"{statistics.mean(r['times'][kind]):.2f}" for r in rounds)
            p95 = sorted(every)[max(0, round(0.95 * len(every)) - 1)]
            lines.append(
                f"| {label} | {kind} | {counted['statements']} (+{counted['transaction']}) "
                f"| {statistics.mean(every):.2f} | {statistics.median(every):.2f} | {p95:.2f} | {round_means} |"
            )
    report = "\n".join(lines)
    print(f"\n{vendor}: {args.rounds} rounds x {args.runs} runs (after {args.warmup} untimed)\n\n{report}")
    for label, rounds in results.items():
        print(f"\nSQL of one call each, {label}:")
        for kind in KINDS:
            print(f"  {kind}:")
            for sql in rounds[0]["queries"][kind]["sql"]:
                print(f"    {sql}")
    if args.write:
        sys.path.insert(0, str(HERE))
        from bench.common import append_results

        method = f"{vendor}, in-process (Django test Client), {args.rounds} rounds x {args.runs} runs per tree"
        append_results(args.write, f"Writes, {vendor}", method, report)


if __name__ == "__main__":
    main()
