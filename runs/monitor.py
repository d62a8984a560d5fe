"""No run stays "Running" after whatever executed it died.

Runners and the SDK send heartbeats. ``sweep()`` marks runs that have been silent longer than
``RUNS_HEARTBEAT_TIMEOUT`` seconds NotResponding, and ends those silent for
``RUNS_LOST_CONTACT_AFTER`` seconds more: Failed ("lost contact"), or Canceled where a cancel
had been asked for. A heartbeat that resumes in between brings a run back to Running
(``Run.heartbeat``).

The embedded default needs no extra process: every server process runs ``sweep()`` every
``RUNS_MONITOR_INTERVAL`` seconds in a background thread (started in ``studio/wsgi.py``).
Several processes sweeping at once is safe: each change is a compare-and-swap that also checks
the run is still silent.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from runs.background import Repeating
from runs.models import Run

log = logging.getLogger("runs.monitor")


def sweep(now: datetime | None = None) -> int:
    """Apply the heartbeat rules once; returns how many runs changed status."""
    now = now or timezone.now()
    silence = timedelta(seconds=settings.RUNS_HEARTBEAT_TIMEOUT)
    lost = silence + timedelta(seconds=settings.RUNS_LOST_CONTACT_AFTER)
    silent_since = Q(last_heartbeat_at__lt=now - silence)
    lost_since = Q(last_heartbeat_at__lt=now - lost)
    changed = 0
    for run in Run.objects.filter(silent_since, status__in=Run.ALIVE):
        changed += run.transition(Run.Status.NOT_RESPONDING, only_if=silent_since)
    for run in Run.objects.filter(lost_since, status=Run.Status.NOT_RESPONDING):
        changed += run.transition(
            Run.Status.FAILED,
            error_code="LostContact",
            error_message=f"lost contact: no heartbeat from the run for {int(lost.total_seconds())} seconds",
            only_if=lost_since,
        )
    # Whatever was to stop the run went silent too: nothing is left running it.
    for run in Run.objects.filter(lost_since, status=Run.Status.CANCEL_REQUESTED):
        changed += run.transition(Run.Status.CANCELED, only_if=lost_since)
    return changed


def _sweep_and_say() -> None:
    if changed := sweep():
        log.info("monitor: %d runs changed status", changed)


_monitor = Repeating("studio-run-monitor", _sweep_and_say, log)


def start_in_background(interval: float | None = None) -> threading.Thread:
    """Start the sweeping thread of this process, once."""
    return _monitor.start(interval if interval is not None else settings.RUNS_MONITOR_INTERVAL)


def stop() -> None:
    """Stop the sweeping thread and wait for it (tests start and stop it)."""
    _monitor.stop()
