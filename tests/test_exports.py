"""Exports that drop no data (runs/exports.py): every matching run, not a page, with exact values; the
metric histories of every matching run in long format; streamed; from the REST API and the studio's
Export menu, which write the same files."""

from __future__ import annotations

import csv
import io
import math
import random
import struct
from typing import Any

import pytest
from django.test import Client

from runs import columns as run_columns
from runs import exports
from runs.models import MetricPoint, Run
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


# --- Exact values, read without model instances (runs.columns.cell_values, the points' raw cursor) ---


@pytest.fixture
def odd_runs(workspace: Any, alice: Any) -> list[Run]:
    """Runs with what an export must write exactly: missing tags, properties and metrics; a tag
    without a value; non-finite and non-number metric values; a name that needs quoting; times
    logged with and without microseconds, and in another time zone."""
    full = make_run(workspace, alice, "odd", display_name="full, quoted \"name\"", description="=1+1",
                    tags={"a": None, "team": "-vision"}, properties={"commit": "abc", "lr": "0.1"})  # fmt: skip
    full.log_metrics(
        [
            {"name": "loss", "value": 0.1, "step": 0, "time": "2026-01-02T03:04:05.000001+00:00"},
            {"name": "loss", "value": 1e-7, "step": 1, "time": "2026-01-02T03:04:05+02:00"},
            {"name": "loss", "value": 12345678901234567.0, "step": 2},
            {"name": "loss", "value": -0.0, "step": 3},  # SQLite keeps 0.0: as the ORM reads it
            {"name": "loss", "value": math.inf, "step": 4},
            {"name": "loss", "value": -math.inf, "step": 5},
            {"name": "loss", "value": math.nan, "step": 6},
            {"name": "loss", "value": 1 / 3, "step": 7},
            {"name": "loss,val", "value": 7, "step": 0},
            {"name": "note", "value": "=cmd|' /C calc'!A0", "step": 0},
            {"name": "note", "value": "-12", "step": 1},
            {"name": "note", "value": "plain", "step": 2},
            {"name": "flag", "value": True, "step": 0},
            {"name": "big", "value": 2**62 + 1, "step": 0},
        ]
    )
    full.log_metrics([{"name": "ratios", "kind": "list", "value": [0.5, math.nan, "x"], "step": 0}])
    full.log_metrics([{"name": "row", "kind": "row", "value": {"a": 1, "b": math.inf}, "step": 0}])
    full.transition(Run.Status.COMPLETED)
    bare = make_run(workspace, alice, "odd")  # no display name, tags, properties or metrics
    nan_last = make_run(workspace, alice, "odd", display_name="nan last", tags={"team": "nlp"})
    nan_last.log_metrics([{"name": "loss", "value": 0.5, "step": 0}, {"name": "loss", "value": math.nan, "step": 1}])
    return [full, bare, nan_last]


ALL_COLUMNS = (
    "name,run_id,experiment,status,submitted_by,target,created,duration,description,tags,tags.a,tags.team,"
    "tags.missing,properties.lr,properties.missing,metrics.loss,metrics.loss.min,metrics.loss.max,metrics.note,"
    "metrics.flag,metrics.missing,metrics.loss.max.last"
)


def test_cell_values_are_what_the_cells_show(odd_runs: list[Run], runs: list[Run]) -> None:
    columns = run_columns.parse_columns(ALL_COLUMNS)
    pks = [run.pk for run in [*odd_runs, *runs]]
    ordered = Run.objects.filter(pk__in=pks).order_by("-pk")
    values = list(run_columns.cell_values(ordered, columns, chunk_size=2))  # chunks of 2 runs: the same values
    run_id = [c.key for c in columns].index("run_id")
    assert [v.cells[run_id] for v in values] == list(ordered.values_list("run_id", flat=True))
    read = {run.pk: value for run, value in zip(ordered, values, strict=True)}
    for run in run_columns.with_cells(Run.objects.filter(pk__in=pks), columns):
        expected = [run_columns.cell(run, column) for column in columns]
        duration = [c.key for c in columns].index("duration")
        if run.ended_at is None:  # a running run's duration grows between the two reads
            expected[duration] = read[run.pk].cells[duration] = None
        assert read[run.pk].cells == expected
        assert (read[run.pk].display_name, read[run.pk].started_at, read[run.pk].ended_at) == (
            run.display_name,
            run.started_at,
            run.ended_at,
        )
    bare = read[odd_runs[1].pk].cells
    assert bare[columns.index(run_columns.parse_columns("tags.missing")[0])] is None
    assert bare[[c.key for c in columns].index("tags")] == []


def test_the_runs_export_writes_missing_values_empty_and_numbers_exactly(alice_api: Any, odd_runs: list[Run]) -> None:
    cols = "name,run_id,description,tags,tags.a,tags.team,properties.lr,properties.missing,metrics.loss,"
    cols += "metrics.loss.min,metrics.loss.max,metrics.note,metrics.flag,duration"
    found = {
        row["run_id"]: row
        for row in rows(alice_api.get("/api/v1/workspaces/default/runs/export/", {"q": "", "cols": cols}))
    }
    full, bare, nan_last = (found[run.run_id] for run in odd_runs)
    assert full["name"] == 'full, quoted "name"'
    assert full["description"] == "'=1+1"  # a formula, defused
    assert full["tags"] == "a; team=-vision"
    assert (full["tags.a"], full["tags.team"], full["properties.lr"], full["properties.missing"]) == (
        "✓",
        "'-vision",
        "0.1",
        "",
    )
    assert (full["metrics.loss"], full["metrics.loss.min"], full["metrics.loss.max"]) == (repr(1 / 3), "-inf", "inf")
    assert (full["metrics.note"], full["metrics.flag"]) == ("plain", "true")
    assert float(full["duration_seconds"]) >= 0
    assert {key: value for key, value in bare.items() if key not in ("run_id", "duration_seconds")} == {
        key: "" for key in bare if key not in ("run_id", "duration_seconds")
    }
    assert (nan_last["name"], nan_last["metrics.loss"], nan_last["metrics.loss.min"]) == ("nan last", "NaN", "0.5")


