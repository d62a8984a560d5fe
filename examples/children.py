"""A small hyperparameter sweep: one parent run, a child run per learning rate.

.venv/bin/python examples/children.py
"""

from __future__ import annotations

import math

from runs.sdk import Experiment, Workspace

ws = Workspace.from_config()
experiment = Experiment(ws, "sweep")

with experiment.start_logging(display_name="learning-rate sweep") as parent:
    learning_rates = ["0.1", "0.03", "0.01"]
    children = parent.create_children(tag_key="lr", tag_values=learning_rates)  # one request
    best = None
    for child, lr in zip(children, learning_rates, strict=True):
        with child:
            loss = 1.0
            for step in range(50):
                loss *= 1 - float(lr) * math.exp(-step / 25)
                child.log("loss", loss)
        if best is None or loss < best[1]:
            best = (child.id, loss)
    parent.tag("best child", best[0])
    parent.log("best loss", best[1])

for child in parent.get_children(tags="lr"):
    print(child.id, child.tags["lr"], child.get_status())
print("best:", best)
