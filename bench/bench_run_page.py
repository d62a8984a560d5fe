"""Time a run's page with 50 metrics of 10,000 points each (issue 14's bar: the server renders it in
at most 150 ms p95, and it ships at most 1 MB of chart data).

Everything in one command, in a studio of its own (nothing of an existing one is touched):

1. a fresh ``STUDIO_DATA_DIR`` under /tmp, and with ``--database postgres`` a fresh PostgreSQL
   database (``--pg-url``, default ``postgres://postgres@127.0.0.1:5432``; its name is
   ``bench_run_page_<tag>``); ``migrate``, ``bootstrap`` (the user ``bench``), ``collectstatic``;
2. one Completed run (experiment ``bench-run-page``) with ``--metrics`` scalar metrics of
   ``--points`` points each, written straight through the ORM: each point's summary by the app's own
   ``Metric.record``, then ``Metric`` and ``MetricPoint`` rows with ``bulk_create``. The series look
   like training curves (losses that fall, accuracies that rise, a learning-rate schedule, gradient
   norms with rare spikes), each value a full double with noise, one step a second (so the chart's
   times, tenths of a second after the first point, take their realistic width);
3. gunicorn (``-w 2 --threads 4``, as the other benches) on ``--port``, from ``--src`` (default: this
   checkout; point it at a clean ``git archive`` export to measure a commit while others edit the
   tree), with an access log in ``ACCESS_LOG_FORMAT`` (bench/common.py), so that each request's
   server time is gunicorn's ``%(D)s``;
4. a ``requests`` session logged in through the real login form (CSRF cookie and token), which times,
   one request at a time, the cases below in turn (request by request, so that all see the same
   machine load), ``--rounds`` rounds of ``--requests`` requests per case after ``--warmup``:

   * ``metrics``: the Metrics tab as a page (``/w/<ws>/runs/<run>/metrics/``), the bar's case;
   * ``metrics-htmx``: the same tab as htmx fetches it when the tab is clicked (``HX-Request``);
   * ``overview``: the run's page as it opens (``/w/<ws>/runs/<run>/``);

5. the page's chart data: the bytes of every ``<script type="application/json">`` inside a
   ``data-chart`` element (what the bar's "chart data" is), the points per series, and a check that
   each series keeps its metric's minimum and maximum (to 6 significant digits, as the page sends
   them); the page's bytes as sent (the studio does not compress: no GZipMiddleware) and gzip'd
   (what a compressing proxy in front would send);
6. with ``--profile``: where the Metrics tab's time goes, in this process against the same database:
   the view's time per part (SQL of the points, downsampling, formatting, template), the SQL
   statements, and the top of a cProfile.

Then it stops gunicorn, drops the PostgreSQL database and removes the data folder (unless ``--keep``).

    .venv/bin/python bench/bench_run_page.py --database sqlite --write bench/RESULTS.md
    .venv/bin/python bench/bench_run_page.py --database postgres --port 8762 --write bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import gzip
import io
import json
import math
import os
import pstats
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from common import ACCESS_LOG_FORMAT, TAG, append_results, percentile, read_access_log  # noqa: E402

USERNAME, PASSWORD, WORKSPACE = "bench", "bench-pass-1", "default"
BAR_P95_MS = 150.0
BAR_CHART_BYTES = 1_000_000
CHART_RE = re.compile(r'<div [^>]*\bdata-chart\b[^>]*>\s*<script[^>]*type="application/json"[^>]*>(.*?)</script>', re.S)


# --- a studio of its own ------------------------------------------------------------------------------


@dataclass
class Studio:
    """A data folder, a database and (once ``serve`` is called) a gunicorn, all this bench's own."""

    src: Path
    database: str  # "sqlite" or "postgres"
    port: int
    pg_url: str = "postgres://postgres@127.0.0.1:5432"
    keep: bool = False
    name: str = "bench_run_page"  # the PostgreSQL database's, before _<tag>
    data_dir: Path = field(init=False)
    db_name: str = field(init=False, default="")
    server: subprocess.Popen | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"bench-{self.database}-"))
        self.env = {"STUDIO_DATA_DIR": str(self.data_dir), "STUDIO_MONITOR": "False", "PYTHONPATH": str(self.src)}
        if self.database == "postgres":
            import psycopg

            self.db_name = f"{self.name}_{TAG}"
            with psycopg.connect(f"{self.pg_url}/postgres", autocommit=True) as admin:
                admin.execute(f"CREATE DATABASE {self.db_name}")
            self.env["DATABASE_URL"] = f"{self.pg_url}/{self.db_name}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.data_dir / "access.log"

    @property
    def config(self) -> Path:
        return self.data_dir / "config.json"

    def setup_django(self) -> None:
        """Django in this process, on this studio's database, with ``src``'s code; migrated, with
        the user (``manage.py bootstrap``) and the static files the pages name."""
        os.environ.update(self.env)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
        sys.path.insert(0, str(self.src))
        import django
        from django.core.management import call_command

        django.setup()
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        call_command(
            "bootstrap",
            "--username",
            USERNAME,
            "--password",
            PASSWORD,
            "--workspace",
            WORKSPACE,
            "--config",
            str(self.config),
            "--url",
            self.url,
            verbosity=0,
        )
        with contextlib.redirect_stdout(io.StringIO()):
            call_command("collectstatic", "--noinput", verbosity=0)
        print(f"Set up {self.describe()} in {time.perf_counter() - started:.1f} s", flush=True)

    def describe(self) -> str:
        from django.db import connection

        if connection.vendor == "sqlite":
            return f"SQLite {connection.Database.sqlite_version} (WAL) in {self.data_dir}"
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0].split()[0]
        return f"PostgreSQL {version}, database {self.db_name}"

    def serve(self, workers: int = 2, threads: int = 4) -> None:
        """gunicorn on ``port``, from ``src``, with the access log; waits until it answers."""
        from django.db import connections

        connections.close_all()  # this process's connections are not the server's
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                sys.exit(f"port {self.port} is taken")
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.server = subprocess.Popen(
            [
                str(gunicorn),
                "studio.wsgi",
                "--chdir",
                str(self.src),
                "-b",
                f"127.0.0.1:{self.port}",
                "-w",
                str(workers),
                "--threads",
                str(threads),
                "--timeout",
                "120",
                "--access-logfile",
                str(self.access_log),
                "--access-logformat",
                ACCESS_LOG_FORMAT,
                "--error-logfile",
                str(self.data_dir / "error.log"),
            ],
            env={**os.environ, **self.env},
            # from src: started elsewhere (this checkout, say), gunicorn served that folder's code
            # despite --chdir and PYTHONPATH (seen with a scratch copy's views.py)
            cwd=self.src,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/accounts/login/", timeout=5).status_code == 200:
                    return
            if self.server.poll() is not None:
                sys.exit(f"gunicorn exited ({self.server.returncode}); see {self.data_dir / 'error.log'}")
            time.sleep(0.3)
        sys.exit("gunicorn did not answer within 60 s")

    def close(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        if self.keep:
            print(f"Kept {self.data_dir}" + (f" and database {self.db_name}" if self.db_name else ""), flush=True)
            return
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if self.db_name:
            import psycopg

            with psycopg.connect(f"{self.pg_url}/postgres", autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
        shutil.rmtree(self.data_dir, ignore_errors=True)


@contextlib.contextmanager
def studio_for(args: argparse.Namespace) -> Iterator[Studio]:
    studio = Studio(args.src.resolve(), args.database, args.port, args.pg_url, args.keep)
    try:
        yield studio
    finally:
        studio.close()


def login(base: str, timeout: float = 60) -> requests.Session:
    """A session logged in through the login form, as a browser would (as bench_studio_page.py)."""
    session = requests.Session()
    url = f"{base}/accounts/login/"
    session.get(url, timeout=timeout).raise_for_status()
    token = session.cookies.get("csrftoken")
    response = session.post(
        url,
        data={"csrfmiddlewaretoken": token, "username": USERNAME, "password": PASSWORD, "next": "/"},
        headers={"Referer": url},
        timeout=timeout,
        allow_redirects=False,
    )
    if response.status_code != 302 or "sessionid" not in session.cookies:
        sys.exit(f"login failed: HTTP {response.status_code}")
    return session


# --- the run ------------------------------------------------------------------------------------------


def metric_names(n: int) -> list[str]:
    """``n`` names as a training run logs them: train/ and val/ losses and accuracies, the learning
    rate, per-layer gradient norms, ..."""
    fixed = ["train/loss", "train/accuracy", "val/loss", "val/accuracy", "lr", "grad_norm", "throughput", "epoch_time"]
    names = fixed[:n]
    layer = 0
    while len(names) < n:
        names.append(f"grad_norm/layer_{layer:02d}" if layer % 2 == 0 else f"weight_norm/layer_{layer:02d}")
        layer += 1
    return names


def series(name: str, points: int, rng: random.Random) -> list[float]:
    """A curve such a metric draws, each value a full double with noise; gradient norms spike now
    and then (what downsampling with min/max must keep)."""
    out = []
    scale = rng.uniform(0.5, 3.0)
    tau = points * rng.uniform(0.1, 0.4)
    for step in range(points):
        frac = step / max(1, points - 1)
        if "accuracy" in name:
            value = 0.98 - 0.88 * math.exp(-step / tau) + rng.gauss(0, 0.01)
        elif name == "lr":
            value = 3e-4 * 0.5 * (1 + math.cos(math.pi * frac)) + 1e-6
        elif "loss" in name:
            value = scale * math.exp(-step / tau) + 0.05 + abs(rng.gauss(0, 0.02 * scale))
        elif name == "throughput":
            value = rng.gauss(1250.0, 40.0)
        elif name == "epoch_time":
            value = rng.gauss(61.5, 2.5)
        else:  # norms: lognormal noise, a rare spike
            value = scale * rng.lognormvariate(0, 0.15) * (20 if rng.random() < 0.0005 else 1)
        out.append(value)
    return out


def seed_run(metrics: int, points: int, seed: int) -> tuple[str, dict[str, tuple[float, float]], float]:
    """One Completed run with ``metrics`` scalar metrics of ``points`` points each (one step a
    second); its run id, each metric's (min, max), and the seconds it took."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from runs.models import Experiment, Metric, MetricPoint, Run, RunSpec, Workspace
    from runs.validation import PointIn

    started = time.perf_counter()
    rng = random.Random(seed)
    user = get_user_model().objects.get(username=USERNAME)
    workspace = Workspace.objects.get(name=WORKSPACE)
    experiment = Experiment.ensure(workspace, "bench-run-page")[0]
    now = timezone.now()
    begin = now - dt.timedelta(seconds=points + 60)
    spec = RunSpec(display_name=f"{metrics} metrics x {points} points", description="issue 14's run page bench")
    extremes: dict[str, tuple[float, float]] = {}
    with transaction.atomic():
        run = experiment.create_runs([spec], by=user)[0]
        Run.objects.filter(pk=run.pk).update(
            status=Run.Status.COMPLETED,
            started_at=begin,
            ended_at=begin + dt.timedelta(seconds=points + 30),
            last_heartbeat_at=begin + dt.timedelta(seconds=points + 30),
        )
        for name in metric_names(metrics):
            metric = Metric(run=run, name=name, kind=Metric.Kind.SCALAR)
            rows = []
            for step, value in enumerate(series(name, points, rng)):
                at = begin + dt.timedelta(seconds=step + rng.uniform(0, 0.05))
                rows.append(metric.record(PointIn(step, name, Metric.Kind.SCALAR, value, step, at, ""), at))
            metric.save()
            MetricPoint.insert(rows)
            extremes[name] = (metric.min_number, metric.max_number)
    return run.run_id, extremes, time.perf_counter() - started


# --- timing -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    path: str  # after /w/<ws>/runs/<run>/
    htmx: bool = False


CASES = [
    Case("metrics", "Metrics tab (page)", "metrics/"),
    Case("metrics-htmx", "Metrics tab (htmx, the tab clicked)", "metrics/", htmx=True),
    Case("overview", "Overview (page)", ""),
]


@dataclass
class Result:
    case: Case
    ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    rounds: list[list[float]] = field(default_factory=list)
    body: bytes = b""


def time_cases(session: requests.Session, base: str, run_id: str, args: argparse.Namespace) -> list[Result]:
    """The cases in turn, request by request, ``rounds`` x ``requests`` each after ``warmup``."""
    results = [Result(case) for case in CASES]
    urls = [f"{base}/w/{WORKSPACE}/runs/{run_id}/{case.path}" for case in CASES]

    def get(i: int, kind: str) -> requests.Response:
        headers = {"X-Bench-Id": f"{TAG}.{kind}", "Accept-Encoding": "identity"}
        if CASES[i].htmx:
            headers["HX-Request"] = "true"
        response = session.get(urls[i], headers=headers, timeout=120, allow_redirects=False)
        if response.status_code != 200:
            raise RuntimeError(f"{CASES[i].key}: HTTP {response.status_code} {response.text[:300]!r}")
        return response

    for _ in range(args.warmup):
        for i in range(len(CASES)):
            get(i, "warmup")
    order = list(range(len(CASES)))
    for number in range(args.rounds):
        print(f"Round {number + 1} of {args.rounds} (load average {os.getloadavg()[0]:.1f})", flush=True)
        for _ in range(args.requests):
            for i in order:
                start = time.perf_counter()
                response = get(i, f"{CASES[i].key}.r{number}")
                results[i].body = response.content
                results[i].ms.append((time.perf_counter() - start) * 1000)
            order.reverse()
    return results


def attach_server_times(results: list[Result], log: Path, rounds: int) -> None:
    logged = read_access_log(log)
    for result in results:
        for number in range(rounds):
            ms = logged.get(f"{result.case.key}.r{number}", [])
            result.rounds.append(ms)
            result.server_ms += ms


# --- the page's chart data ----------------------------------------------------------------------------


@dataclass
class ChartData:
    charts: int
    json_bytes: int
    max_points: int
    points: int
    extremes_kept: int  # series whose min and max (6 significant digits) are among their points
    extremes_checked: int


def chart_data(body: bytes, extremes: dict[str, tuple[float, float]]) -> ChartData:
    text = body.decode()
    blobs = CHART_RE.findall(text)
    sizes, most, total, kept, checked = 0, 0, 0, 0, 0
    for blob in blobs:
        sizes += len(blob.encode())
        chart = json.loads(blob)  # json_script escapes <, > and & as \u003C ...: plain JSON
        for line in chart["series"]:
            ys = line["y"]
            most, total = max(most, len(ys)), total + len(ys)
            if line["label"] in extremes:
                low, high = extremes[line["label"]]
                checked += 1
                values = [v for v in ys if v is not None]
                kept += float(f"{low:.6g}") in values and float(f"{high:.6g}") in values
    return ChartData(len(blobs), sizes, most, total, kept, checked)


# --- where the time goes (in this process) ------------------------------------------------------------


def profile(run_id: str, repeat: int) -> str:
    """The Metrics tab's time per part, in this process: the view as a whole (Django's test client,
    logged in), then ``_metric_charts`` cut into its parts, its SQL, and the top of a cProfile."""
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from runs.models import Run
    from runs.series import downsample
    from studio import views

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username=USERNAME))  # axes wants a request to log in
    url = f"/w/{WORKSPACE}/runs/{run_id}/metrics/"
    assert client.get(url).status_code == 200

    def best_of(fn: Any) -> tuple[float, float]:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1000)
        return percentile(times, 50), min(times)

    lines = []
    view_p50, view_min = best_of(lambda: client.get(url))
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    sql_ms = sum(float(q["time"]) for q in captured.captured_queries) * 1000
    lines.append(f"- The whole request (test client, in process): p50 {view_p50:.0f} ms, best {view_min:.0f} ms")
    lines.append(
        f"- SQL statements: {len(captured.captured_queries)}; their time as Django measures it (the execute, "
        f"not the fetching of rows): {sql_ms:.0f} ms"
    )

    run = Run.objects.get(run_id=run_id)
    metrics = [m for m in run.metrics.order_by("name") if not m.name.startswith(views.SYSTEM_PREFIX)]
    shown = [m for m in metrics if m.min_number is not None]
    max_points = 1000 if len(shown) <= 4 else 500
    fetched: list[list[tuple]] = []

    def fetch() -> None:
        fetched[:] = [list(m.points.order_by("step", "id").values_list("step", "number", "time")) for m in shown]

    def decimate() -> None:
        for points in fetched:
            downsample(list(range(len(points))), [views._finite(n) for _, n, _ in points], max_points)

    def raw_fetch() -> None:
        with connection.cursor() as cursor:
            for m in shown:
                cursor.execute(
                    "SELECT step, number, time FROM runs_metricpoint WHERE metric_id = %s ORDER BY step, id", [m.pk]
                )
                cursor.fetchall()

    parts = [
        ("its points' SQL through the ORM (values_list, with datetimes made)", fetch),
        ("the same rows through a raw cursor (no Django conversion)", raw_fetch),
        ("downsampling (runs/series.py)", decimate),
        ("the template (the tab, context ready)", None),
        (
            "_metric_charts, every view cold (the cache cleared first)",
            lambda: (cache.clear(), views._metric_charts(metrics)),
        ),
        ("_metric_charts, a page seen again (its series cached)", lambda: views._metric_charts(metrics)),
    ]
    context_holder: dict[str, Any] = {}
    for label, fn in parts:
        if fn is None:
            from django.template.loader import render_to_string
            from django.test import RequestFactory

            request = RequestFactory().get(url)
            request.user = run.submitted_by
            request.htmx = False
            access, _ = views._get_run(request, WORKSPACE, run_id)
            context_holder.update(views._tab_context(request, access, run, "metrics"))

            def render_page(request: Any = request) -> None:
                render_to_string("studio/run_detail.html", context_holder, request=request)

            fn = render_page
        p50, best = best_of(fn)
        lines.append(f"- {label}: p50 {p50:.0f} ms, best {best:.0f} ms")
    reset_queries()
    profiler = cProfile.Profile()
    profiler.enable()
    client.get(url)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    print(out.getvalue(), flush=True)
    return "\n".join(lines)


# --- the report ---------------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    lines = [
        "| Case | page KiB | gzip'd KiB | client p50 | client p95 | server p50 | server p95 | server max "
        "| bar (p95 ≤ 150 ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        s = r.server_ms or r.ms
        verdict = ("met" if percentile(s, 95) <= BAR_P95_MS else "**missed**") if r.case.key == "metrics" else ""
        lines.append(
            f"| {r.case.label} | {len(r.body) / 1024:.0f} | {len(gzip.compress(r.body)) / 1024:.0f} | "
            f"{percentile(r.ms, 50):.0f} | {percentile(r.ms, 95):.0f} | {percentile(s, 50):.0f} | "
            f"**{percentile(s, 95):.0f}** | {max(s):.0f} | {verdict} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL, without a database")
    parser.add_argument("--port", type=int, default=8761)
    parser.add_argument("--src", type=Path, default=BENCH_DIR.parent, help="the checkout to serve (default: this one)")
    parser.add_argument("--metrics", type=int, default=50)
    parser.add_argument("--points", type=int, default=10_000, help="points per metric")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=40, help="timed requests per case per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="then time the parts in process, N times")
    parser.add_argument("--keep", action="store_true", help="keep the data folder and database")
    parser.add_argument("--label", default="", help="for the report (default: the database)")
    parser.add_argument("--write", type=Path, help="append the results to this Markdown file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with studio_for(args) as studio:
        studio.setup_django()
        database = studio.describe()
        run_id, extremes, seconds = seed_run(args.metrics, args.points, args.seed)
        total = args.metrics * args.points
        print(f"Seeded run {run_id}: {args.metrics} x {args.points} = {total} points in {seconds:.1f} s", flush=True)
        if studio.database == "postgres":
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        studio.serve()
        session = login(studio.url)
        results = time_cases(session, studio.url, run_id, args)
        attach_server_times(results, studio.access_log, args.rounds)
        charts = chart_data(results[0].body, extremes)
        report = table(results)
        verdict = "met" if charts.json_bytes <= BAR_CHART_BYTES else "**missed**"
        report += (
            f"\n\nChart data on the Metrics tab: {charts.charts} charts, **{charts.json_bytes:,} bytes** of JSON "
            f"(bar ≤ 1,000,000: {verdict}); {charts.points:,} points shown in all, at most {charts.max_points} a "
            f"series; min and max kept in {charts.extremes_kept} of {charts.extremes_checked} series."
        )
        per_round = "; ".join(
            f"{r.case.key} " + ", ".join(f"{percentile(ms, 95):.0f}" for ms in r.rounds if ms) for r in results
        )
        report += f"\n\nServer p95 per round (ms): {per_round}."
        if args.profile:
            report += "\n\nWhere the Metrics tab's time goes (in process, same database):\n\n" + profile(
                run_id, args.profile
            )
        print()
        print(report, flush=True)
        if args.write:
            label = args.label or database
            method = (
                f"{database}; one run, {args.metrics} scalar metrics x {args.points:,} points; gunicorn -w 2 "
                f"--threads 4; {args.rounds} rounds x {args.requests} requests per case after {args.warmup} "
                f"warm-up, cases in turn"
            )
            append_results(args.write, label, method, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
