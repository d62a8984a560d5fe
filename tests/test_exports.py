"""Exports that drop no data (runs/exports.py): every matching run, not a page, with exact values; the
metric histories of every matching run in long format; streamed; from the REST API and the studio's
Export menu, which write the same files."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import pytest
from django.test import Client

from runs import exports
from runs.models import Run
from tests.conftest import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(workspace: Any, other_workspace: Any, alice: Any, charlie: Any, settings: Any) -> list[Run]:
    settings.RUNS_PAGE_SIZE = 2  # more runs than a page: an export is every run
    made = []
    for i, (name, loss) in enumerate((("bert", 0.5), ("resnet", 0.123456789012345), ("vit", 0.25))):
        run = make_run(workspace, alice, "vision", display_name=name, tags={"team": "vision", "seed": str(i)},
                       properties={"lr": "-0.01", "note": "=HYPERLINK(\"http://evil\")"})  # fmt: skip
        run.log_metrics([{"name": "loss", "value": loss * (3 - step), "step": step} for step in range(3)])
        run.log_metrics([{"name": "acc", "value": 0.9, "step": 0}, {"name": "acc", "value": math.nan, "step": 1}])
        made.append(run)
    make_run(workspace, alice, "vision", display_name="other team", tags={"team": "nlp"})
    make_run(other_workspace, charlie, "secret", display_name="charlie's", tags={"team": "vision"})
    return made


def rows(response: Any) -> list[dict[str, str]]:
    assert response.streaming  # never the whole file in memory
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_every_matching_run_with_the_columns_asked_for_in_order(alice_api: Any, runs: list[Run]) -> None:
    response = alice_api.get(
        "/api/v1/workspaces/default/runs/export/",
        {"q": "tags.team = vision", "sort": "metrics.loss", "cols": "name,run_id,metrics.loss,properties.lr,tags"},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="default-runs.csv"'
    found = rows(response)
    assert [row["name"] for row in found] == ["resnet", "vit", "bert"]  # all 3, though a page holds 2; sorted
    assert list(found[0]) == ["name", "run_id", "metrics.loss", "properties.lr", "tags"]
    assert found[0]["metrics.loss"] == repr(0.123456789012345)  # exact, not rounded for reading
    assert found[0]["run_id"] == runs[1].run_id
    assert found[0]["properties.lr"] == "-0.01"  # a number that starts with a sign is left alone
    assert found[0]["tags"] == "team=vision; seed=1"


def test_a_value_a_spreadsheet_would_run_as_a_formula_is_defused(alice_api: Any, runs: list[Run]) -> None:
    response = alice_api.get("/api/v1/workspaces/default/runs/export/", {"cols": "name,properties.note"})
    notes = {row["properties.note"] for row in rows(response) if row["properties.note"]}
    assert notes == {'\'=HYPERLINK("http://evil")'}


def test_the_default_columns_and_times_durations_in_plain_units(alice_api: Any, runs: list[Run]) -> None:
    runs[0].transition(Run.Status.COMPLETED)
    found = rows(alice_api.get("/api/v1/workspaces/default/runs/export/", {"q": "bert"}))
    assert list(found[0]) == ["name", "run_id", "experiment", "status", "submitted_by", "target", "created",
                              "duration_seconds"]  # fmt: skip
    assert found[0]["status"] == "Completed"
    assert found[0]["created"] == runs[0].created_at.isoformat()
    assert float(found[0]["duration_seconds"]) >= 0


def test_metric_histories_of_every_matching_run_in_long_format(alice_api: Any, runs: list[Run]) -> None:
    response = alice_api.get(
        "/api/v1/workspaces/default/runs/export/metrics/", {"q": "tags.team = vision", "names": "loss,acc"}
    )
    assert response["Content-Disposition"] == 'attachment; filename="default-metrics.csv"'
    found = rows(response)
    assert len(found) == 3 * (3 + 2)
    assert list(found[0]) == ["run_id", "metric", "step", "value", "time"]
    first = [row for row in found if row["run_id"] == runs[0].run_id]
    assert [(row["metric"], row["step"], row["value"]) for row in first] == [
        ("acc", "0", "0.9"),
        ("acc", "1", "nan"),
        ("loss", "0", "1.5"),
        ("loss", "1", "1.0"),
        ("loss", "2", "0.5"),
    ]
    only_loss = rows(alice_api.get("/api/v1/workspaces/default/runs/export/metrics/", {"names": "loss"}))
    assert {row["metric"] for row in only_loss} == {"loss"}
    assert len(only_loss) == 9


def test_exports_stream_in_chunks_of_runs(alice_api: Any, runs: list[Run], monkeypatch: Any) -> None:
    monkeypatch.setattr(exports, "RUNS_PER_CHUNK", 2)  # 4 runs: two chunks, the same file
    found = rows(alice_api.get("/api/v1/workspaces/default/runs/export/", {"sort": "name"}))
    assert [row["name"] for row in found] == ["bert", "other team", "resnet", "vit"]
    points = rows(alice_api.get("/api/v1/workspaces/default/runs/export/metrics/"))
    assert len(points) == 15


@pytest.mark.parametrize(
    ("params", "target", "words"),
    [
        ({"cols": "name,bogus"}, "cols", "unknown column 'bogus'"),
        ({"q": "status = (", "cols": "name"}, "q", ""),
        ({"sort": "-colour"}, "sort", "cannot sort by 'colour'"),
        ({"format": "xlsx"}, "format", "exports are written as csv, not 'xlsx'"),
        ({"format": "csv", "cols": "nope"}, "cols", "unknown column 'nope'"),  # format=csv is ours, not DRF's
    ],
)
def test_a_bad_export_request_is_refused_with_a_400_naming_the_field(
    alice_api: Any, runs: list[Run], params: dict[str, str], target: str, words: str
) -> None:
    response = alice_api.get("/api/v1/workspaces/default/runs/export/", params)
    assert response.status_code == 400
    assert response.json()["error"]["target"] == target
    assert words in response.json()["error"]["message"]


def test_another_workspaces_runs_are_never_exported(alice_api: Any, charlie_api: Any, runs: list[Run]) -> None:
    assert alice_api.get("/api/v1/workspaces/elsewhere/runs/export/").status_code == 404
    assert alice_api.get("/api/v1/workspaces/elsewhere/runs/export/metrics/").status_code == 404
    mine = rows(alice_api.get("/api/v1/workspaces/default/runs/export/", {"cols": "name"}))
    assert "charlie's" not in {row["name"] for row in mine}


def test_the_studio_exports_the_table_as_it_is(client: Client, runs: list[Run], alice: Any) -> None:
    client.force_login(alice)
    state = {"q": "tags.team = vision", "sort": "-metrics.loss", "cols": "name,metrics.loss"}
    page = client.get("/w/default/runs/", state).content.decode()
    assert (
        'href="/w/default/runs/export.csv?q=tags.team%20%3D%20vision&amp;sort=-metrics.loss&amp;cols=name,metrics.loss"'
        in page
    )
    response = client.get("/w/default/runs/export.csv", state)
    assert [row["name"] for row in rows(response)] == ["bert", "vit", "resnet"]  # -metrics.loss
    assert list(rows(client.get("/w/default/runs/export.csv", state))[0]) == ["name", "metrics.loss"]
    histories = rows(client.get("/w/default/runs/export-metrics.csv", state))  # the table's metric columns
    assert {row["metric"] for row in histories} == {"loss"} and len(histories) == 9
    scoped = rows(client.get("/w/default/experiments/vision/export.csv", {"cols": "name"}))
    assert len(scoped) == 4
    assert client.get("/w/default/runs/export.csv", {"cols": "nope"}).status_code == 400
    client.logout()
    assert client.get("/w/default/runs/export.csv").status_code == 302  # to the login page


def test_the_sdk_writes_the_exports_to_files(ws: Any, runs: list[Run], tmp_path: Any) -> None:
    written = ws.export_runs(
        tmp_path / "runs.csv", query="tags.team = vision", sort="name", columns=["name", "metrics.loss"]
    )
    assert written.read_text().splitlines() == [
        "name,metrics.loss",
        "bert,0.5",
        f"resnet,{0.123456789012345!r}",
        "vit,0.25",
    ]
    points = ws.export_metrics(tmp_path / "points.csv", query="bert", names=["loss"])
    assert [line.split(",")[2:4] for line in points.read_text().splitlines()[1:]] == [
        ["0", "1.5"],
        ["1", "1.0"],
        ["2", "0.5"],
    ]


def test_lines_go_out_in_blocks_not_one_chunk_a_line(alice_api: Any, runs: list[Run]) -> None:
    assert list(exports.in_blocks(["a,b\r\n", "c,d\r\n", "e,f\r\n"], size=10)) == ["a,b\r\nc,d\r\n", "e,f\r\n"]
    response = alice_api.get("/api/v1/workspaces/default/runs/export/metrics/")
    chunks = list(response.streaming_content)
    assert len(chunks) == 1  # 15 points and a header: one block
    assert chunks[0].decode().count("\r\n") == 16
