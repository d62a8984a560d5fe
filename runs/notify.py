"""Send what alert rules owe: the ``Delivery`` rows a status change wrote (``runs.models``).

Who sends:

* **Embedded default** (no ``CELERY_BROKER_URL``): every server process runs ``deliver_due()`` in a
  background thread (started in ``studio/wsgi.py``), every ``NOTIFY_INTERVAL`` seconds and at once
  when a status change in the same process commits (``wake``).
* **With a broker**: the same thread only notices that something is due and queues the task
  ``studio.deliver_notifications`` on ``NOTIFY_QUEUE``; ``manage.py notifyworker`` processes (Celery
  workers with Django) run ``deliver_due()``. A task lost with the broker is no loss: the rows stay
  due and the next look queues another task.

Each attempt first claims its row (a compare-and-swap with a lease), so several senders never send
one delivery twice, and a failed attempt is retried with exponential backoff (``NOTIFY_RETRY_BASE``
doubling up to ``NOTIFY_RETRY_MAX`` seconds) until it gets through or is ``NOTIFY_GIVE_UP_AFTER``
seconds old. A webhook whose URL leads into the server's own network is neither sent nor retried
(``runs.webhooks``). The one gap left is a sender that dies after the receiver took the message but
before the row says so: that delivery goes out again when its lease ends. Webhooks carry
``X-Studio-Delivery`` and mails a ``Message-ID`` made from the delivery, so receivers can drop a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import close_old_connections
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from runs import webhooks
from runs.background import Repeating
from runs.models import Delivery, Run

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger("runs.notify")

TASK_NAME = "studio.deliver_notifications"
SIGNATURE_HEADER = "X-Studio-Signature-256"


def deliver_due(now: datetime | None = None, limit: int = 100) -> int:
    """Attempt every delivery that is due (up to ``limit``); returns how many got through."""
    sent = 0
    pks = list(Delivery.objects.due(now or timezone.now()).order_by("next_attempt_at").values_list("pk", flat=True))
    for delivery in Delivery.objects.filter(pk__in=pks[:limit]).select_related(
        "rule", "event__run__experiment", "event__run__workspace", "event__by"
    ):
        if delivery.claim(settings.NOTIFY_LEASE):
            sent += attempt(delivery)
    return sent


def attempt(delivery: Delivery) -> bool:
    """Send one claimed delivery and record how it went."""
    try:
        if delivery.channel == delivery.rule.Channel.EMAIL:
            send_email(delivery)
        else:
            send_webhook(delivery)
    except (NobodyToTell, webhooks.RefusedTarget) as error:
        delivery.failed(str(error), retry_in=None)
        log.warning("delivery %s not sent: %s", delivery.pk, error)
        return False
    except Exception as error:  # SMTP and HTTP fail in many ways; each is one failed attempt
        age = (timezone.now() - delivery.created_at).total_seconds()
        retry_in = min(settings.NOTIFY_RETRY_BASE * 2 ** (delivery.attempts - 1), settings.NOTIFY_RETRY_MAX)
        give_up = age + retry_in > settings.NOTIFY_GIVE_UP_AFTER
        delivery.failed(f"{type(error).__name__}: {error}", retry_in=None if give_up else retry_in)
        log.warning("delivery %s (attempt %d) failed: %s", delivery.pk, delivery.attempts, error)
        return False
    delivery.succeeded()
    return True


class NobodyToTell(Exception):
    """The rule's recipients are all gone (left the workspace, lost their address): no retry helps."""


# --- what is said ------------------------------------------------------------------------------------------


def run_url(run: Run) -> str:
    return settings.STUDIO_BASE_URL + reverse("run_detail", args=[run.workspace.name, run.run_id])


def describe(delivery: Delivery) -> dict[str, Any]:
    """The facts of one status change, for the webhook body and the mail templates alike."""
    event, run = delivery.event, delivery.event.run
    return {
        "event": "run.status_changed",
        "delivery": delivery.pk,
        "rule": {"id": delivery.rule_id, "name": str(delivery.rule)},
        "workspace": run.workspace.name,
        "experiment": run.experiment.name,
        "run": {
            "runId": run.run_id,
            "displayName": run.display_name or run.run_id,
            "url": run_url(run),
            "duration": _hms(run.duration()),
        },
        "fromStatus": event.from_status,
        "toStatus": event.to_status,
        "at": event.at.isoformat(),
        "by": event.by.username if event.by else None,
        # Only a failure's error belongs in the message; the run may have failed and been mailed before.
        "error": (
            {"code": run.error_code, "message": run.error_message}
            if event.to_status == Run.Status.FAILED and (run.error_code or run.error_message)
            else None
        ),
    }


