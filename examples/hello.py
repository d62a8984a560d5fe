"""Hello, Run Studio: start a run, log a few things, end it.

Run it from the project folder after `make run` (it reads .studio/config.json):
    .venv/bin/python examples/hello.py
"""

from __future__ import annotations

from runs.sdk import Experiment, Workspace

ws = Workspace.from_config()
experiment = Experiment(workspace=ws, name="hello")

with experiment.start_logging(display_name="hello world", description="My **first** run") as run:
    run.log("message", "Hello from run!")
    for step in range(20):
        run.log("loss", 1.0 / (step + 1))
    run.tag("quality", "fantastic run")
    run.add_properties({"author": "me"})

print(f"{run.id} is {run.get_status()}; its metrics: {sorted(run.get_metrics())}")
print(f"See it in the API: {ws.url}/api/v1/runs/{run.id}/")
