"""System metrics (runs.sdk.system_metrics), really sampled: psutil reads this machine, interactive
runs log against a live server, script runs are sampled by their real runner process. GPU readings
are checked only where NVML finds a GPU; everywhere else, that there are none and nothing fails."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from runs import sdk
from runs.models import MetricPoint
from runs.models import Run as RunModel
from runs.sdk import Experiment, ScriptRunConfig, system_metrics
from runs.sdk.system_metrics import Gpus, SystemMetrics, SystemSampler
from tests.test_script_runs import write


def points(run_id: str, name: str) -> list[tuple[int, Any, float]]:
    """(step, time, value) of a metric's stored points, by step."""
    return list(
        MetricPoint.objects.filter(metric__run__run_id=run_id, metric__name=name)
        .order_by("step")
        .values_list("step", "time", "number")
    )


def system_names(run_id: str) -> set[str]:
    return {
        name
        for name in MetricPoint.objects.filter(metric__run__run_id=run_id).values_list("metric__name", flat=True)
        if name.startswith("system/")
    }


def sampler_threads(run_id: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"studio-system-metrics-{run_id}" and t.is_alive()]


def burn_until_sampled(run_id: str, samples: int, timeout: float = 20.0) -> None:
    """A child process burns a core (the sampler counts the run's children) until this process's
    sampler has taken ``samples`` samples: a busy loop here would hold the GIL the sampler needs,
    and on a loaded machine starve it."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        end = time.monotonic() + timeout
        while time.monotonic() < end and system_metrics._running[run_id].samples < samples:
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.delenv("STUDIO_SYSTEM_METRICS", raising=False)
    monkeypatch.setenv("STUDIO_SYSTEM_METRICS_INTERVAL", "0.2")
    return 0.2


def test_an_interactive_run_is_sampled_until_it_completes_and_not_after(ws: sdk.Workspace, fast: float) -> None:
    run = Experiment(ws, "system").start_logging()
    run.log("loss", 0.5)
    burn_until_sampled(run.id, 3)
    run.complete()
    assert not sampler_threads(run.id)
    cpu = points(run.id, "system/cpu_percent")
    memory = points(run.id, "system/memory_rss_mb")
    assert len(cpu) >= 3 and len(memory) == len(cpu)
    assert [step for step, _, _ in cpu] == list(range(len(cpu)))  # one sampler: each step once
    assert max(value for _, _, value in cpu) > 10  # this process burned a core meanwhile
    assert all(value > 1 for _, _, value in memory)  # MiB of a Python process
    assert {"system/machine_cpu_percent", "system/memory_percent"} <= system_names(run.id)
    assert not any(name.startswith("system/gpu") for name in system_names(run.id)) or system_metrics.gpus().handles

    stored = len(cpu)
    time.sleep(5 * fast)
    assert len(points(run.id, "system/cpu_percent")) == stored  # nothing after complete()
    ended = RunModel.objects.get(run_id=run.id).ended_at
    assert all(logged <= ended for _, logged, _ in cpu)
    assert run.get_metrics()["loss"] == 0.5


def test_a_with_block_that_raises_stops_sampling_too(ws: sdk.Workspace, fast: float) -> None:
    with pytest.raises(RuntimeError), Experiment(ws, "system").start_logging() as run:
        time.sleep(4 * fast)
        raise RuntimeError("diverged")
    assert run.get_status() == "Failed"
    assert not sampler_threads(run.id)
    stored = len(points(run.id, "system/cpu_percent"))
    assert stored >= 1
    time.sleep(4 * fast)
    assert len(points(run.id, "system/cpu_percent")) == stored


def test_children_made_in_the_process_are_not_sampled_again(ws: sdk.Workspace, fast: float) -> None:
    with Experiment(ws, "system").start_logging() as parent:
        child = parent.child_run("part")
        time.sleep(4 * fast)
        child.complete()
    assert points(parent.id, "system/cpu_percent")
    assert not system_names(child.id)


def test_studio_system_metrics_0_turns_it_off(ws: sdk.Workspace, fast: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_SYSTEM_METRICS", "0")
    with Experiment(ws, "system").start_logging() as run:
        run.log("loss", 1.0)
        time.sleep(5 * fast)
    assert not sampler_threads(run.id)
    assert run.get_metrics() == {"loss": 1.0}


def test_a_script_run_is_sampled_once_by_its_runner(
    ws: sdk.Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = 0.5
    monkeypatch.delenv("STUDIO_SYSTEM_METRICS", raising=False)
    monkeypatch.setenv("STUDIO_SYSTEM_METRICS_INTERVAL", str(every))  # the runner and the script inherit it
    write(
        tmp_path,
        "burn.py",
        """
        import os, time
        from runs.sdk import Run
        run = Run.get_context()  # the runner samples this run: the SDK here must not
        print("sampled by", os.environ.get("STUDIO_SYSTEM_METRICS_BY_RUNNER"))
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            pass
        run.log("burned", 1.5)
        time.sleep(0.6)
        """,
    )
    run = Experiment(ws, "system").submit(ScriptRunConfig(source_directory=str(tmp_path), script="burn.py"))
    details = run.wait_for_completion()
    assert details["status"] == "Completed", details
    cpu = points(run.id, "system/cpu_percent")
    steps = [step for step, _, _ in cpu]
    assert steps == list(range(len(steps))), steps  # each step once: not sampled twice
    model = RunModel.objects.get(run_id=run.id)
    lived = (model.ended_at - model.started_at).total_seconds()
    assert 2 <= len(cpu) <= lived / every + 1, (len(cpu), lived)
    gaps = [(b - a).total_seconds() for (_, a, _), (_, b, _) in zip(cpu, cpu[1:], strict=False)]
    assert all(gap >= every / 2 for gap in gaps), gaps  # once per interval, not two samplers interleaved
    assert max(value for _, _, value in cpu) > 10  # the script burned a core
    assert all(value > 1 for _, _, value in points(run.id, "system/memory_rss_mb"))
    assert run.get_metrics()["burned"] == 1.5
    assert f"sampled by {run.id}".encode() in run._read_log("logs/std_log.txt", 0)[0]


# -- the sampler itself --


def test_the_sampler_counts_the_children_of_the_process() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.monotonic() + 1.5\nwhile time.monotonic() < end: pass"]
    )
    try:
        sampler = SystemSampler(gpus=Gpus())
        alone = SystemSampler(child.pid, gpus=Gpus())
        time.sleep(1.0)
        tree, child_only = sampler.sample(), alone.sample()
    finally:
        child.wait()
    # The child's busy loop, while this process slept: how much of a core it got depends on the machine's
    # load, so the tree is held to the child's own share (it holds the child), not to a fixed figure.
    assert child_only["cpu_percent"] > 5, child_only
    assert tree["cpu_percent"] >= 0.8 * child_only["cpu_percent"], (tree, child_only)
    assert tree["memory_rss_mb"] > child_only["memory_rss_mb"] > 1
    assert 0 <= tree["machine_cpu_percent"] <= 100 and 0 < tree["memory_percent"] < 100
    with pytest.raises(psutil.NoSuchProcess):
        alone.sample()


def test_without_nvml_there_are_no_gpu_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-ml-py not installed: the import fails
    without = Gpus()
    assert without.handles == []
    sampler = SystemSampler(gpus=without)
    time.sleep(0.1)
    values = sampler.sample()
    assert set(values) == {"cpu_percent", "machine_cpu_percent", "memory_rss_mb", "memory_percent"}


def test_gpu_metrics_where_nvml_finds_gpus() -> None:
    """With nvidia-ml-py installed: on a machine without an NVIDIA driver nvmlInit fails quietly and
    there are no GPU keys; on one with GPUs, each GPU's readings are there."""
    found = Gpus()
    sampler = SystemSampler(gpus=found)
    time.sleep(0.1)
    values = sampler.sample()
    gpu_keys = {key for key in values if key.startswith("gpu")}
    if not found.handles:
        assert gpu_keys == set()
        return
    for index in range(len(found.handles)):
        assert {f"gpu{index}_util_percent", f"gpu{index}_memory_used_mb", f"gpu{index}_memory_percent"} <= gpu_keys
        assert 0 <= values[f"gpu{index}_util_percent"] <= 100
        assert 0 <= values[f"gpu{index}_memory_percent"] <= 100


