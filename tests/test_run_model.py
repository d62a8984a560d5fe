"""The run model: one state machine, compare-and-swap transitions with an event each, numbering,
write-once properties, metric summaries."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from runs.models import Experiment, IllegalTransition, PropertyConflict, Run, RunSpec
from tests.conftest import make_run

S = Run.Status


@pytest.mark.parametrize("final", Run.TERMINAL)
def test_it_refuses_every_move_out_of_a_final_status(db: Any, workspace: Any, alice: Any, final: str) -> None:
    for to in S.values:
        run = make_run(workspace, alice)
        run.transition(final)
        with pytest.raises(IllegalTransition, match="which is final"):
            run.transition(to)
        run.refresh_from_db()
        assert run.status == final
        assert run.events.count() == 2


@pytest.mark.parametrize(
    ("path", "legal"),
    [
        ([S.QUEUED, S.STARTING, S.RUNNING, S.FINALIZING, S.COMPLETED], True),
        ([S.QUEUED, S.PREPARING, S.RUNNING, S.CANCEL_REQUESTED, S.CANCELED], True),
        ([S.RUNNING, S.NOT_RESPONDING, S.RUNNING, S.COMPLETED], True),
        ([S.RUNNING, S.NOT_RESPONDING, S.FAILED], True),
        ([S.QUEUED, S.CANCELED], True),
        ([S.RUNNING, S.QUEUED], False),
        ([S.RUNNING, S.CANCEL_REQUESTED, S.RUNNING], False),
        ([S.QUEUED, S.FINALIZING], False),
    ],
)
def test_it_follows_the_state_machine(db: Any, workspace: Any, alice: Any, path: list[str], legal: bool) -> None:
    run = make_run(workspace, alice, status=S.NOT_STARTED)
    if legal:
        for status in path:
            run.transition(status, by=alice)
        assert run.status == path[-1]
        assert [(e.from_status, e.to_status) for e in run.events.all()] == list(
            zip([S.NOT_STARTED, *path[:-1]], path, strict=True)
        )
    else:
        with pytest.raises(IllegalTransition):
            for status in path:
                run.transition(status)


def test_it_keeps_the_first_start_time_and_sets_the_end_time(db: Any, workspace: Any, alice: Any) -> None:
    run = make_run(workspace, alice)
    started = run.started_at
    run.transition(S.NOT_RESPONDING)
    run.transition(S.RUNNING)
    assert run.started_at == started and run.ended_at is None
    run.fail(code="OOM", message="out of memory", details="Traceback ...")
    run.refresh_from_db()
    assert run.ended_at is not None
    assert (run.error_code, run.error_message, run.error_details) == ("OOM", "out of memory", "Traceback ...")


def _end_in_a_race(copy: Run, to: str, barrier: threading.Barrier, outcomes: list[str]) -> None:
    try:
        barrier.wait()
        copy.transition(to)
        outcomes.append("won")
    except IllegalTransition:
        outcomes.append("lost")
    finally:
        connection.close()  # each thread had its own connection


def test_of_two_writers_only_one_wins(transactional_db: Any, workspace: Any, alice: Any) -> None:
    """Two threads, each with its own database connection and a stale copy of the run, race to
    end it: exactly one succeeds and exactly one event is written."""
    for _ in range(10):
        run = make_run(workspace, alice)
        outcomes: list[str] = []
        barrier = threading.Barrier(2)
        threads = [
            threading.Thread(target=_end_in_a_race, args=(Run.objects.get(pk=run.pk), to, barrier, outcomes))
            for to in (S.COMPLETED, S.CANCELED)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["lost", "won"]
        run.refresh_from_db()
        assert [e.to_status for e in run.events.all()] == [S.RUNNING, run.status]


def test_cancel_is_immediate_for_interactive_and_queued_runs_and_requested_otherwise(
    db: Any, workspace: Any, alice: Any
) -> None:
    interactive = make_run(workspace, alice)
    interactive.request_cancel()
    assert interactive.status == S.CANCELED
    queued = make_run(workspace, alice, type="script", script="train.py", status=S.QUEUED)
    queued.request_cancel()
    assert queued.status == S.CANCELED
    running_script = make_run(workspace, alice, type="script", script="train.py", status=S.RUNNING)
    running_script.request_cancel()
    assert running_script.status == S.CANCEL_REQUESTED
    with pytest.raises(IllegalTransition, match="already ended"):
        interactive.request_cancel()


def test_runs_are_numbered_per_experiment_and_children_in_one_transaction(db: Any, workspace: Any, alice: Any) -> None:
    first = make_run(workspace, alice, "a")
    make_run(workspace, alice, "b")
    second = make_run(workspace, alice, "a")
    assert (first.number, second.number) == (1, 2)
    experiment = Experiment.objects.get(workspace=workspace, name="a")
    children = experiment.create_runs([RunSpec(tags={"i": str(i)}) for i in range(5)], by=alice, parent=first)
    assert [c.number for c in children] == [3, 4, 5, 6, 7]
    assert first.descendant_ids() == [c.pk for c in children]


def test_properties_refuse_a_new_value_atomically(db: Any, workspace: Any, alice: Any) -> None:
    run = make_run(workspace, alice)
    run.add_properties({"author": "azureml-user"})
    with pytest.raises(PropertyConflict) as caught:
        run.add_properties({"fresh": "x", "author": "someone"})
    assert caught.value.details == {"key": "author", "existing": "azureml-user", "new": "someone"}
    assert run.get_properties() == {"author": "azureml-user"}


def test_metric_summaries_follow_every_write(db: Any, workspace: Any, alice: Any) -> None:
    run = make_run(workspace, alice)
    run.log_metrics([{"name": "loss", "value": v} for v in (0.5, 0.9, 0.1, 0.3)])
    run.log_metrics([{"name": "loss", "value": 0.7, "step": 100}, {"name": "loss", "value": 0.2}])
    metric = run.metrics.get(name="loss")
    assert (metric.count, metric.last_number, metric.min_number, metric.max_number) == (6, 0.2, 0.1, 0.9)
    assert metric.last_step == 101
    assert run.metric_values() == {"loss": [0.5, 0.9, 0.1, 0.3, 0.7, 0.2]}
