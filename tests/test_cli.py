"""The `studio` CLI against a live server: in-process through `main()` for most commands, and
as the installed console script where the exit code and stderr are the point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from runs import sdk
from runs.cli import build_parser, main

STUDIO = shutil.which("studio", path=os.path.dirname(sys.executable))


def studio(capsys: Any, *argv: str) -> Any:
    """Run a command in-process; returns its parsed JSON output."""
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out) if captured.out.strip() else None


@pytest.fixture
def azure_runs(attached: Path, live_server: Any, alice: Any) -> dict[str, str]:
    """The runs of Azure's `az ml run list --query` examples."""
    ws = sdk.Workspace.from_config()
    exp = sdk.Experiment(ws, "explore-runs")
    best = exp.start_logging()
    best.add_properties({"author": "azureml-user"})
    best.tag("quality", "fantastic run")
    good = exp.start_logging()
    good.add_properties({"author": "azureml-user"})
    good.tag("quality", "great run")
    flagged = exp.start_logging()
    flagged.tag("worth another look")
    return {"best": best.id, "good": good.id, "flagged": flagged.id}


def test_folder_attach_writes_the_config_and_a_runconfig(attached: Path, live_server: Any) -> None:
    config = json.loads((attached / ".studio" / "config.json").read_text())
    assert config["url"] == live_server.url and config["workspace"] == "default"
    assert yaml.safe_load((attached / ".studio" / "local.runconfig").read_text()) == {
        "script": "train.py",
        "arguments": [],
        "target": "local",
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("[?properties.author=='azureml-user']", {"best", "good"}),
        ("[?tags.keys(@)[?starts_with(@, 'worth another look')]]", {"flagged"}),
        ("[?properties.author=='azureml-user' && tags.quality=='fantastic run']", {"best"}),
    ],
)
def test_run_list_queries_from_azure_work_as_written(
    azure_runs: dict[str, str], capsys: Any, query: str, expected: set[str]
) -> None:
    found = studio(capsys, "run", "list", "--experiment-name", "explore-runs", "--query", query)
    assert {run["runId"] for run in found} == {azure_runs[name] for name in expected}


