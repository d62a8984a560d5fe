"""System metrics: CPU, memory and GPUs sampled while a run is alive, logged as the run's metrics.

Every ``STUDIO_SYSTEM_METRICS_INTERVAL`` seconds (default 10) a daemon thread reads, for the run's
processes (one process and all its descendants) and for the machine:

=================================  ======================================================================
``system/cpu_percent``             the run's processes: CPU time used over the interval as a % of one
                                   core, summed over processes and cores (two busy cores read 200), as
                                   ``top`` and W&B's process CPU show it
``system/machine_cpu_percent``     the whole machine: % of all its cores busy (0-100)
``system/memory_rss_mb``           the run's processes: resident memory, summed, in MiB
``system/memory_percent``          the whole machine: memory in use, % of its total
``system/gpu{i}_util_percent``     NVIDIA GPU ``i`` (NVML's numbering, as ``nvidia-smi``): % of the
                                   interval a kernel was running
``system/gpu{i}_memory_used_mb``   GPU ``i``: memory in use, MiB (all processes on it)
``system/gpu{i}_memory_percent``   GPU ``i``: memory in use, % of its total
``system/gpu{i}_temperature_c``    GPU ``i``: temperature, degrees Celsius (where the GPU reports it)
``system/gpu{i}_power_w``          GPU ``i``: power draw, watts (where the GPU reports it)
=================================  ======================================================================

CPU and memory come from psutil; GPUs from NVML through nvidia-ml-py (``import pynvml``), only when
it imports and ``nvmlInit`` succeeds: on a machine without an NVIDIA GPU or driver there are simply
no GPU metrics, with a debug log line and no warning. The GPU numbers are the device's, whoever uses
it, as ``nvidia-smi`` shows them.

Each sample is one point per metric, with the sampler's own step (0, 1, 2, ...) and the sample's
time, queued in one go on the SDK's background sender (``runs.sdk._sender``): a sample adds points
to the sender's batches, not requests of its own. The first sample comes one interval after the
start (CPU % needs an interval to measure); there is none after the run ends: ``stop()`` returns
only once no more points can be queued, and ``complete()``, ``fail()`` and ``cancel()`` call it
before they end the run. ``STUDIO_SYSTEM_METRICS=0`` (or ``false``, ``no``, ``off``) turns it off.

Who samples which run, so that each run is sampled once:

- A **script run** is sampled by its runner (``runs.runner``), from outside: the script's process
  and its descendants (DataLoader workers, subprocesses), from the script's start until it exits or
  its run ends. This sees a script that never imports the SDK, and one that hangs or crashes. The
  runner gives the script ``STUDIO_SYSTEM_METRICS_BY_RUNNER=<run id>``, and ``Run.get_context()``
  inside it starts no sampler of its own for that run. (A run whose ``STUDIO_RUN_ID`` was set by
  something other than the runner is sampled by ``Run.get_context()``, in the process that calls it.)
- An **interactive run** (``exp.start_logging()``, in a ``with`` block or not) is sampled by the
  process that started it, from the SDK, until ``complete()``/``fail()``/``cancel()``, until the
  studio says it ended (the heartbeat stops watching it), or until the process exits. Children made
  in that process (``child_run``, ``create_children``) are not sampled: they share its processes,
  and the parent's samples already say what those use.

Cost: a sample reads a few /proc files per process of the run plus the machine's totals (and NVML
for each GPU), about 2 ms of CPU; ``bench/bench_system_metrics.py`` measures it: 0.03% of one core
at the default interval, 0.3% at 1 s (bench/RESULTS.md). No Django here: the SDK and the runner
use it.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("runs.sdk.system_metrics")

ENABLED_VARIABLE = "STUDIO_SYSTEM_METRICS"
INTERVAL_VARIABLE = "STUDIO_SYSTEM_METRICS_INTERVAL"
RUNNER_VARIABLE = "STUDIO_SYSTEM_METRICS_BY_RUNNER"  # the runner samples this run id: its script must not
DEFAULT_INTERVAL = 10.0
MIN_INTERVAL = 0.1
PREFIX = "system/"
MIB = 2**20

DESCRIPTIONS = {
    "cpu_percent": "CPU of the run's processes, % of one core (summed over cores and processes)",
    "machine_cpu_percent": "CPU of the whole machine, % of all cores",
    "memory_rss_mb": "resident memory of the run's processes, MiB",
    "memory_percent": "memory in use on the whole machine, %",
    "util_percent": "GPU utilisation, % of the time a kernel ran",
    "memory_used_mb": "GPU memory in use, MiB",
    "memory_percent_gpu": "GPU memory in use, % of the GPU's",
    "temperature_c": "GPU temperature, degrees Celsius",
    "power_w": "GPU power draw, watts",
}


def enabled() -> bool:
    return os.environ.get(ENABLED_VARIABLE, "1").strip().lower() not in ("0", "false", "no", "off")


def interval() -> float:
    raw = os.environ.get(INTERVAL_VARIABLE, "")
    if not raw.strip():
        return DEFAULT_INTERVAL
    try:
        seconds = float(raw)
    except ValueError:
        log.warning("%s=%r is not a number of seconds; sampling every %g s", INTERVAL_VARIABLE, raw, DEFAULT_INTERVAL)
        return DEFAULT_INTERVAL
    if not math.isfinite(seconds) or seconds < MIN_INTERVAL:
        return MIN_INTERVAL if math.isfinite(seconds) else DEFAULT_INTERVAL
    return seconds


# -- GPUs --


class Gpus:
    """The NVIDIA GPUs NVML sees, or none: never raises, whatever the machine has."""

    def __init__(self) -> None:
        self.handles: list[Any] = []
        self._nvml: Any = None
        self._unsupported: set[tuple[int, str]] = set()  # (device, reading) that raised once: not asked again
        try:
            import pynvml

            pynvml.nvmlInit()
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            self._nvml = pynvml
        except Exception as error:  # no nvidia-ml-py, no driver, no GPU: no GPU metrics
            log.debug("no GPU metrics: %s", error)
            self.handles = []

    def read(self, into: dict[str, float]) -> None:
        nvml = self._nvml
        for index, handle in enumerate(self.handles):
            name = f"gpu{index}_"
            if (util := self._ask(index, "util", nvml.nvmlDeviceGetUtilizationRates, handle)) is not None:
                into[name + "util_percent"] = float(util.gpu)
            if (memory := self._ask(index, "memory", nvml.nvmlDeviceGetMemoryInfo, handle)) is not None:
                into[name + "memory_used_mb"] = memory.used / MIB
                if memory.total:
                    into[name + "memory_percent"] = 100.0 * memory.used / memory.total
            temperature = self._ask(index, "temperature", nvml.nvmlDeviceGetTemperature, handle, 0)  # 0: the die
            if temperature is not None:
                into[name + "temperature_c"] = float(temperature)
            if (milliwatts := self._ask(index, "power", nvml.nvmlDeviceGetPowerUsage, handle)) is not None:
                into[name + "power_w"] = milliwatts / 1000.0

    def _ask(self, index: int, what: str, call: Callable[..., Any], *args: Any) -> Any:
        if (index, what) in self._unsupported:
            return None
        try:
            return call(*args)
        except Exception as error:  # NVMLError_NotSupported on some boards, a GPU fallen off the bus
            log.debug("GPU %d: no %s reading: %s", index, what, error)
            self._unsupported.add((index, what))
            return None


_gpus: Gpus | None = None
_gpus_lock = threading.Lock()


def gpus() -> Gpus:
    """The process's NVML, initialised once."""
    global _gpus
    with _gpus_lock:
        if _gpus is None:
            _gpus = Gpus()
        return _gpus


