"""The SDK against a live server: metrics of every kind, files and child runs."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest

from runs import sdk
from runs.models import Metric, MetricPoint
from runs.sdk import Experiment, Run
from runs.sdk._sender import MetricBufferWarning

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_it_logs_numbers_strings_and_booleans_with_steps(ws: sdk.Workspace) -> None:
    run = Experiment(ws, "metrics").start_logging()
    for loss in (0.9, 0.5, 0.25):
        run.log("loss", loss)
    run.log("epochs", 3)
    run.log("note", "warming up")
    run.log("converged", True)
    run.log("lr", 0.1, description="learning rate", step=10)
    run.log("lr", 0.01)
    assert run.get_metrics() == {
        "loss": [0.9, 0.5, 0.25],
        "epochs": 3,
        "note": "warming up",
        "converged": True,
        "lr": [0.1, 0.01],
    }
    assert isinstance(run.get_metrics("epochs")["epochs"], int)
    lr = Metric.objects.get(run__run_id=run.id, name="lr")
    assert list(lr.points.order_by("id").values_list("step", flat=True)) == [10, 11]  # counts on from a given step
    assert lr.description == "learning rate"
    loss = Metric.objects.get(run__run_id=run.id, name="loss")
    assert (loss.count, loss.last_number, loss.min_number, loss.max_number) == (3, 0.25, 0.25, 0.9)
    assert list(loss.points.order_by("id").values_list("step", flat=True)) == [0, 1, 2]
    assert all(p.time is not None for p in MetricPoint.objects.filter(metric=loss))


def test_nan_and_infinities_are_stored_and_returned_as_floats(ws: sdk.Workspace) -> None:
    run = Experiment(ws, "metrics").start_logging()
    for value in (1.0, math.nan, math.inf, -math.inf):
        run.log("odd", value)
    run.log("only_nan", math.nan)
    run.log_list("odd_list", [1.5, math.nan, math.inf])
    metrics = run.get_metrics()
    first, nan, inf, ninf = metrics["odd"]
    assert first == 1.0 and math.isnan(nan) and inf == math.inf and ninf == -math.inf
    assert isinstance(metrics["only_nan"], float) and math.isnan(metrics["only_nan"])
    assert metrics["odd_list"][0] == 1.5 and math.isnan(metrics["odd_list"][1]) and metrics["odd_list"][2] == math.inf
    summary = Metric.objects.get(run__run_id=run.id, name="odd")
    assert (summary.min_number, summary.max_number, summary.last_number) == (-math.inf, math.inf, -math.inf)


def test_it_logs_lists_rows_and_tables(ws: sdk.Workspace) -> None:
    run = Experiment(ws, "metrics").start_logging()
    run.log_list("accuracies", [0.1, 0.2, 0.3])
    run.log_row("results", epoch=1, loss=0.5)
    run.log_row("results", epoch=2, loss=0.25, note="best")
    run.log_table("curve", {"x": [1, 2], "y": [0.5, 0.7]})
    run.log_table("curve", {"x": [3], "y": [0.8]})
    metrics = run.get_metrics()
    assert metrics["accuracies"] == [0.1, 0.2, 0.3]
    assert metrics["results"] == {"epoch": [1, 2], "loss": [0.5, 0.25], "note": [None, "best"]}
    assert metrics["curve"] == {"x": [1, 2, 3], "y": [0.5, 0.7, 0.8]}


def test_numpy_style_scalars_are_logged_as_numbers(ws: sdk.Workspace) -> None:
    class Scalar:  # what numpy.float32 and a 0-d torch tensor offer
        def __init__(self, value: float) -> None:
            self.value = value

        def item(self) -> float:
            return self.value

    run = Experiment(ws, "metrics").start_logging()
    run.log("loss", Scalar(0.125))
    assert run.get_metrics("loss") == {"loss": 0.125}


def test_it_logs_images_from_a_file_and_from_a_figure(ws: sdk.Workspace, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Experiment(ws, "images").start_logging()
    image = tmp_path / "confusion.png"
    image.write_bytes(PNG)
    run.log_image("confusion", path=image)
    run.log_image("confusion", path=image)
    figure, axes = plt.subplots()
    axes.plot([1, 2, 3], [3, 1, 2])
    run.log_image("loss curve", plot=figure)
    plt.close(figure)

    assert run.get_metrics() == {
        "confusion": ["outputs/confusion.png", "outputs/confusion_1.png"],
        "loss curve": "outputs/loss_curve.png",
    }
    assert sorted(run.get_file_names()) == [
        "outputs/confusion.png",
        "outputs/confusion_1.png",
        "outputs/loss_curve.png",
    ]
    downloaded = run.download_file("outputs/loss_curve.png", tmp_path / "out.png")
    assert downloaded.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(sdk.UserErrorException, match="exactly one"):
        run.log_image("nothing")


def test_get_metrics_recursive_maps_each_run_to_its_metrics(ws: sdk.Workspace) -> None:
    parent = Experiment(ws, "family").start_logging()
    parent.log("score", 1)
    child = parent.child_run("child")
    child.log("score", 2)
    grandchild = child.child_run("grandchild")
    grandchild.log("loss", 0.5)
    assert parent.get_metrics(recursive=True) == {
        parent.id: {"score": 1},
        child.id: {"score": 2},
        grandchild.id: {"loss": 0.5},
    }


def test_logging_to_an_ended_run_is_refused(ws: sdk.Workspace, alice_api) -> None:
    run = Experiment(ws, "ended").start_logging()
    run.log("loss", 1.0)
    run.complete()
    response = alice_api.post(
        f"/api/v1/runs/{run.id}/metrics/", {"points": [{"name": "loss", "value": 2.0}]}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "RunEnded"
    with pytest.warns(MetricBufferWarning, match="refused 1 metric points"):
        run.log("loss", 3.0)
        run.flush()
    assert run.get_metrics("loss") == {"loss": 1.0}


def test_files_upload_list_and_download(ws: sdk.Workspace, tmp_path: Path) -> None:
    run = Experiment(ws, "files").start_logging()
    model = tmp_path / "model.bin"
    model.write_bytes(bytes(range(256)) * 4096)  # 1 MiB of every byte value
    run.upload_file("outputs/model.bin", str(model))
    run.upload_file("outputs/notes.txt", io.BytesIO("héllo\n".encode()))
    folder = tmp_path / "logs"
    (folder / "sub").mkdir(parents=True)
    (folder / "driver.txt").write_text("started\n")
    (folder / "sub" / "worker.txt").write_text("working\n")
    run.upload_folder("logs", folder)

    assert run.get_file_names() == ["logs/driver.txt", "logs/sub/worker.txt", "outputs/model.bin", "outputs/notes.txt"]
    assert set(run.get_details()["logFiles"]) == {"logs/driver.txt", "logs/sub/worker.txt"}

    (tmp_path / "downloads").mkdir()
    out = run.download_file("outputs/model.bin", tmp_path / "downloads")  # an existing folder
    assert out == tmp_path / "downloads" / "model.bin"
    assert out.read_bytes() == model.read_bytes()
    renamed = run.download_file("outputs/notes.txt", tmp_path / "new" / "renamed.txt")  # a file path
    assert renamed.read_text(encoding="utf-8") == "héllo\n"

    got = run.download_files(prefix="logs/", output_directory=tmp_path / "all")
    assert sorted(p.relative_to(tmp_path / "all").as_posix() for p in got) == ["logs/driver.txt", "logs/sub/worker.txt"]
    flat = run.download_files(prefix="logs/", output_directory=tmp_path / "flat", append_prefix=False)
    assert sorted(p.relative_to(tmp_path / "flat").as_posix() for p in flat) == ["driver.txt", "sub/worker.txt"]
    assert (tmp_path / "flat" / "sub" / "worker.txt").read_text() == "working\n"


def test_files_are_immutable_and_paths_are_checked(ws: sdk.Workspace) -> None:
    run = Experiment(ws, "files").start_logging()
    run.upload_file("outputs/a.txt", io.BytesIO(b"first"))
    with pytest.raises(sdk.ConflictException, match="already has a file"):
        run.upload_file("outputs/a.txt", io.BytesIO(b"second"))
    for bad in ("../escape.txt", "outputs/../../etc/passwd", "outputs//double", "./here"):
        with pytest.raises(sdk.UserErrorException, match="must be relative"):
            run.upload_file(bad, io.BytesIO(b"x"))
    with pytest.raises(sdk.NotFoundException):
        run.download_file("outputs/missing.txt")
    assert run.get_file_names() == ["outputs/a.txt"]


def test_child_runs(ws: sdk.Workspace) -> None:
    exp = Experiment(ws, "hyperdrive")
    parent = exp.start_logging()
    with parent.child_run("trial") as child:
        child.log("loss", 0.3)
    assert child.get_status() == "Completed"
    assert parent.get_status() == "Running"  # statuses are independent
    assert child.parent == parent
    assert child.get_details()["parentRunId"] == parent.id

    batch = parent.create_children(count=3)
    assert [c.get_tags() for c in batch] == [{"batch_index": "0"}, {"batch_index": "1"}, {"batch_index": "2"}]
    assert [c.number for c in batch] == sorted(c.number for c in batch)
    assert all(c.status == "Running" for c in batch)
    parent_name = parent.display_name or parent.id
    assert [c.display_name for c in batch] == [f"{parent_name} #1", f"{parent_name} #2", f"{parent_name} #3"]
    by_value = parent.create_children(tag_key="lr", tag_values=["0.1", "0.01"])
    assert [c.tags for c in by_value] == [{"lr": "0.1"}, {"lr": "0.01"}]

    grandchild = by_value[0].child_run(run_id="grandchild-1")
    assert grandchild.parent.parent == parent
    assert grandchild.parent.parent.parent is None

    assert len(list(parent.get_children())) == 6
    assert len(list(parent.get_children(recursive=True))) == 7
    assert [c.id for c in parent.get_children(tags={"lr": "0.01"})] == [by_value[1].id]
    assert [c.id for c in parent.get_children(status="Completed")] == [child.id]
    assert [c.id for c in parent.get_children(recursive=True, tags="lr")] == [c.id for c in by_value]
    assert list(parent.get_children(type="script")) == []
    # Children are left out of the experiment's run list unless asked for.
    assert [r.id for r in exp.get_runs()] == [parent.id]
    assert len(list(exp.get_runs(include_children=True))) == 8


def test_create_children_is_one_request(ws: sdk.Workspace, live_server) -> None:
    parent = Experiment(ws, "hyperdrive").start_logging()
    calls = []
    session = parent._client.session
    session.hooks["response"].append(lambda r, *a, **k: calls.append(r.request.method + " " + r.request.path_url))
    parent.create_children(count=50)
    # The SDK's heartbeat thread shares the session and may beat meanwhile; that is not the creating.
    assert [call for call in calls if not call.endswith("/heartbeat/")] == [f"POST /api/v1/runs/{parent.id}/children/"]
    assert Run(parent.experiment, parent.id).get_details()["status"] == "Running"
