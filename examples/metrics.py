"""Every kind of metric: numbers, strings, lists, rows, tables, images, and files.

.venv/bin/python examples/metrics.py
"""

from __future__ import annotations

import io
import math

from runs.sdk import Experiment, Workspace

ws = Workspace.from_config()

with Experiment(ws, "metrics-tour").start_logging(display_name="metrics tour") as run:
    for epoch in range(5):
        loss, accuracy = math.exp(-epoch), 1 - math.exp(-epoch - 1)
        run.log("loss", loss)
        run.log_row("per epoch", epoch=epoch, loss=loss, accuracy=accuracy)
    run.log("optimizer", "adam")
    run.log("converged", True)
    run.log_list("class weights", [0.2, 0.3, 0.5])
    run.log_table("roc", {"fpr": [0.0, 0.1, 1.0], "tpr": [0.0, 0.8, 1.0]})
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots()
        axes.plot([0.0, 0.1, 1.0], [0.0, 0.8, 1.0])
        run.log_image("roc curve", plot=figure)  # stored as outputs/roc_curve.png
    except ImportError:
        print("(matplotlib is not installed: skipping the image)")
    run.upload_file("outputs/notes.txt", io.BytesIO(b"trained for 5 epochs\n"))

for name, value in run.get_metrics().items():
    print(f"{name}: {value}")
print("files:", run.get_file_names())
