"""Time ``run.create_children(count=1000)`` through the SDK against servers already running, each
given by its config.json (``manage.py bootstrap --config``), taking turns: the first config's server,
then the second's, REPEAT times.

    python bench/bench_children.py BEFORE_CONFIG AFTER_CONFIG [--count 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runs import sdk  # noqa: E402
from runs.sdk import _sender  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    parents = {}
    for config in args.configs:
        experiment = sdk.Experiment(sdk.Workspace.from_config(config), "bench-children")
        parents[config] = experiment.start_logging(display_name="parent")
        parents[config].create_children(count=2)  # a first request warms the worker up
    times: dict[str, list[float]] = {config: [] for config in args.configs}
    for _ in range(args.repeat):
        for config in args.configs:
            started = time.perf_counter()
            children = parents[config].create_children(count=args.count)
            times[config].append(time.perf_counter() - started)
            assert len(children) == args.count
            # Not this process's to heartbeat: thousands of idle children would load the servers.
            for child in children:
                _sender.sender().unwatch(child.id)
    for config, seconds in times.items():
        each = ", ".join(f"{s:.3f}" for s in seconds)
        print(f"{config}: median {statistics.median(seconds):.3f} s ({each})")
    for parent in parents.values():
        parent.complete()


if __name__ == "__main__":
    main()
