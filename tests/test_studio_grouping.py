"""The runs table grouped (``?group=``) with each group's metric statistics, its runs opened under
it; runs pinned to the top (``?pinned_runs=``) across pages and filters; a baseline whose
differences every other row's metric cells show."""

from __future__ import annotations

import statistics
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from runs.models import Run
from studio.run_list_state import RunListState, StateError
from studio.tables import readable_number
from tests.conftest import make_run

pytestmark = pytest.mark.django_db
RUNS = "/w/default/runs/"
COLS = "name,tags.lr,tags.model,metrics.loss"


@pytest.fixture
def sweep(workspace: Any, alice: Any) -> dict[str, Run]:
    """Seeds of two learning rates and two models; one run without an lr."""
    made = {}
    losses = {("0.1", "cnn"): [0.5, 0.7], ("0.1", "mlp"): [0.9], ("0.01", "cnn"): [0.2, 0.25, 0.3]}
    for (lr, model), values in losses.items():
        for seed, loss in enumerate(values):
            run = make_run(
                workspace, alice, "sweep", display_name=f"lr{lr}-{model}-{seed}", tags={"lr": lr, "model": model}
            )
            run.log_metrics([{"name": "loss", "value": loss}])
            made[run.display_name] = run
    made["no-lr"] = make_run(workspace, alice, "sweep", display_name="no-lr", tags={"model": "cnn"})
    return made


def test_a_group_row_shows_its_count_and_its_runs_mean_and_std(client: Client, alice: Any, sweep: Any) -> None:
    client.force_login(alice)
    page = client.get(RUNS, {"cols": COLS, "group": "tags.lr"})
    assertContains(page, '<span id="run-count">7</span> runs in 3 groups')
    html = page.content.decode()
    rows = [part for part in html.split("<tr") if "group-row" in part]
    assert [row.split('class="group-key">')[1].split("<")[0] for row in rows] == ["lr: 0.01", "lr: 0.1", "lr: (none)"]
    mean = statistics.mean([0.2, 0.25, 0.3])
    std = statistics.stdev([0.2, 0.25, 0.3])
    assert f'{readable_number(mean)}<span class="spread"> ± {readable_number(std)}</span>' in rows[0]
    assert f"min {0.2!r}, max {0.3!r}, of 3 runs" in rows[0]
    assert "3 runs" in rows[0] and "1 run<" in rows[2]
    # Under the table, the metric over steps per group: its mean and a min-max band (runs/group_series.py).
    chart = html.split('<div class="chart" data-chart data-chart-height="240">')[1]
    assert '"title": "loss over steps"' in chart and '"band": {"lo": [0.2]' in chart
    # Sorted by a statistic: the highest mean first, the group without a value last.
    by_mean = client.get(RUNS, {"cols": COLS, "group": "tags.lr", "group_sort": "-metrics.loss:mean"}).content.decode()
    keys = [row.split('class="group-key">')[1].split("<")[0] for row in by_mean.split("<tr") if "group-row" in row]
    assert keys == ["lr: 0.1", "lr: 0.01", "lr: (none)"]


def test_a_groups_runs_open_under_it_and_without_javascript_as_a_filtered_table(
    client: Client, alice: Any, sweep: Any
) -> None:
    client.force_login(alice)
    html = client.get(RUNS, {"cols": COLS, "group": "tags.lr"}).content.decode()
    first = next(part for part in html.split("<tr") if "group-row" in part)
    filtered = first.split('href="')[1].split('"')[0].replace("&amp;", "&")
    state = parse_qs(urlsplit(filtered).query)
    assert state["q"] == ["tags.lr = 0.01"] and "group" not in state  # an ordinary state: a link
    table = client.get(filtered)
    assertContains(table, '<span id="run-count">3</span> runs')
    rows = client.get(filtered + "&group_runs=1", headers={"HX-Request": "true"})
    assert rows.content.decode().count('<tr class="child-row depth-1">') == 3
    none = next(part for part in html.split("<tr") if "lr: (none)" in part)
    missing = none.split('href="')[1].split('"')[0].replace("&amp;", "&")
    assert parse_qs(urlsplit(missing).query)["q"] == ["not tags.lr"]
    assertContains(client.get(missing), "no-lr")


def test_two_keys_nest_the_second_under_the_first(client: Client, alice: Any, sweep: Any) -> None:
    client.force_login(alice)
    html = client.get(RUNS, {"cols": COLS, "group": "tags.lr,tags.model"}).content.decode()
    rows = [part for part in html.split("<tr") if "group-row" in part]
    labels = [(("level-1" in row), row.split('class="group-key">')[1].split("<")[0]) for row in rows]
    assert labels == [
        (False, "lr: 0.01"), (True, "model: cnn"),
        (False, "lr: 0.1"), (True, "model: cnn"), (True, "model: mlp"),
        (False, "lr: (none)"), (True, "model: cnn"),
    ]  # fmt: skip


def test_a_bad_group_is_named_and_kept() -> None:
    with pytest.raises(StateError) as refused:
        RunListState.from_params({"group": "tags.a,tags.b,tags.c"})
    assert refused.value.errors["group"] == "at most 2 keys, not 3"
    with pytest.raises(StateError) as refused:
        RunListState.from_params({"group": "tags.a", "group_sort": "loss"})
    assert "groups sort by key, count or a metric column's" in refused.value.errors["group_sort"]
    state = RunListState.from_params({"group": "tags.lr", "pinned_runs": "a,b", "baseline": "c"})
    assert state.pinned_runs == ("c", "a", "b")  # the baseline is pinned
    assert RunListState.from_params(state.to_params()) == state  # a saved view round-trips


def test_pinned_runs_stay_on_top_across_filters_with_a_baseline(client: Client, alice: Any, sweep: Any) -> None:
    client.force_login(alice)
    best, worst = sweep["lr0.01-cnn-0"], sweep["lr0.1-mlp-0"]
    done = client.get(
        RUNS, {"pin_selected": "1", "runs": [best.run_id], "back": f"{RUNS}?cols={COLS}&q=model"}, follow=True
    )
    assertContains(done, "Pinned 1 run to the top of the table.")
    final = done.redirect_chain[-1][0]
    assert parse_qs(urlsplit(final).query)["pinned_runs"] == [best.run_id]
    # Shown whatever the filter: a query that does not match it.
    page = client.get(
        RUNS, {"cols": COLS, "q": "tags.model = mlp", "pinned_runs": best.run_id, "baseline": best.run_id}
    )
    html = page.content.decode()
    pinned = next(part for part in html.split("<tr") if "pinned-row" in part)
    assert "baseline-row" in pinned and "Baseline ✓" in pinned
    other = next(part for part in html.split("<tr") if worst.run_id in part and "pinned-row" not in part)
    assert '<span class="delta">+0.7</span>' in other  # 0.9 - 0.2
    assertNotContains(client.get(RUNS, {"cols": COLS, "pinned_runs": "nope"}), "pinned-row")
