"""Ships metric points in the background, so ``run.log`` in a training loop only queues.

- One daemon thread per process sends batches of up to ``BATCH_SIZE`` points of one run, in the
  order they were logged (each run has its own queue).
- Every batch carries an idempotency key: the server stores a batch retried after a timeout once.
- Connection failures, 429 and 5xx are retried with backoff for as long as it takes; meanwhile new
  points wait in a buffer bounded by ``STUDIO_METRIC_BUFFER`` points. Past the bound, points are
  dropped with a warning saying how many; nothing is dropped silently.
- Points the server refuses (4xx: the run has ended, say) are reported with a warning.
- ``flush()`` waits until a run's points are stored; ``complete()``, ``fail()`` and interpreter exit
  flush (at exit, for up to ``STUDIO_EXIT_FLUSH_TIMEOUT`` seconds).

The same thread sends a heartbeat every ``STUDIO_HEARTBEAT_INTERVAL`` seconds (default 15) for the
interactive runs this process started and has not ended, so the studio can tell a crashed script
(its runs go NotResponding, then Failed) from a quiet one. At a normal interpreter exit those
runs are ended: Completed, or Failed with the uncaught exception (Canceled for Ctrl-C).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
import uuid
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import requests

from runs.sdk._http import RETRY_STATUSES, Client, backoff
from runs.sdk.exceptions import ServiceException, StudioException

log = logging.getLogger("runs.sdk")

BATCH_SIZE = 1000


class MetricBufferWarning(RuntimeWarning):
    """Metric points could not be delivered, or were dropped because the buffer was full."""


@dataclass
class _RunQueue:
    client: Client
    points: deque[dict[str, Any]] = field(default_factory=deque)
    in_flight: int = 0


class MetricSender:
    def __init__(self, *, max_points: int, batch_size: int = BATCH_SIZE, heartbeat_interval: float = 15.0) -> None:
        self.max_points = max_points
        self.batch_size = batch_size
        self.heartbeat_interval = heartbeat_interval
        self._watched: dict[str, Client] = {}  # runs to heartbeat for
        self._next_heartbeat = 0.0
        self._cond = threading.Condition()
        self._runs: dict[str, _RunQueue] = {}  # insertion order: runs take turns
        self._pending = 0  # queued or in flight, all runs
        self._dropped = 0
        self._overflowing = False
        self._thread: threading.Thread | None = None

    def enqueue(self, client: Client, run_id: str, point: dict[str, Any]) -> None:
        with self._cond:
            if self._pending >= self.max_points:
                self._dropped += 1
                if not self._overflowing:
                    self._overflowing = True
                    warnings.warn(
                        f"the metric buffer is full ({self.max_points} points waiting for the studio); "
                        "new points are dropped until the studio takes some. Raise STUDIO_METRIC_BUFFER "
                        "to keep more.",
                        MetricBufferWarning,
                        stacklevel=4,
                    )
                return
            queue = self._runs.get(run_id)
            if queue is None:
                queue = self._runs[run_id] = _RunQueue(client)
            queue.points.append(point)
            self._pending += 1
            self._ensure_thread()
            self._cond.notify_all()

    def enqueue_many(self, client: Client, run_id: str, points: list[dict[str, Any]]) -> None:
        """Queue several points at once: the thread takes none of them before all are queued, so
        they leave in one batch (the lock is re-entrant)."""
        with self._cond:
            for point in points:
                self.enqueue(client, run_id, point)

    def watch(self, client: Client, run_id: str) -> None:
        """Heartbeat for this run until ``unwatch``."""
        with self._cond:
            self._watched[run_id] = client
            self._ensure_thread()

    def unwatch(self, run_id: str) -> None:
        with self._cond:
            self._watched.pop(run_id, None)

    def watched(self) -> dict[str, Client]:
        with self._cond:
            return dict(self._watched)

    def _ensure_thread(self) -> None:  # with the lock held
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="studio-metric-sender", daemon=True)
            self._thread.start()

    def pending(self, run_id: str | None = None) -> int:
        with self._cond:
            return self._pending_locked(run_id)

    def _pending_locked(self, run_id: str | None) -> int:
        if run_id is None:
            return self._pending
        queue = self._runs.get(run_id)
        return len(queue.points) + queue.in_flight if queue else 0

    def flush(self, run_id: str | None = None, timeout: float | None = None) -> bool:
        """Wait until the points of ``run_id`` (or of every run) are delivered; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending_locked(run_id) == 0, timeout)

    def take_dropped(self) -> int:
        with self._cond:
            dropped, self._dropped = self._dropped, 0
            return dropped

    def _next_batch(self, timeout: float) -> tuple[str, _RunQueue, list[dict[str, Any]]] | None:
        with self._cond:
            if not self._cond.wait_for(lambda: any(q.points for q in self._runs.values()), timeout):
                return None
            run_id, queue = next((r, q) for r, q in self._runs.items() if q.points)
            batch = [queue.points.popleft() for _ in range(min(self.batch_size, len(queue.points)))]
            queue.in_flight += len(batch)
            # Let other runs go next.
            del self._runs[run_id]
            self._runs[run_id] = queue
            return run_id, queue, batch

    def _loop(self) -> None:
        while True:
            if time.monotonic() >= self._next_heartbeat:
                self._send_heartbeats()
                self._next_heartbeat = time.monotonic() + self.heartbeat_interval
            item = self._next_batch(timeout=max(0.0, self._next_heartbeat - time.monotonic()))
            if item is None:
                continue
            run_id, queue, batch = item
            try:
                self._send(queue.client, run_id, batch)
            finally:
                with self._cond:
                    queue.in_flight -= len(batch)
                    self._pending -= len(batch)
                    if not queue.points and not queue.in_flight:
                        self._runs.pop(run_id, None)
                    if self._overflowing and self._pending < self.max_points * 0.9:
                        self._overflowing = False
                    self._cond.notify_all()

    def _send_heartbeats(self) -> None:
        for run_id, client in self.watched().items():
            try:
                answer = client.request("POST", f"runs/{run_id}/heartbeat/", retries=0).json()
            except (StudioException, requests.RequestException) as error:
                log.debug("heartbeat for run %s failed: %s", run_id, error)
                continue
            if answer.get("status") in ("Completed", "Failed", "Canceled"):
                self.unwatch(run_id)  # ended elsewhere (a cancel from the studio, say)

    def _send(self, client: Client, run_id: str, batch: list[dict[str, Any]]) -> None:
        body = {"batchId": uuid.uuid4().hex, "points": batch}
        attempt = 0
        while True:
            try:
                client.request("POST", f"runs/{run_id}/metrics/", json=body, retry_unsent_only=False, retries=0)
                return
            except StudioException as error:
                if error.status_code == 413 and len(batch) > 1:
                    # Past the server's body limit (API_JSON_MAX_MB), so none of it was stored: send halves.
                    half = len(batch) // 2
                    self._send(client, run_id, batch[:half])
                    self._send(client, run_id, batch[half:])
                    return
                transient = isinstance(error, ServiceException) or error.status_code in RETRY_STATUSES
                if not transient:
                    warnings.warn(
                        f"the studio refused {len(batch)} metric points for run {run_id}: {error.message}",
                        MetricBufferWarning,
                        stacklevel=2,
                    )
                    return
                if attempt == 0:
                    log.warning("cannot send metrics for run %s (%s); retrying until it works", run_id, error)
            except requests.RequestException as error:  # a dropped connection mid-response, say
                if attempt == 0:
                    log.warning("cannot send metrics for run %s (%s); retrying until it works", run_id, error)
            time.sleep(backoff(attempt, cap=15.0))
            attempt += 1