# -- one sample --


class SystemSampler:
    """Reads the metrics (without the ``system/`` prefix) for the process ``pid`` and its descendants,
    and for the machine. CPU percentages are over the time since the previous ``sample()`` (or since
    the sampler was made). Raises psutil.NoSuchProcess once ``pid`` is gone."""

    def __init__(self, pid: int | None = None, *, gpus: Gpus | None = None) -> None:
        import psutil

        self._psutil = psutil
        self._root = psutil.Process(pid if pid is not None else os.getpid())
        self._gpus = gpus
        self._last_wall = time.monotonic()
        self._last_cpu, _ = self._tree()
        self._last_machine = self._machine_times()

    def _tree(self) -> tuple[float, int]:
        """CPU seconds and resident bytes of the root and its descendants. A process's CPU seconds
        include those of its children that ended and were waited for, so the sum goes on growing as
        processes come and go."""
        psutil = self._psutil
        processes = [self._root, *self._root.children(recursive=True)]
        cpu, rss = 0.0, 0
        for process in processes:
            try:
                with process.oneshot():
                    if process is self._root and process.status() == psutil.STATUS_ZOMBIE:
                        raise psutil.NoSuchProcess(process.pid)  # it has exited; its parent has yet to notice
                    times = process.cpu_times()
                    memory = process.memory_info()
            except psutil.NoSuchProcess:
                if process is self._root:
                    raise
                continue  # a child that ended meanwhile
            except psutil.Error:  # another user's process, say
                continue
            cpu += times.user + times.system + times.children_user + times.children_system
            rss += memory.rss
        return cpu, rss

    def _machine_times(self) -> tuple[float, float]:
        times = self._psutil.cpu_times()
        # Linux counts guest time in user and nice too (as psutil.cpu_percent does, count it once).
        total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
        idle = times.idle + getattr(times, "iowait", 0.0)
        return total, total - idle

    def sample(self) -> dict[str, float]:
        psutil = self._psutil
        now = time.monotonic()
        cpu, rss = self._tree()
        elapsed = now - self._last_wall
        values: dict[str, float] = {}
        if elapsed > 0:
            values["cpu_percent"] = max(0.0, 100.0 * (cpu - self._last_cpu) / elapsed)
        machine = self._machine_times()
        total, busy = machine[0] - self._last_machine[0], machine[1] - self._last_machine[1]
        if total > 0:
            values["machine_cpu_percent"] = min(100.0, max(0.0, 100.0 * busy / total))
        self._last_wall, self._last_cpu, self._last_machine = now, cpu, machine
        values["memory_rss_mb"] = rss / MIB
        values["memory_percent"] = float(psutil.virtual_memory().percent)
        if self._gpus is not None:
            self._gpus.read(values)
        return values


