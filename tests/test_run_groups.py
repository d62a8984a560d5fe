"""Runs grouped and aggregated (runs/groups.py): the arithmetic against Python's ``statistics``, one
and two keys, runs without the key, and the REST API, SDK and CLI answers."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs import groups
from runs.models import Run
from tests.conftest import make_run

pytestmark = pytest.mark.django_db
GROUPS = "/api/v1/workspaces/default/runs/groups/"
# (lr, model, seed losses): three seeds for most, one for a lonely run, and a run without a model.
SWEEP = {
    ("0.01", "cnn"): [0.52, 0.48, 0.5],
    ("0.01", "mlp"): [0.61, 0.67],
    ("0.1", "cnn"): [0.9],
}


@pytest.fixture
def sweep(workspace: Any, other_workspace: Any, alice: Any, charlie: Any) -> list[Run]:
    made = []
    for (lr, model), losses in SWEEP.items():
        for seed, loss in enumerate(losses):
            run = make_run(workspace, alice, "sweep", properties={"lr": lr, "seed": str(seed)}, tags={"model": model})
            run.log_metrics(
                [{"name": "loss", "value": loss + 1, "step": 0}, {"name": "loss", "value": loss, "step": 1}]
            )
            made.append(run)
    nomodel = make_run(workspace, alice, "sweep", properties={"lr": "0.1"})
    nomodel.log_metrics([{"name": "loss", "value": 2.0}])
    made.append(nomodel)
    make_run(other_workspace, charlie, "sweep", properties={"lr": "0.01"})  # never counted
    return made


def test_groups_by_one_key_with_the_statistics_of_the_last_and_min_values(alice_api: Any, sweep: list[Run]) -> None:
    response = alice_api.get(GROUPS, {"by": "properties.lr", "metrics": "loss,loss.min"})
    assert response.status_code == 200
    found = {group["key"]: group for group in response.json()["groups"]}
    assert list(found) == ["0.01", "0.1"]
    losses = SWEEP["0.01", "cnn"] + SWEEP["0.01", "mlp"]
    small = found["0.01"]
    assert small["count"] == 5
    stats = small["metrics"]["loss"]
    assert stats["mean"] == pytest.approx(statistics.mean(losses), rel=1e-12)
    assert stats["std"] == pytest.approx(statistics.stdev(losses), rel=1e-9)
    assert (stats["min"], stats["max"], stats["count"]) == (min(losses), max(losses), 5)
    assert small["metrics"]["loss.min"]["mean"] == pytest.approx(statistics.mean(losses), rel=1e-12)  # min: step 1
    big = found["0.1"]["metrics"]["loss"]
    assert big["mean"] == pytest.approx((0.9 + 2.0) / 2) and big["std"] == pytest.approx(statistics.stdev([0.9, 2.0]))


def test_two_keys_and_runs_without_a_key_come_last(alice_api: Any, sweep: list[Run]) -> None:
    response = alice_api.get(GROUPS, {"by": "properties.lr,tags.model", "metrics": "loss"})
    found = [(group["key"], group["count"], group["metrics"]["loss"]["std"]) for group in response.json()["groups"]]
    assert [(key, count) for key, count, _ in found] == [
        (["0.01", "cnn"], 3),
        (["0.01", "mlp"], 2),
        (["0.1", "cnn"], 1),
        (["0.1", None], 1),
    ]
    assert found[2][2] is None  # one run: no sample standard deviation
    assert math.isclose(found[1][2], statistics.stdev(SWEEP["0.01", "mlp"]))


def test_a_query_narrows_the_runs_grouped(alice_api: Any, sweep: list[Run]) -> None:
    response = alice_api.get(GROUPS, {"by": "tags.model", "q": "properties.lr = 0.01"})
    assert [(group["key"], group["count"], group["metrics"]) for group in response.json()["groups"]] == [
        ("cnn", 3, {}),
        ("mlp", 2, {}),
    ]


def test_several_aggregates_of_a_metric_and_two_metrics_are_each_exact(alice_api: Any, sweep: list[Run]) -> None:
    for run in sweep[:4]:  # accuracy on some runs only: its count differs from loss's
        run.log_metrics([{"name": "accuracy", "value": 0.5 + run.pk / 100, "step": 0}])
    accuracies = [0.5 + run.pk / 100 for run in sweep[:4] if run.get_tags().get("model") == "cnn"]
    response = alice_api.get(GROUPS, {"by": "tags.model", "metrics": "loss,loss.min,loss.max,accuracy.max"})
    cnn = response.json()["groups"][0]
    assert (cnn["key"], cnn["count"]) == ("cnn", 4)
    losses = SWEEP["0.01", "cnn"] + SWEEP["0.1", "cnn"]
    for name, values in {"loss": losses, "loss.min": losses, "loss.max": [loss + 1 for loss in losses]}.items():
        stats = cnn["metrics"][name]
        assert stats["mean"] == pytest.approx(statistics.mean(values), rel=1e-12)
        assert stats["std"] == pytest.approx(statistics.stdev(values), rel=1e-9)
        assert (stats["min"], stats["max"], stats["count"]) == (min(values), max(values), 4)
    accuracy = cnn["metrics"]["accuracy.max"]
    assert accuracy["count"] == len(accuracies) == 3
    assert accuracy["mean"] == pytest.approx(statistics.mean(accuracies), rel=1e-12)
    assert accuracy["std"] == pytest.approx(statistics.stdev(accuracies), rel=1e-9)


def test_a_query_over_several_tags_and_metrics_counts_each_run_once(alice_api: Any, sweep: list[Run]) -> None:
    # A run matching both sides of the "or", and metric and property conditions: none may repeat it.
    q = "tags.model = cnn or properties.seed = 0 or metrics.loss < 1"
    response = alice_api.get(GROUPS, {"by": "properties.lr", "metrics": "loss", "q": q})
    found = {group["key"]: group for group in response.json()["groups"]}
    small = SWEEP["0.01", "cnn"] + SWEEP["0.01", "mlp"]
    assert found["0.01"]["count"] == 5
    assert found["0.01"]["metrics"]["loss"]["mean"] == pytest.approx(statistics.mean(small), rel=1e-12)
    assert found["0.01"]["metrics"]["loss"]["std"] == pytest.approx(statistics.stdev(small), rel=1e-9)
    assert (found["0.1"]["count"], found["0.1"]["metrics"]["loss"]["count"]) == (1, 1)  # the cnn run; 2.0 is not < 1


def test_one_join_per_metric_and_a_plain_count(sweep: list[Run], workspace: Any) -> None:
    """loss and loss.min read the same metric row: one join, not one per aggregate; and no join
    repeats a run, so the runs are counted without DISTINCT (which made PostgreSQL sort every row)."""
    runs = Run.objects.filter(workspace=workspace)
    metrics = groups.parse_metrics("loss,loss.min,loss.max,accuracy.max")
    with CaptureQueriesContext(connection) as captured:
        found = groups.run_groups(runs, ["tags.model", "properties.lr"], metrics)
    (query,) = captured.captured_queries
    sql = query["sql"].upper()
    assert sql.count('JOIN "RUNS_METRIC"') == 2
    assert "DISTINCT" not in sql
    assert sum(group.count for group in found) == len(sweep)


@pytest.mark.parametrize(
    ("params", "target", "words"),
    [
        ({}, "by", "group by a key"),
        ({"by": "colour"}, "by", "cannot group by 'colour'"),
        ({"by": "tags.a,tags.b,tags.c"}, "by", "at most 2 keys"),
        ({"by": "status", "q": "status = ("}, "q", ""),
    ],
)
def test_a_bad_grouping_is_a_400_naming_the_field(
    alice_api: Any, sweep: list[Run], params: dict[str, str], target: str, words: str
) -> None:
    response = alice_api.get(GROUPS, params)
    assert response.status_code == 400
    assert response.json()["error"]["target"] == target
    assert words in response.json()["error"]["message"]


def test_the_sdk_groups_an_experiments_runs(ws: Any, sweep: list[Run], workspace: Any, alice: Any) -> None:
    from runs import sdk

    make_run(workspace, alice, "elsewhere", properties={"lr": "0.01"})
    groups = sdk.Experiment(ws, "sweep").get_run_groups(by="properties.lr", metrics=["loss"])
    assert [(group["key"], group["count"]) for group in groups] == [("0.01", 5), ("0.1", 2)]
    everywhere = ws.get_run_groups("properties.lr")
    assert [(group["key"], group["count"]) for group in everywhere] == [("0.01", 6), ("0.1", 2)]
