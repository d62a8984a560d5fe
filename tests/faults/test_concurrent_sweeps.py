"""Several server processes sweep heartbeats at once: a sweep that loses a race to another is a quiet no-op."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from runs import monitor
from runs.models import Run, RunStatusEvent
from tests.conftest import make_run

S = Run.Status


def test_a_transition_whose_run_another_sweeper_moved_first_is_a_quiet_no_op(
    db: Any, settings: Any, workspace: Any, alice: Any
) -> None:
    settings.RUNS_HEARTBEAT_TIMEOUT, settings.RUNS_LOST_CONTACT_AFTER = 60, 600
    run = make_run(workspace, alice)
    silent_at, lost_at = run.last_heartbeat_at + timedelta(seconds=61), run.last_heartbeat_at + timedelta(seconds=661)
    read_by_the_slower_sweeper = Run.objects.get(pk=run.pk)
    assert monitor.sweep(now=silent_at) == 1  # the faster one
    assert read_by_the_slower_sweeper.transition(S.NOT_RESPONDING, only_if=Q(last_heartbeat_at__lt=silent_at)) is False

    read_by_the_slower_sweeper = Run.objects.get(pk=run.pk)
    assert monitor.sweep(now=lost_at) == 1
    lost = Q(last_heartbeat_at__lt=lost_at)
    assert read_by_the_slower_sweeper.transition(S.FAILED, error_code="LostContact", only_if=lost) is False
    assert list(run.events.values_list("to_status", flat=True)) == [S.RUNNING, S.NOT_RESPONDING, S.FAILED]


def test_two_sweepers_over_the_same_silent_runs_record_each_change_once(
    transactional_db: Any, settings: Any, workspace: Any, alice: Any
) -> None:
    settings.RUNS_HEARTBEAT_TIMEOUT, settings.RUNS_LOST_CONTACT_AFTER = 1, 1
    runs = [make_run(workspace, alice, experiment="sweeps") for _ in range(20)]
    long_ago = timezone.now() - timedelta(hours=1)

    for round_ in range(5):
        # Alive again but long silent: both sweepers race over all 20 runs, each of which moves twice in one
        # pass (Running -> NotResponding -> Failed, since contact is lost too).
        Run.objects.filter(pk__in=[r.pk for r in runs]).update(status=S.RUNNING, last_heartbeat_at=long_ago)
        first_event = RunStatusEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
        start = threading.Barrier(2)
        errors: list[BaseException] = []
        changed: list[int] = []

        def sweep_once(start: threading.Barrier = start, errors: list = errors, changed: list = changed) -> None:
            try:
                start.wait(timeout=30)
                changed.append(monitor.sweep())
            except BaseException as error:  # what a server process's sweep pass would have stopped on
                errors.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=sweep_once) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == [], f"round {round_}: {errors!r}"
        assert sum(changed) == 2 * len(runs), f"round {round_}: {changed}"
        for run in runs:
            moves = RunStatusEvent.objects.filter(run=run, pk__gt=first_event).order_by("pk")
            assert list(moves.values_list("from_status", "to_status")) == [
                (S.RUNNING, S.NOT_RESPONDING),
                (S.NOT_RESPONDING, S.FAILED),
            ]
            assert Run.objects.get(pk=run.pk).status == S.FAILED
