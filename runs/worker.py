"""`studio worker --target NAME`: execute the runs queued on a compute target.

A worker is a Celery worker on the target's queue (broker: ``CELERY_BROKER_URL``, Redis). Each
task carries a run id only; the worker executes the run with the same supervisor as the local
target (``runs.runner``), talking to the studio over the REST API with its own API token, so
workers run on any machine that reaches the broker and the studio. Several workers on several
machines share a target's queue. A task is acknowledged when the run is over, and a task that
comes back (a worker died) finds its run no longer Queued and does nothing: the heartbeat
monitor ends such a run NotResponding, then Failed.

No Django here: the server only sends tasks (``runs.dispatch``).
"""

from __future__ import annotations

import os

from celery import Celery

from runs.runner import Supervisor, _become_subreaper
from runs.sdk.exceptions import UserErrorException
from runs.sdk.workspace import Workspace

TASK_NAME = "studio.execute_run"

_workspace: Workspace | None = None


def make_app(broker_url: str) -> Celery:
    app = Celery("studio", broker=broker_url)
    app.conf.update(
        task_acks_late=True,  # a run is only taken off the queue once it is over
        worker_prefetch_multiplier=1,  # a busy worker leaves the next run to an idle one
        task_reject_on_worker_lost=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    app.task(name=TASK_NAME, ignore_result=True)(execute_run)
    return app


def execute_run(run_id: str) -> None:
    if _workspace is None:
        raise RuntimeError("the worker has no workspace")
    _become_subreaper()
    Supervisor(_workspace, run_id).run()


def serve(workspace: Workspace, queue: str, *, concurrency: int = 1) -> None:
    """Run a Celery worker on ``queue`` until interrupted."""
    global _workspace
    broker = os.environ.get("CELERY_BROKER_URL")
    if not broker:
        raise UserErrorException("set CELERY_BROKER_URL (redis://host:6379/0) to the studio's broker")
    _workspace = workspace
    app = make_app(broker)
    app.worker_main(
        ["worker", "--queues", queue, "--concurrency", str(concurrency), "--hostname", f"{queue}@%h",
         "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
    )  # fmt: skip