def reference_points(run_query: Any, names: list[str]) -> str:
    """The points export as the ORM reads it (the way it was first written): each row's value and
    time through Django's converters, formatted by the export's own rules."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["run_id", "metric", "step", "value", "time"])
    run_ids = dict(run_query.values_list("pk", "run_id"))
    points = MetricPoint.objects.filter(metric__run_id__in=run_ids)
    if names:
        points = points.filter(metric__name__in=names)
    rows = points.order_by("metric__run_id", "metric__name", "step", "pk").values_list(
        "metric__run_id", "metric__name", "step", "number", "value", "time"
    )
    for run_pk, name, step, number, value, time in rows:
        shown = number if value is None else MetricPoint.decode(number, value)
        writer.writerow([run_ids[run_pk], name, step, exports._plain(shown), exports._iso(time)])
    return out.getvalue()


@pytest.mark.parametrize("names", [[], ["loss", "note"]])
def test_the_points_export_is_what_the_orm_reads(
    odd_runs: list[Run], runs: list[Run], monkeypatch: Any, names: list[str]
) -> None:
    monkeypatch.setattr(exports, "RUNS_PER_CHUNK", 2)
    monkeypatch.setattr(exports, "POINTS_PER_FETCH", 3)  # batches that end inside a metric
    every = Run.objects.filter(workspace=odd_runs[0].workspace)
    written = "".join(exports.metric_points_csv(every, names))
    assert written == reference_points(every, names)
    lines = {tuple(row[1:4]) for row in csv.reader(io.StringIO(written)) if row[0] == odd_runs[0].run_id}
    assert {
        ("loss", "2", "1.2345678901234568e+16"),
        ("loss", "4", "inf"),
        ("loss", "5", "-inf"),
        ("loss", "6", "nan"),
        ("loss", "7", repr(1 / 3)),
        ("note", "0", "'=cmd|' /C calc'!A0"),
        ("note", "1", "-12"),  # a number in a string: left alone
    } <= lines
    if not names:
        assert {
            ("loss,val", "0", "7"),
            ("flag", "0", "true"),
            ("big", "0", str(2**62 + 1)),
            ("ratios", "0", '[0.5, {"$float": "NaN"}, "x"]'),
            ("row", "0", '{"a": 1, "b": {"$float": "Infinity"}}'),
        } <= lines
    times = [row[4] for row in csv.reader(io.StringIO(written)) if row[:2] == [odd_runs[0].run_id, "loss"]]
    assert times[:2] == ["2026-01-02T03:04:05.000001+00:00", "2026-01-02T01:04:05+00:00"]


def test_every_float_is_written_as_python_writes_it(workspace: Any, alice: Any) -> None:
    """Around the edges of how floats are written (whole numbers, 1e-4, 1e15, 1e16, the smallest and
    largest) and at random over all bit patterns, each value is written as Python writes it, and
    reads back as the same float. (A database's own float text differs at those edges: PostgreSQL
    writes 1 for 1.0 and an exponent from 1e15.)"""
    edges = [1e-4, math.nextafter(1e-4, 0), math.nextafter(1e-4, 1), 1e15, math.nextafter(1e15, 0), 1e15 - 0.5,
             1e16, math.nextafter(1e16, 0), 123.0, -7.0, 0.5, -0.5, 0.0, -0.0, 5e-324, 1.7976931348623157e308,
             2.0**53 + 2, 0.1 + 0.2, 1 / 3, -1 / 3, 999999999999999.9, 0.00012345678901234567]  # fmt: skip
    rng = random.Random(13)
    anything = [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(1500)]
    scaled = [rng.uniform(-1, 1) * 10 ** rng.uniform(-6, 17) for _ in range(1500)]
    values = [value for value in [*edges, *anything, *scaled] if math.isfinite(value)]
    run = make_run(workspace, alice, "floats")
    at = ["2026-03-04T05:06:07+00:00", "2026-03-04T05:06:07.5+00:00", "2026-03-04T05:06:07.000123+00:00"]
    run.log_metrics(
        [{"name": "x", "value": value, "step": step, "time": at[step % 3]} for step, value in enumerate(values)]
    )
    runs = Run.objects.filter(pk=run.pk)
    written = "".join(exports.metric_points_csv(runs, ["x"]))
    assert written == reference_points(runs, ["x"])
    read = [float(row["value"]) for row in csv.DictReader(io.StringIO(written))]
    assert read == values


def test_a_time_as_sqlite_holds_it_is_written_as_the_orm_would() -> None:
    assert exports._text_iso("2026-01-02 03:04:05") == "2026-01-02T03:04:05+00:00"
    assert exports._text_iso("2026-01-02 03:04:05.120000") == "2026-01-02T03:04:05.120000+00:00"
    # Not as Django writes it (another writer): parsed, as the ORM's converter would.
    assert exports._text_iso("2026-01-02 03:04:05.000000") == "2026-01-02T03:04:05+00:00"
    assert exports._text_iso("2026-01-02T03:04:05.5") == "2026-01-02T03:04:05.500000+00:00"
    assert exports._text_iso("2026-01-02 03:04:05+01:00") == "2026-01-02T02:04:05+00:00"