def _description(key: str) -> str:
    if key.startswith("gpu"):
        reading = key.split("_", 1)[1]
        return DESCRIPTIONS.get("memory_percent_gpu" if reading == "memory_percent" else reading, "")
    return DESCRIPTIONS.get(key, "")


# -- the thread --


class SystemMetrics:
    """Samples every ``every`` seconds and hands each sample's points, as one list, to ``emit``,
    until ``stop()``, until ``keep_going()`` says no, or until the process ``pid`` is gone."""

    def __init__(
        self,
        emit: Callable[[list[dict[str, Any]]], None],
        *,
        pid: int | None = None,
        every: float | None = None,
        keep_going: Callable[[], bool] | None = None,
        gpus: Gpus | None = None,
        name: str = "studio-system-metrics",
    ) -> None:
        self.emit = emit
        self.pid = pid
        self.every = every if every is not None else interval()
        self.keep_going = keep_going
        self._gpus = gpus
        self.samples = 0
        self._lock = threading.Lock()
        self._stopped = False
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> SystemMetrics:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopped

    def stop(self, timeout: float = 5.0) -> None:
        """No point is emitted once this returns; waits up to ``timeout`` for the thread to end."""
        with self._lock:
            self._stopped = True
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        try:
            sampler = SystemSampler(self.pid, gpus=self._gpus if self._gpus is not None else gpus())
        except Exception as error:  # the process is gone already; psutil missing
            log.debug("no system metrics: %s", error)
            return
        import psutil

        due = time.monotonic() + self.every
        while not self._wake.wait(max(0.0, due - time.monotonic())):
            now = time.monotonic()
            due = max(due + self.every, now + self.every / 2)  # no bursts to catch up after a stall
            if self.keep_going is not None and not self.keep_going():
                return
            try:
                values = sampler.sample()
            except psutil.NoSuchProcess:
                return
            except Exception:
                log.debug("system metrics: a sample failed", exc_info=True)
                continue
            when = datetime.now(UTC).isoformat()
            points = []
            for key, value in values.items():
                if not math.isfinite(value):
                    continue
                point: dict[str, Any] = {
                    "name": PREFIX + key,
                    "kind": "scalar",
                    "value": round(value, 3),
                    "step": self.samples,
                    "time": when,
                }
                if self.samples == 0 and (description := _description(key)):
                    point["description"] = description
                points.append(point)
            with self._lock:
                if self._stopped:
                    return
                self.emit(points)
                self.samples += 1


# -- one sampler per run, in this process --

_running: dict[str, SystemMetrics] = {}
_running_lock = threading.Lock()
_exit_hook = False


def start_for_run(
    client: Any, run_id: str, *, pid: int | None = None, keep_going: Callable[[], bool] | None = None
) -> SystemMetrics | None:
    """Sample for the run ``run_id`` (its points go out on the SDK's sender) unless system metrics are
    off or this process already samples it. ``pid``: the run's root process (default: this one)."""
    global _exit_hook
    if not enabled():
        return None
    try:
        import psutil  # noqa: F401
    except ImportError:
        log.info("no system metrics: psutil is not installed")
        return None
    from runs.sdk._sender import sender

    queue = sender()  # made (and its exit hook registered) before ours: ours runs first at exit
    with _running_lock:
        current = _running.get(run_id)
        if current is not None and current.running:
            return current
        if not _exit_hook:
            atexit.register(stop_all)
            _exit_hook = True
        sampler = SystemMetrics(
            lambda points: queue.enqueue_many(client, run_id, points),
            pid=pid,
            keep_going=keep_going,
            name=f"studio-system-metrics-{run_id}",
        )
        _running[run_id] = sampler
    return sampler.start()


def stop_for_run(run_id: str, timeout: float = 5.0) -> None:
    """No more samples for ``run_id`` once this returns."""
    with _running_lock:
        sampler = _running.pop(run_id, None)
    if sampler is not None:
        sampler.stop(timeout)


def stop_all() -> None:
    with _running_lock:
        samplers = list(_running.values())
        _running.clear()
    for sampler in samplers:
        sampler.stop(timeout=2.0)