_sender: MetricSender | None = None
_sender_lock = threading.Lock()


def sender() -> MetricSender:
    """The process's sender, made on first use."""
    global _sender
    with _sender_lock:
        if _sender is None:
            _sender = MetricSender(
                max_points=int(os.environ.get("STUDIO_METRIC_BUFFER", "250000")),
                heartbeat_interval=float(os.environ.get("STUDIO_HEARTBEAT_INTERVAL", "15")),
            )
            atexit.register(_at_exit)
            _remember_uncaught_exceptions()
        return _sender


_uncaught: BaseException | None = None


def _remember_uncaught_exceptions() -> None:
    """Keep the exception that ends the program, so runs left open end Failed with it."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, trace: Any) -> None:
        global _uncaught
        _uncaught = error
        previous(kind, error, trace)

    sys.excepthook = hook


def _at_exit() -> None:
    _flush_at_exit()
    _end_open_runs()


def _end_open_runs() -> None:
    """End the interactive runs this process started and left open."""
    if _sender is None:
        return
    for run_id, client in _sender.watched().items():
        try:
            if isinstance(_uncaught, KeyboardInterrupt):
                client.request("POST", f"runs/{run_id}/cancel/", retries=1)
            elif _uncaught is not None:
                error = {"code": type(_uncaught).__name__, "message": f"{type(_uncaught).__name__}: {_uncaught}"}
                client.request("POST", f"runs/{run_id}/status/", json={"status": "Failed", "error": error}, retries=1)
            else:
                client.request("POST", f"runs/{run_id}/status/", json={"status": "Completed"}, retries=1)
        except (StudioException, requests.RequestException) as error:
            log.warning("could not end run %s at exit: %s", run_id, error)


def _flush_at_exit() -> None:
    if _sender is None:
        return
    timeout = float(os.environ.get("STUDIO_EXIT_FLUSH_TIMEOUT", "60"))
    if not _sender.flush(timeout=timeout):
        warnings.warn(
            f"{_sender.pending()} metric points could not be sent to the studio before exit",
            MetricBufferWarning,
            stacklevel=1,
        )
    if dropped := _sender.take_dropped():
        warnings.warn(f"{dropped} metric points were dropped: the buffer was full", MetricBufferWarning, stacklevel=1)
