"""What notifications cost and how fast they go out, in-process against a fresh database.

Three measurements:

* **outbox cost**: how much longer a status change takes when the workspace has alert rules
  (``Run.transition`` looks the rules up and writes the deliveries in the event's transaction):
  ``--changes`` changes (Running -> Failed) with no rule, then with ``--rules`` rules of which half
  match; p50/p95 per change.
* **throughput**: ``--deliveries`` pending mails sent by one ``deliver_due()`` loop to a real SMTP
  server on localhost (aiosmtpd), and the same number of webhooks to a local HTTP receiver.
* **latency**: a run fails in this process while the in-server sender thread runs (it is woken
  when the change commits); time from ``fail()`` returning to the SMTP server holding the mail.

Usage (SQLite in a temporary directory, or ``DATABASE_URL=postgres://...`` for an empty database)::

    STUDIO_DATA_DIR=$(mktemp -d) .venv/bin/python bench/bench_notify.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_notify .venv/bin/python bench/bench_notify.py
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
os.environ.setdefault("STUDIO_MONITOR", "False")
os.environ["STUDIO_NOTIFY"] = "False"  # the latency case starts the sender itself

from bench.common import percentile  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--rules", type=int, default=20)
    parser.add_argument("--deliveries", type=int, default=500)
    parser.add_argument("--latency-runs", type=int, default=30)
    args = parser.parse_args()

    import django

    django.setup()
    from aiosmtpd.controller import Controller
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from runs import notify
    from runs.models import AlertRule, Delivery, Experiment, Membership, Run, RunSpec, Workspace

    call_command("migrate", verbosity=0)
    User = get_user_model()  # noqa: N806
    user, _ = User.objects.get_or_create(username="bench", defaults={"email": "bench@example.org"})
    stamp = str(int(time.time()))
    workspace = Workspace.objects.create(name=f"bench-notify-{stamp}")
    workspace.add_member(user, Membership.Role.OWNER)
    watched, _ = Experiment.ensure(workspace, "watched")
    Experiment.ensure(workspace, "other")
    print(f"# Notifications bench: {connection.vendor}, {os.cpu_count()} cores")

    def runs(experiment: Experiment, n: int) -> list[Run]:
        made: list[Run] = []
        while len(made) < n:
            made += experiment.create_runs([RunSpec() for _ in range(min(100, n - len(made)))], by=user)
        return made  # Running, as start_logging() makes them

    def time_failing(batch: list[Run]) -> list[float]:
        times = []
        for run in batch:
            started = time.perf_counter()
            run.fail(message="bench")
            times.append((time.perf_counter() - started) * 1000)
        return times

    def report(label: str, times: list[float]) -> None:
        print(f"| {label} | {len(times)} | {percentile(times, 50):.2f} | {percentile(times, 95):.2f} |")

    # 1. the outbox's cost on a status change
    print("\n## A status change (Running -> Failed), ms\n\n| rules in the workspace | changes | p50 | p95 |")
    print("|---|---|---|---|")
    report("none", time_failing(runs(watched, args.changes)))
    for i in range(args.rules):
        AlertRule.create_rule(
            workspace,
            by=user,
            experiments=["watched" if i % 2 == 0 else "other"],
            statuses=["Failed"],
            emails=[f"ops{i}@example.org"],
        )
    report(f"{args.rules} ({args.rules // 2} match)", time_failing(runs(watched, args.changes)))
    Delivery.objects.all().delete()
    AlertRule.objects.filter(workspace=workspace).delete()

    # 2. throughput to a real SMTP server and a real HTTP receiver on localhost
    received: list[float] = []

    class Box:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            received.append(time.perf_counter())
            return "250 OK"

    with socket.socket() as sock:  # aiosmtpd's Controller checks its port by connecting: it needs a real one
        sock.bind(("127.0.0.1", 0))
        smtp_port = sock.getsockname()[1]
    controller = Controller(Box(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_port

    calls: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            calls.append(time.perf_counter())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()

    print("\n## Sending, one sender\n\n| channel | deliveries | seconds | per second |\n|---|---|---|---|")
    for channel, fields, sink in (
        ("email (SMTP)", {"emails": ["ops@example.org"]}, received),
        ("webhook (HTTP)", {"webhook_url": f"http://127.0.0.1:{http.server_address[1]}/hook"}, calls),
    ):
        rule = AlertRule.create_rule(workspace, by=user, experiments=["watched"], statuses=["Failed"], **fields)
        for run in runs(watched, args.deliveries):
            run.fail(message="bench")
        started = time.perf_counter()
        while Delivery.objects.filter(state="Pending").exists():
            notify.deliver_due(limit=1000)
        elapsed = time.perf_counter() - started
        assert len(sink) == args.deliveries, (channel, len(sink))
        print(f"| {channel} | {args.deliveries} | {elapsed:.2f} | {args.deliveries / elapsed:.0f} |")
        rule.delete()

    # 3. latency: fail() returns -> the SMTP server holds the mail, with the sender thread running
    AlertRule.create_rule(workspace, by=user, experiments=["watched"], statuses=["Failed"], emails=["o@example.org"])
    notify.start_in_background()
    latencies = []
    for run in runs(watched, args.latency_runs):
        before = len(received)
        run.fail(message="bench")
        started = time.perf_counter()
        while len(received) == before:
            time.sleep(0.001)
        latencies.append((received[-1] - started) * 1000)
        time.sleep(0.05)
    notify.stop()
    print(
        f"\n## From fail() to the mail on the SMTP server (sender thread, woken on commit)\n\n"
        f"{len(latencies)} runs: p50 {percentile(latencies, 50):.1f} ms, p95 {percentile(latencies, 95):.1f} ms, "
        f"max {max(latencies):.1f} ms"
    )
    controller.stop()
    http.shutdown()


if __name__ == "__main__":
    main()
