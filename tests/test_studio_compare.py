"""Comparing runs in the studio: side by side, differences marked, and three charts."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from runs.models import Run
from tests.conftest import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(workspace: Any, alice: Any) -> list[Run]:
    runs = []
    for lr, losses in (("0.1", [0.9, 0.5, 0.4]), ("0.01", [0.8, 0.3, 0.1])):
        run = make_run(
            workspace, alice, "sweep", display_name=f"lr {lr}", tags={"team": "vision"}, properties={"lr": lr}
        )
        run.log_metrics([{"name": "loss", "value": v} for v in losses])
        runs.append(run)
    return runs


def charts(content: bytes) -> list[dict[str, Any]]:
    """The charts' specs (the parallel coordinates' data left out: it has no series)."""
    found = [json.loads(m) for m in re.findall(rb'<script[^>]*type="application/json">(.*?)</script>', content, re.S)]
    return [spec for spec in found if "series" in spec]


def parallel_data(content: str) -> dict[str, Any]:
    return json.loads(re.search(r"data-parallel><script[^>]*>(.*?)</script>", content, re.S)[1])


def test_runs_are_compared_side_by_side_with_differences_marked(client: Client, pair: list[Run], alice: Any) -> None:
    client.force_login(alice)
    response = client.get("/w/default/compare/", {"runs": [r.run_id for r in pair]})
    assertContains(response, "Compare 2 runs")
    body = response.content.decode()
    assert re.search(r'<tr class="differs"><th scope="row">property lr</th><td>0.1</td><td>0.01</td>', body)
    assert re.search(r'<tr><th scope="row">tag team</th><td>vision</td><td>vision</td>', body)  # same: not marked
    assert re.search(
        r'<tr class="differs"><th scope="row">loss \(min\)</th><td title="0.4" data-exact="0.4">0.4</td>'
        r'<td title="0.1" data-exact="0.1">0.1</td>',
        body,
    )

    over_steps, against = charts(response.content)
    assert [s["label"] for s in over_steps["series"]] == ["lr 0.1", "lr 0.01"]
    assert over_steps["series"][1] == {"label": "lr 0.01", "x": [0, 1, 2], "y": [0.8, 0.3, 0.1]}
    assert over_steps["controls"] is True
    assert against["kind"] == "scatter" and against["series"][0]["x"] == [0.1, 0.01]  # a point a run, in order
    assert against["series"][0]["y"] == [0.4, 0.1] and against["series"][0]["labels"] == ["lr 0.1", "lr 0.01"]
    assertContains(response, 'class="bar" style="width: 100.0%"')  # the larger last value fills the bar


def test_the_table_picks_runs_to_compare(client: Client, pair: list[Run], alice: Any) -> None:
    client.force_login(alice)
    page = client.get("/w/default/runs/")
    assertContains(page, 'action="/w/default/compare/"')
    assertContains(page, f'name="runs" value="{pair[0].run_id}"')


def test_only_the_workspaces_runs_are_compared(
    client: Client, pair: list[Run], charlie: Any, other_workspace: Any
) -> None:
    theirs = make_run(other_workspace, charlie, "secret", display_name="their run")
    client.force_login(charlie)
    response = client.get("/w/elsewhere/compare/", {"runs": [pair[0].run_id, theirs.run_id]})
    assertContains(response, "their run")
    assertNotContains(response, "lr 0.1")
    assertContains(response, f"Not found here: {pair[0].run_id}")
    assert client.get("/w/default/compare/", {"runs": pair[0].run_id}).status_code == 404


def test_compare_explains_itself_without_runs_and_caps_the_count(
    client: Client, workspace: Any, alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio import compare

    monkeypatch.setattr(compare, "COMPARE_MAX_RUNS", 20)  # 100 in use: fewer runs to make here
    client.force_login(alice)
    assertContains(client.get("/w/default/compare/"), "Pick runs to compare")
    many = [make_run(workspace, alice, display_name=f"run {i}").run_id for i in range(22)]
    response = client.get("/w/default/compare/", {"runs": ",".join(many)})
    assertContains(response, "At most 20 runs")
    assertContains(response, "Compare 20 runs")


def test_runs_picked_for_comparing_go_into_a_saved_view(client: Client, pair: list[Run], alice: Any) -> None:
    from studio.models import SavedView

    client.force_login(alice)
    ids = ",".join(r.run_id for r in pair)
    assertContains(client.get("/w/default/compare/", {"runs": ids}), f"?compare={ids}")
    client.post("/w/default/views/", {"name": "Sweep pair", "compare": ids})
    view = SavedView.objects.get(name="Sweep pair")
    assert view.compare == [r.run_id for r in pair]
    page = client.get(f"/w/default/runs/?view={view.pk}")
    assertContains(page, "Compare the 2 runs of this view")
    assertContains(page, f'name="runs" value="{pair[0].run_id}" aria-label="Compare lr 0.1" checked')


def test_only_differences_a_baseline_and_every_run_kept_in_the_scatter(
    client: Client, pair: list[Run], workspace: Any, alice: Any
) -> None:
    twin = make_run(
        workspace, alice, "sweep", display_name="lr 0.1 again", properties={"lr": "0.1"}, tags={"team": "vision"}
    )
    twin.log_metrics([{"name": "loss", "value": 0.6, "step": 0}])
    client.force_login(alice)
    ids = [r.run_id for r in [*pair, twin]]
    page = client.get("/w/default/compare/", {"runs": ids, "only_differences": "1"}).content.decode()
    assert '<th scope="row">tag team</th>' not in page and "alike hidden" in page
    assert '<th scope="row">property lr</th>' in page
    against = charts(client.get("/w/default/compare/", {"runs": ids}).content)[-1]
    assert against["series"][0]["x"] == [0.1, 0.01, 0.1]  # two runs share lr 0.1: both points kept
    based = client.get("/w/default/compare/", {"runs": ids, "baseline": pair[1].run_id}).content.decode()
    row = based.split('<th scope="row">loss (last)</th>')[1].split("</tr>")[0]
    assert '<span class="delta">+0.3</span>' in row and '<span class="delta">+0.5</span>' in row  # 0.4 and 0.6 from 0.1
    parallel = parallel_data(based)
    assert [axis["label"] for axis in parallel["axes"]] == ["lr", "loss"]
    assert parallel["axes"][0]["values"] == [0.1, 0.01, 0.1]
