"""Where the All runs page spends its time: its SQL, the database's plans, and a Python profile.

Runs the real view (``studio.views.run_list``) in-process through Django's test client, logged in
as ``--username``, with the same GET parameters a browser sends, and

* lists every SQL query the request made, with its time (``CaptureQueriesContext``);
* with ``--explain``, runs each list query again under ``EXPLAIN (ANALYZE, BUFFERS)`` on
  PostgreSQL, or ``EXPLAIN QUERY PLAN`` plus a timed execution on SQLite, and prints the plans;
* with ``--profile N``, profiles N requests with cProfile and prints the top functions;
* with ``--repeat N``, times N requests in-process (no HTTP, no gunicorn) and splits each into
  time in the database and time in Python.

Point it at the same database as the server (``DATABASE_URL`` or ``STUDIO_DATA_DIR``)::

    .venv/bin/python bench/explain_run_list.py --q 'tags.team = vision distillation' \\
        --sort=-metrics.loss --explain --repeat 10
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

HOST = "127.0.0.1"


def client_for(username: str) -> Client:
    user = get_user_model().objects.get(username=username)
    client = Client(HTTP_HOST=HOST)
    client.force_login(user)
    return client


def get_page(client: Client, url: str, params: dict[str, str], htmx: bool) -> Any:
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.get(url, params, headers=headers)
    if response.status_code != 200:
        sys.exit(f"HTTP {response.status_code}: {response.content[:300]!r}")
    return response


def short(sql: str, width: int = 150) -> str:
    sql = re.sub(r"\s+", " ", sql)
    return sql if len(sql) <= width else sql[: width - 1] + "…"


def explain(sql: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            return "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
        plan = "\n".join(f"{row[0]:>3} {row[1]:>3} {row[3]}" for row in cursor.fetchall())
        start = time.perf_counter()
        cursor.execute(sql)
        cursor.fetchall()
        return plan + f"\n(executed in {(time.perf_counter() - start) * 1000:.1f} ms)"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--username", default="bench")
    parser.add_argument("--workspace", default="default")
    parser.add_argument("--q", default="", help="the query-language text (?q=)")
    parser.add_argument("--sort", default="", help="?sort=")
    parser.add_argument("--cols", default="", help="?cols=")
    parser.add_argument("--htmx", action="store_true", help="send HX-Request: true (the table fragment)")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the queries over runs")
    parser.add_argument("--show-sql", action="store_true", help="print the full SQL of the queries over runs")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile N requests")
    parser.add_argument("--repeat", type=int, default=0, metavar="N", help="time N requests in-process")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="PostgreSQL only: SET this for the session first (e.g. jit=off); repeatable",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.profile <= 200 or not 0 <= args.repeat <= 200:
        parser.error("--profile and --repeat take 0-200")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    client = client_for(args.username)
    for setting in args.set:
        name, _, value = setting.partition("=")
        if connection.vendor != "postgresql" or not re.fullmatch(r"[a-z_]+", name) or not value:
            sys.exit(f"--set {setting!r}: only NAME=VALUE settings, only on PostgreSQL")
        with connection.cursor() as cursor:
            cursor.execute(f"SET {name} = %s", [value])
    url = f"/w/{args.workspace}/runs/"
    params = {key: value for key, value in (("q", args.q), ("sort", args.sort), ("cols", args.cols)) if value}
    get_page(client, url, params, args.htmx)  # warm up: connection, templates, caches
    with CaptureQueriesContext(connection) as captured:
        start = time.perf_counter()
        get_page(client, url, params, args.htmx)
        total = (time.perf_counter() - start) * 1000
    in_db = sum(float(q["time"]) for q in captured.captured_queries) * 1000
    print(f"{connection.vendor}: GET {url} {params} htmx={args.htmx} {' '.join(args.set)}")
    print(f"{len(captured)} queries, {in_db:.1f} ms in the database, {total:.1f} ms for the whole request\n")
    for query in captured.captured_queries:
        print(f"{float(query['time']) * 1000:8.1f} ms  {short(query['sql'])}")
    heavy = [q["sql"] for q in captured.captured_queries if 'FROM "runs_run"' in q["sql"]]
    if args.show_sql:
        for sql in heavy:
            print(f"\n{sql}")
    if args.explain:
        for sql in heavy:
            print(f"\n=== {short(sql, 110)}\n{explain(sql)}")
    if args.repeat:
        totals, dbs = [], []
        for _ in range(args.repeat):
            reset_queries()
            with CaptureQueriesContext(connection) as captured:
                start = time.perf_counter()
                get_page(client, url, params, args.htmx)
                totals.append((time.perf_counter() - start) * 1000)
            dbs.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
        python = [t - d for t, d in zip(totals, dbs, strict=True)]
        print(
            f"\n{args.repeat} requests in-process: median {statistics.median(totals):.1f} ms "
            f"(database {statistics.median(dbs):.1f} ms, Python {statistics.median(python):.1f} ms); "
            f"max {max(totals):.1f} ms"
        )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.profile):
            get_page(client, url, params, args.htmx)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
        stats.print_stats(35)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
