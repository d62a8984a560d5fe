"""Hand queued runs to their compute target's workers (``runs/worker.py``) through the broker."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings

from runs.validation import Conflict

if TYPE_CHECKING:
    from celery import Celery

    from runs.models import ComputeTarget, Run


class BrokerUnavailable(Conflict):
    status = 503
    code = "BrokerUnavailable"


@cache
def _app(broker_url: str) -> Celery:
    from runs.worker import make_app

    return make_app(broker_url)


def send_to_target(run: Run, target: ComputeTarget) -> None:
    """Put the run on its target's queue. A broker that cannot be reached ends the run Failed, with
    the reason, rather than leaving it Queued with no message behind it."""
    from runs.worker import TASK_NAME

    if not settings.CELERY_BROKER_URL:
        raise BrokerUnavailable("this studio has no CELERY_BROKER_URL; compute targets need a broker")
    try:
        _app(settings.CELERY_BROKER_URL).send_task(
            TASK_NAME,
            args=[run.run_id],
            queue=target.queue_name,
            retry=True,
            retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
        )
    except Exception as error:  # kombu raises a variety of connection errors
        run.fail(code="QueueUnavailable", message=f"could not queue the run on {target.name}: {error}")
        raise BrokerUnavailable(f"the broker cannot be reached: {error}", target="target") from error
