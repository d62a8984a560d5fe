"""A sort by one metric's last value reads its pages by walking the metric's index
(``runs.query.keys_by_last_value``); every page must be the one ``apply_sort`` gives."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.models import Run, RunSpec, Workspace
from runs.query import apply_sort, keys_by_last_value
from tests.conftest import make_run


@pytest.fixture
def runs(workspace: Workspace, other_workspace: Workspace, alice: Any, charlie: Any) -> Any:
    """Top-level runs in every state a sort must place: a number (with ties), only text values (no
    number), no such metric, another metric; a child run and another workspace's run with numbers."""
    losses = [0.5, 0.25, 0.5, float("inf"), -1.0, 0.25, 3.0, 0.5]
    for index, loss in enumerate(losses):
        make_run(workspace, alice, display_name=f"numbered {index}").log_metrics([{"name": "loss", "value": loss}])
        if index % 3 == 0:
            make_run(workspace, alice, display_name=f"without {index}")
    make_run(workspace, alice, display_name="text").log_metrics([{"name": "loss", "value": "diverged"}])
    make_run(workspace, alice, display_name="accuracy").log_metrics([{"name": "accuracy", "value": 0.9}])
    parent = Run.objects.filter(workspace=workspace).first()
    assert parent is not None
    (child,) = parent.experiment.create_runs([RunSpec()], by=alice, parent=parent)
    child.log_metrics([{"name": "loss", "value": 100.0}])
    make_run(other_workspace, charlie).log_metrics([{"name": "loss", "value": 50.0}])
    return Run.objects.filter(workspace=workspace, parent__isnull=True)


@pytest.mark.parametrize("sort", ["-metrics.loss", "metrics.loss", "metrics.loss.last"])
@pytest.mark.parametrize("size", [1, 3, 5, 50])
def test_every_page_is_the_one_apply_sort_gives(runs: Any, sort: str, size: int) -> None:
    expected = list(apply_sort(runs, sort).values_list("pk", flat=True))
    assert len(expected) == 13
    for start in range(0, len(expected) + size, size):
        assert keys_by_last_value(runs, sort, start, start + size) == expected[start : start + size], (sort, start)


@pytest.mark.parametrize(
    "sort", ["-metrics.loss.min", "metrics.loss.max", "-created", "tags.team", "-metrics.loss,name"]
)
def test_other_sorts_are_left_to_apply_sort(runs: Any, sort: str) -> None:
    assert keys_by_last_value(runs, sort, 0, 10) is None


def test_the_all_runs_page_sorted_by_a_metric_walks_its_index(client: Any, runs: Any, alice: Any) -> None:
    client.force_login(alice)
    names = [run.display_name for run in apply_sort(runs, "-metrics.loss")]
    with CaptureQueriesContext(connection) as queries:
        body = client.get("/w/default/runs/", {"sort": "-metrics.loss", "cols": "name,metrics.loss"}).content.decode()
    positions = [body.index(f">{name}</a>") for name in names]
    assert positions == sorted(positions)  # the page lists them in apply_sort's order
    page_queries = [q["sql"] for q in queries.captured_queries if "ORDER BY" in q["sql"] and "last_number" in q["sql"]]
    # one query for the runs with a number (an INNER JOIN, which can walk the index), one for the rest
    assert len(page_queries) == 2 and "LEFT OUTER JOIN" not in page_queries[0], page_queries
