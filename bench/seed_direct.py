"""Seed a studio with many runs fast, straight through the ORM (no HTTP).

Seeding 100,000 runs through the REST API (``bench_runs.py``) takes about 25 minutes on a 2-core
machine; this script writes the same kind of runs through the models in about a minute or two, so the
web studio's pages can be timed on a large workspace (``bench_studio_page.py``).

What it writes, per run (deterministic for a given ``--seed``; the vocabulary is ``bench_runs.py``'s):

* the run, through ``Experiment.create_runs`` in batches of ``--batch`` (the app's own code path:
  validation, numbering, tags, properties, the first status event), over ``--experiments``
  experiments ``bench-exp-00`` ... (one experiment per batch, in turn);
* a display name (``resnet50 lr=3e-4 #123``), a description of 4-6 words (``SEARCH_WORD``,
  ``distillation``, in about 1 in 6), tags ``team`` (1 of 6) and ``dataset`` (1 of 7), ``quality``
  on about a third, a property ``git_commit``; run ids in the app's format
  ``<experiment>_<unix time>_<8 hex>``;
* times spread over the last ``--days`` days: ``created_at`` rises with the run's index (runs are
  created in order, as in real life), then started a few seconds later, ended minutes to hours
  later; runs of the last 12 hours are Running with a probability of 0.6, the others Completed
  (75%), Failed (18%) or Canceled (7%);
* metrics on 95% of the runs: ``loss`` and ``accuracy``, 3-5 points each. Their summaries are
  computed by the app's ``Metric.record``; the ``Metric`` and ``MetricPoint`` rows are then written
  with ``bulk_create`` (the list page reads only the summaries).

Prerequisites: a migrated database with the user and workspace, e.g.::

    export STUDIO_DATA_DIR=$(mktemp -d)            # SQLite; or DATABASE_URL=postgres://...
    .venv/bin/python manage.py migrate -v0
    .venv/bin/python manage.py bootstrap --username bench --password bench-pass-1 \\
        --config $STUDIO_DATA_DIR/config.json --url http://127.0.0.1:8771
    .venv/bin/python bench/seed_direct.py --runs 100000 --username bench

It does not run ``ANALYZE`` unless asked (``--analyze``): nothing in the app does, and the
first PostgreSQL numbers are meant to show the database as a bulk import leaves it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
# The project: PYTHONPATH wins (to seed with another checkout's code), else this script's checkout.
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(BENCH_DIR.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from runs.models import Experiment, Metric, MetricPoint, PointRow, Run, RunSpec, Workspace  # noqa: E402
from runs.validation import PointIn  # noqa: E402

sys.path.insert(0, str(BENCH_DIR))
from bench_runs import ARCHS, DATASETS, EXPERIMENT_PREFIX, QUALITIES, TEAMS, VOCABULARY  # noqa: E402

TIME_FIELDS = ["created_at", "started_at", "ended_at", "last_heartbeat_at"]


@dataclass
class Planned:
    spec: RunSpec
    created_at: dt.datetime
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    points: list[PointIn]


def plan(index: int, created_at: dt.datetime, experiment: str, rng: random.Random, now: dt.datetime) -> Planned:
    arch, team, dataset = rng.choice(ARCHS), rng.choice(TEAMS), rng.choice(DATASETS)
    lr = rng.choice(("1e-3", "3e-4", "1e-4", "3e-5"))
    tags: dict[str, str | None] = {"team": team, "dataset": dataset}
    if rng.random() < 0.33:
        tags["quality"] = rng.choice(QUALITIES)
    words = rng.sample(VOCABULARY, rng.randint(4, 6))
    recent = now - created_at < dt.timedelta(hours=12)
    if recent and rng.random() < 0.6:
        status = Run.Status.RUNNING
    else:
        roll = rng.random()
        status = Run.Status.COMPLETED if roll < 0.75 else Run.Status.FAILED if roll < 0.93 else Run.Status.CANCELED
    started_at = created_at + dt.timedelta(seconds=rng.uniform(1, 90))
    ended_at = None
    if status != Run.Status.RUNNING:
        ended_at = min(now, started_at + dt.timedelta(seconds=rng.lognormvariate(7.5, 1.2)))  # ~30 min median
    spec = RunSpec(
        run_id=f"{experiment}_{int(created_at.timestamp())}_{rng.getrandbits(32):08x}",
        display_name=f"{arch} lr={lr} #{index}",
        description=f"{arch} on {dataset}, lr {lr}: {' '.join(words)}.",
        tags=tags,
        properties={"git_commit": f"{rng.getrandbits(40):010x}"},
        status=status,
    )
    points: list[PointIn] = []
    if rng.random() < 0.95:
        # loss falls from ~0.4-2.0 towards ~0.05-1.0; accuracy rises (as in bench_runs.py).
        steps = rng.randint(3, 5)
        start_loss, end_loss = rng.uniform(0.4, 2.0), rng.uniform(0.05, 1.0)
        start_acc, end_acc = rng.uniform(0.1, 0.5), rng.uniform(0.5, 0.99)
        for step in range(steps):
            frac = step / (steps - 1)
            at = started_at + dt.timedelta(seconds=30 * (step + 1))
            for name, value in (
                ("loss", round(start_loss + (end_loss - start_loss) * frac, 5)),
                ("accuracy", round(start_acc + (end_acc - start_acc) * frac, 5)),
            ):
                points.append(PointIn(len(points), name, Metric.Kind.SCALAR, value, step, at, ""))
    return Planned(spec, created_at, started_at, ended_at, points)


def created_times(n: int, days: float, now: dt.datetime, rng: random.Random) -> list[dt.datetime]:
    """n moments over the last ``days`` days, oldest first (run i is created before run i+1)."""
    span = days * 86400
    offsets = sorted((rng.uniform(0, span) for _ in range(n)), reverse=True)
    return [now - dt.timedelta(seconds=offset) for offset in offsets]


def write_batch(experiment: Experiment, planned: list[Planned], user: Any, now: dt.datetime) -> tuple[int, dict]:
    """One batch: runs (create_runs), then their times, then metric summaries and points."""
    phases: dict[str, float] = {}
    with transaction.atomic():
        start = time.perf_counter()
        runs = experiment.create_runs([p.spec for p in planned], by=user)
        phases["create_runs"] = time.perf_counter() - start

        start = time.perf_counter()
        for run, p in zip(runs, planned, strict=True):
            run.created_at, run.started_at, run.ended_at = p.created_at, p.started_at, p.ended_at
            run.last_heartbeat_at = p.ended_at or now
        Run.objects.bulk_update(runs, TIME_FIELDS, batch_size=500)
        phases["times"] = time.perf_counter() - start

        start = time.perf_counter()
        metrics: list[Metric] = []
        points: list[PointRow] = []
        for run, p in zip(runs, planned, strict=True):
            by_name: dict[str, Metric] = {}
            for point in p.points:
                metric = by_name.get(point.name)
                if metric is None:
                    metric = by_name[point.name] = Metric(run=run, name=point.name, kind=point.kind)
                    metrics.append(metric)
                points.append(metric.record(point, point.time or now))  # the app's summary code
            for metric in by_name.values():
                metric.updated_at = p.ended_at or now
        Metric.objects.bulk_create(metrics, batch_size=1000)
        MetricPoint.insert(points)  # bulk_create gave the metrics their keys
        phases["metrics"] = time.perf_counter() - start
    return len(points), phases


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000, help="runs to add (default 100000)")
    parser.add_argument("--batch", type=int, default=1000, help="runs per create_runs call (at most 1000)")
    parser.add_argument("--experiments", type=int, default=10, help="experiments to spread the runs over")
    parser.add_argument("--username", default="bench", help="the runs' submitter (must exist: manage.py bootstrap)")
    parser.add_argument("--workspace", default="default", help="the workspace (must exist)")
    parser.add_argument("--days", type=float, default=90.0, help="spread created_at over this many days")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument("--analyze", action="store_true", help="run ANALYZE at the end (off by default)")
    args = parser.parse_args(argv)
    if args.runs < 1 or not 1 <= args.batch <= 1000 or args.experiments < 1 or args.days <= 0:
        parser.error("--runs >= 1, 1 <= --batch <= 1000, --experiments >= 1, --days > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    user = get_user_model().objects.filter(username=args.username).first()
    workspace = Workspace.objects.filter(name=args.workspace).first()
    if user is None or workspace is None:
        sys.exit(f"need the user {args.username!r} and the workspace {args.workspace!r}: run manage.py bootstrap")
    database = f"{connection.vendor} {connection.settings_dict['NAME']}"
    before = Run.objects.filter(workspace=workspace).count()
    print(f"Seeding {args.runs} runs into {database} (workspace {workspace.name!r} has {before})", flush=True)

    rng = random.Random(args.seed)
    now = timezone.now()
    times = created_times(args.runs, args.days, now, rng)
    experiments = [Experiment.ensure(workspace, f"{EXPERIMENT_PREFIX}-{i:02d}")[0] for i in range(args.experiments)]
    totals: dict[str, float] = {}
    points_total = 0
    started = time.perf_counter()
    for batch_number, first in enumerate(range(0, args.runs, args.batch)):
        experiment = experiments[batch_number % len(experiments)]
        indexes = range(first, min(first + args.batch, args.runs))
        planned = [plan(before + i, times[i], experiment.name, rng, now) for i in indexes]
        points, phases = write_batch(experiment, planned, user, now)
        points_total += points
        for phase, seconds in phases.items():
            totals[phase] = totals.get(phase, 0.0) + seconds
        done = indexes.stop
        if done % 10_000 == 0 or done == args.runs:
            elapsed = time.perf_counter() - started
            print(f"  {done:>7} runs  {elapsed:6.1f} s  {done / elapsed:7.0f} runs/s", flush=True)
    elapsed = time.perf_counter() - started
    phases_text = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in totals.items())
    print(
        f"Seeded {args.runs} runs and {points_total} metric points in {elapsed:.1f} s "
        f"({args.runs / elapsed:.0f} runs/s; {phases_text})",
        flush=True,
    )
    if args.analyze:
        start = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"ANALYZE: {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