def test_run_list_filters_and_formats(azure_runs: dict[str, str], capsys: Any) -> None:
    everything = studio(capsys, "run", "list", "-e", "explore-runs")
    assert [run["runId"] for run in everything] == [azure_runs["flagged"], azure_runs["good"], azure_runs["best"]]
    first = everything[0]
    assert {"runId", "displayName", "status", "startTimeUtc", "tags", "properties", "experiment", "target"} <= set(
        first
    )
    tagged = studio(capsys, "run", "list", "-e", "explore-runs", "--tag", "quality=great run")
    assert [run["runId"] for run in tagged] == [azure_runs["good"]]
    assert studio(
        capsys, "run", "list", "-e", "explore-runs", "--tag", "worth another look", "--query", "[].runId"
    ) == [azure_runs["flagged"]]
    assert studio(capsys, "run", "list", "-e", "explore-runs", "--status", "Completed") == []

    assert main(["run", "list", "-e", "explore-runs", "-o", "table", "--query", "[].{id: runId, status: status}"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["id", "status"] and len(table) == 5
    assert main(["run", "list", "-e", "explore-runs", "-o", "tsv", "--query", "[].runId"]) == 0
    assert capsys.readouterr().out.split() == [azure_runs["flagged"], azure_runs["good"], azure_runs["best"]]


def test_run_show_update_and_cancel(azure_runs: dict[str, str], capsys: Any) -> None:
    run_id = azure_runs["good"]
    assert studio(capsys, "run", "show", "-r", run_id)["tags"] == {"quality": "great run"}
    updated = studio(
        capsys,
        "run", "update", "-r", run_id,
        "--add-tag", "quality=fantastic run", "--add-tag", "reviewed",
        "--remove-tag", "missing", "--display-name", "baseline", "--description", "**better**",
    )  # fmt: skip
    assert updated["tags"] == {"quality": "fantastic run", "reviewed": None}
    assert (updated["displayName"], updated["description"]) == ("baseline", "**better**")
    assert studio(capsys, "run", "cancel", "-r", run_id)["status"] == "Canceled"
    assert main(["run", "cancel", "-r", run_id]) == 1
    assert capsys.readouterr().err.strip() == f"studio: error: run {run_id} has already ended (Canceled)"


def test_experiment_list(azure_runs: dict[str, str], capsys: Any) -> None:
    (experiment,) = studio(capsys, "experiment", "list")
    assert experiment["name"] == "explore-runs" and experiment["runCount"] == 3
    assert experiment["statusCounts"] == {"Running": 3}


def test_submit_script_waits_streams_and_downloads(
    attached: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (attached / "train.py").write_text(
        textwrap.dedent(
            """
            import os, sys
            print("args", sys.argv[1:])
            os.makedirs("outputs", exist_ok=True)
            open("outputs/result.txt", "w").write("42")
            """
        )
    )
    (attached / ".studio" / "local.runconfig").write_text(
        yaml.safe_dump({"script": "train.py", "arguments": ["--epochs", "3"]})
    )
    monkeypatch.setenv("STUDIO_PROGRESS", "1")  # progress on stderr, though it is not a terminal
    details = studio(capsys, "run", "submit-script", "-c", "local", "-e", "cli", "--wait", "--tag", "via=cli")
    assert details["status"] == "Completed" and details["tags"] == {"via": "cli"}
    assert details["arguments"] == ["--epochs", "3"]

    assert main(["run", "logs", "-r", details["runId"]]) == 0
    assert "args ['--epochs', '3']" in capsys.readouterr().out
    assert main(["run", "download", "-r", details["runId"], "--prefix", "outputs/", "-d", "got"]) == 0
    captured = capsys.readouterr()
    assert "[1/1] outputs/result.txt" in captured.err  # progress, on stderr
    paths = json.loads(captured.out)
    assert paths == ["got/outputs/result.txt"] and (attached / "got/outputs/result.txt").read_text() == "42"

    explicit = studio(capsys, "run", "submit-script", "-e", "cli", "train.py", "--lr", "0.1")
    assert explicit["arguments"] == ["--lr", "0.1"]
    # Its runner must be done before the test's database is emptied (a runner still writing
    # deadlocks PostgreSQL's TRUNCATE at teardown).
    assert sdk.Run.get(sdk.Workspace.from_config(), explicit["runId"]).wait_for_completion()[
        "status"
    ] == "Completed" and explicit["status"] in (
        "Queued",
        "Starting",
        "Preparing",
        "Running",
    )


def test_every_command_has_help() -> None:
    parser = build_parser()
    commands = [
        ["folder", "attach"], ["run", "submit-script"], ["run", "list"], ["run", "show"], ["run", "update"],
        ["run", "cancel"], ["run", "logs"], ["run", "download"], ["experiment", "list"], ["compute", "list"],
        ["compute", "create"], ["worker"],
    ]  # fmt: skip
    for command in commands:
        with pytest.raises(SystemExit) as exited:
            parser.parse_args([*command, "--help"])
        assert exited.value.code == 0


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["run", "show", "-r", "no-such-run"], 1, "studio: error: run 'no-such-run' not found"),
        (["run", "list", "-e", "x", "--query", "[?"], 2, "studio: error: --query '[?' is not valid JMESPath"),
        (["run", "update", "-r", "{run}", "--add-tag", "=v"], 2, "studio: error: --tag '=v': write key=value"),
        (["run", "submit-script", "-e", "cli", "missing.py"], 1, "studio: error: no script 'missing.py' in"),
        (["run", "submit-script", "-e", "cli", "-t", "nowhere", "train.py"], 1, "unknown compute target 'nowhere'"),
        (["run", "submit-script", "-e", "cli", "-c", "absent"], 2, "studio: error: no run configuration 'absent'"),
    ],
)
def test_errors_are_one_line_on_stderr_and_a_non_zero_exit(
    attached: Path, argv: list[str], code: int, message: str
) -> None:
    (attached / "train.py").write_text("print('hi')\n")
    run = sdk.Experiment(sdk.Workspace.from_config(), "cli").start_logging()
    result = subprocess.run(
        [STUDIO, *(arg.replace("{run}", run.id) for arg in argv)],
        cwd=attached,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == code
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""
    assert run.get_tags() == {}  # nothing changed


def test_no_config_says_how_to_get_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STUDIO_URL", "STUDIO_TOKEN", "STUDIO_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    result = subprocess.run([STUDIO, "experiment", "list"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert (
        result.stderr.startswith("studio: error: no studio URL and token") and "studio folder attach" in result.stderr
    )


def test_run_export_writes_every_matching_run_or_their_metric_histories(
    azure_runs: dict[str, str], capsys: Any, tmp_path: Path
) -> None:
    ws = sdk.Workspace.from_config()
    best = sdk.Run.get(ws, azure_runs["best"])
    best.log("loss", 0.5)
    best.log("loss", 0.25)
    best.flush()  # logged points are sent by a background thread
    sdk.Experiment(ws, "another").start_logging()  # not this experiment's
    target = tmp_path / "runs.csv"
    asked = ["-e", "explore-runs", "--filter", "properties.author = azureml-user", "--sort", "metrics.loss"]
    said = studio(
        capsys, "run", "export", *asked, "--columns", "run_id,tags.quality,metrics.loss", "--file", str(target)
    )
    assert said == {"file": str(target), "rows": 2}
    lines = target.read_text().splitlines()
    assert lines == [
        "run_id,tags.quality,metrics.loss",
        f"{azure_runs['best']},fantastic run,0.25",
        f"{azure_runs['good']},great run,",
    ]
    points = tmp_path / "points.csv"
    assert studio(capsys, "run", "export", "-e", "explore-runs", "--metrics", "--file", str(points))["rows"] == 2
    assert points.read_text().splitlines()[1].startswith(f"{azure_runs['best']},loss,0,0.5,")
    assert main(["run", "export", "--filter", "status = (", "--file", str(tmp_path / "x.csv")]) == 1
    assert capsys.readouterr().err.count("\n") == 1  # one line on stderr
    assert not (tmp_path / "x.csv").exists()  # nothing half-written


def test_run_bulk_tags_cancels_and_says_what_it_skipped(azure_runs: dict[str, str], capsys: Any) -> None:
    said = studio(capsys, "run", "bulk", "tag", "--filter", "properties.author = azureml-user", "--tag", "batch=7")
    assert said == {"changed": 2, "skipped": []}
    ws = sdk.Workspace.from_config()
    assert sdk.Run.get(ws, azure_runs["best"]).get_tags()["batch"] == "7"
    sdk.Run.get(ws, azure_runs["good"]).complete()
    said = studio(capsys, "run", "bulk", "cancel", "-r", azure_runs["good"], "-r", azure_runs["flagged"])
    assert said == {
        "changed": 1,
        "skipped": [{"runId": azure_runs["good"], "reason": "cannot be canceled: it is Completed"}],
    }
    assert main(["run", "bulk", "move", "-r", azure_runs["best"], "-e", "nowhere"]) == 1
    assert "experiment: workspace 'default' has no experiment 'nowhere'" in capsys.readouterr().err
    assert main(["run", "bulk", "cancel"]) == 2  # neither runs nor a filter: how it was called
    assert (
        capsys.readouterr().err.strip()
        == "studio: error: name the runs (--run, repeatable) or give --filter, one of the two"
    )


def test_run_group_averages_over_seeds(azure_runs: dict[str, str], capsys: Any) -> None:
    ws = sdk.Workspace.from_config()
    for run_id, loss in ((azure_runs["best"], 0.2), (azure_runs["good"], 0.4)):
        run = sdk.Run.get(ws, run_id)
        run.log("loss", loss)
        run.flush()  # logged points are sent by a background thread
    said = studio(capsys, "run", "group", "-e", "explore-runs", "--by", "properties.author", "--metric", "loss")
    assert [(group["key"], group["count"]) for group in said] == [("azureml-user", 2), (None, 1)]
    stats = said[0]["metrics"]["loss"]
    assert stats["mean"] == pytest.approx(0.3) and stats["std"] == pytest.approx(0.1414213562, rel=1e-6)
    assert main(["run", "group", "--by", "shoe_size"]) == 1
    assert "cannot group by 'shoe_size'" in capsys.readouterr().err
