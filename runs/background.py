"""A job every server process repeats in a thread of its own: the heartbeat sweep (``runs.monitor``)
and the notification sender (``runs.notify``). The embedded default has no other process to run them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections


class Repeating:
    """Calls ``job`` every ``interval`` seconds in one daemon thread per process, or sooner when woken.
    An exception is logged and the next round goes on (the database was restarting, say)."""

    def __init__(self, name: str, job: Callable[[], object], log: logging.Logger) -> None:
        self.name, self.job, self.log = name, job, log
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()

    def _loop(self, interval: float) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.job()
            except Exception:
                self.log.exception("%s failed", self.name)
            finally:
                close_old_connections()  # the thread's connection is not a request's: nothing else closes it
            self._wake.wait(interval)

    def start(self, interval: float) -> threading.Thread:
        """Start the thread, once per process."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._loop, args=(interval,), name=self.name, daemon=True)
                self._thread.start()
            return self._thread

    def wake(self) -> None:
        """Run the job now rather than at the end of the interval."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread and wait for it (tests start and stop it)."""
        with self._lock:
            self._stop.set()
            self._wake.set()
            if self._thread is not None:
                self._thread.join()
                self._thread = None