def _hms(elapsed: timedelta | None) -> str | None:
    return None if elapsed is None else str(timedelta(seconds=int(elapsed.total_seconds())))


def recipients(delivery: Delivery) -> list[str]:
    """The rule's addresses, and its members who are still in the workspace and have an address."""
    rule = delivery.rule
    members = rule.members.filter(memberships__workspace_id=rule.workspace_id).exclude(email="")
    return list(dict.fromkeys([*rule.emails, *members.values_list("email", flat=True)]))


def email_message(delivery: Delivery) -> EmailMultiAlternatives:
    to = recipients(delivery)
    if not to:
        raise NobodyToTell("none of the rule's recipients is still a member with an email address")
    facts = describe(delivery)
    subject = f"[Run Studio] {facts['run']['displayName']} is {facts['toStatus']} ({facts['experiment']})"
    message = EmailMultiAlternatives(
        subject=subject.replace("\n", " "),
        body=render_to_string("emails/run_status.txt", facts),
        to=to,
        headers={"Message-ID": f"<delivery-{delivery.pk}.{delivery.event_id}@run-studio>"},
    )
    message.attach_alternative(render_to_string("emails/run_status.html", facts), "text/html")
    return message


def send_email(delivery: Delivery) -> None:
    email_message(delivery).send(fail_silently=False)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class ReceiverRefused(Exception):
    """The webhook's receiver answered something other than 2xx."""


def send_webhook(delivery: Delivery) -> None:
    """POST the facts as JSON, signed with the rule's secret; anything but a 2xx is a failure.

    The URL's host is resolved and checked now, as well as when the rule was made: its name may
    lead elsewhere today, or the rule may predate the check. A refused address (``RefusedTarget``)
    is never connected to, and the request goes to the address that was checked."""
    target = webhooks.resolve(delivery.rule.webhook_url, settings.NOTIFY_WEBHOOK_ALLOWED_HOSTS)
    body = json.dumps(describe(delivery)).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "RunStudio-Webhook/1",
        "X-Studio-Event": "run.status_changed",
        "X-Studio-Delivery": str(delivery.pk),
        SIGNATURE_HEADER: sign(delivery.rule.webhook_secret, body),
    }
    response = webhooks.post(target, body, headers, timeout=settings.NOTIFY_WEBHOOK_TIMEOUT)
    if not 200 <= response.status < 300:
        raise ReceiverRefused(f"the receiver answered {response.status} {response.reason}")


# --- the sender in the background, and the Celery task -----------------------------------------------------


def make_app(broker_url: str) -> Celery:
    """A Celery app whose one task is ``deliver_due`` (its workers need Django: ``notifyworker``)."""
    from celery import Celery

    app = Celery("studio-notify", broker=broker_url)
    app.conf.update(
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    app.task(name=TASK_NAME, ignore_result=True)(_deliver_task)
    return app


def _deliver_task() -> None:
    try:
        deliver_due()
    finally:
        close_old_connections()


@cache
def _app(broker_url: str) -> Celery:
    return make_app(broker_url)


def queue_task() -> None:
    """Ask a notifyworker to deliver what is due. The task expires, so tasks queued while no worker
    listens do not pile up: the rows themselves are the memory of what is owed."""
    _app(settings.CELERY_BROKER_URL).send_task(
        TASK_NAME, queue=settings.NOTIFY_QUEUE, expires=max(30, 10 * settings.NOTIFY_INTERVAL)
    )


def look_once() -> int:
    """One round of the background sender: send what is due, or hand it to the workers."""
    if settings.CELERY_BROKER_URL and settings.NOTIFY_VIA_CELERY:
        if Delivery.objects.due(timezone.now()).exists():
            queue_task()
        return 0
    return deliver_due()


_sender = Repeating("studio-notify", look_once, log)


def wake() -> None:
    """Something is owed (called when a status change commits): look now rather than at the next tick."""
    _sender.wake()


def start_in_background(interval: float | None = None) -> threading.Thread:
    """Start this process's sender thread, once."""
    return _sender.start(interval if interval is not None else settings.NOTIFY_INTERVAL)


def stop() -> None:
    _sender.stop()
