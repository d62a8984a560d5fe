"""`manage.py notifyworker`: send notifications from a Celery queue, where a broker is configured."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from runs import notify


class Command(BaseCommand):
    help = (
        "Run a Celery worker that sends the studio's notifications (mail and webhooks). Needed where "
        "CELERY_BROKER_URL is set: the server processes then queue the sending here instead of doing it."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--concurrency", type=int, default=1)

    def handle(self, *args: Any, concurrency: int, **options: Any) -> None:
        if not settings.CELERY_BROKER_URL:
            raise CommandError("set CELERY_BROKER_URL (redis://host:6379/0): without a broker the server sends itself")
        app = notify.make_app(settings.CELERY_BROKER_URL)
        app.worker_main(
            ["worker", "--queues", settings.NOTIFY_QUEUE, "--concurrency", str(concurrency),
             "--hostname", f"{settings.NOTIFY_QUEUE}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
        )  # fmt: skip