def test_the_thread_samples_once_per_interval_and_nothing_after_stop() -> None:
    batches: list[list[dict[str, Any]]] = []
    sampler = SystemMetrics(batches.append, every=0.1, gpus=Gpus()).start()
    time.sleep(0.75)
    sampler.stop()
    taken = len(batches)
    time.sleep(0.3)
    assert len(batches) == taken and 4 <= taken <= 8
    assert [batch[0]["step"] for batch in batches] == list(range(taken))
    assert all(point["name"].startswith("system/") and point["time"] for batch in batches for point in batch)
    assert "description" in batches[0][0] and "description" not in batches[1][0]


def test_the_interval_and_the_switch_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw, expected in [("", 10.0), ("2.5", 2.5), ("0", 0.1), ("soon", 10.0), ("nan", 10.0)]:
        monkeypatch.setenv("STUDIO_SYSTEM_METRICS_INTERVAL", raw)
        assert system_metrics.interval() == expected
    for raw, expected in [("0", False), ("false", False), ("OFF", False), ("1", True), ("yes", True)]:
        monkeypatch.setenv("STUDIO_SYSTEM_METRICS", raw)
        assert system_metrics.enabled() is expected
    monkeypatch.delenv("STUDIO_SYSTEM_METRICS")
    assert system_metrics.enabled()
