"""Grouping, pinned runs with a baseline, and archiving, in a real browser: the Group menu groups the
table and a group opens to its runs; ticked runs are pinned to the top and one becomes the
baseline; runs archived from the table leave it and come back from the Archived runs switch."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from runs.models import Run
from tests.conftest import make_run


def seeds(workspace: Any, alice: Any) -> dict[str, Run]:
    made = {}
    for lr, losses in (("0.1", [0.5, 0.7]), ("0.01", [0.2, 0.3])):
        for seed, loss in enumerate(losses):
            run = make_run(workspace, alice, "sweep", display_name=f"lr{lr}-seed{seed}", tags={"lr": lr})
            run.log_metrics([{"name": "loss", "value": loss}])
            run.transition(Run.Status.COMPLETED)
            made[run.display_name] = run
    return made


def test_group_the_table_and_open_a_group(
    login_as: Any, errors: list[str], live_server: Any, workspace: Any, alice: Any
) -> None:
    seeds(workspace, alice)
    page = login_as(alice)
    page.goto(f"{live_server.url}/w/default/runs/?cols=name,tags.lr,metrics.loss")
    page.locator(".group-menu > summary").click()
    page.get_by_label("Group by").fill("tags.lr")
    page.get_by_label("Sort groups by").select_option(label="loss mean ↓")
    page.get_by_role("button", name="Group", exact=True).click()
    expect(page.locator("#run-count")).to_have_text("4")
    expect(page.locator(".count")).to_contain_text("4 runs in 2 groups")
    groups = page.locator("tr.group-row")
    expect(groups).to_have_count(2)
    expect(groups.nth(0).locator(".group-key")).to_have_text("lr: 0.1")  # mean 0.6 before 0.25
    expect(groups.nth(0).locator("td.col-metricsloss")).to_have_text("0.6 ± 0.1414")
    assert "group=tags.lr" in page.url and "group_sort=-metrics.loss" in page.url  # the URL is the state
    groups.nth(1).locator(".expander").click()
    opened = page.locator("tr.child-row")
    expect(opened).to_have_count(2)
    expect(opened.nth(0)).to_contain_text("lr0.01-seed")
    assert errors == []


def test_pin_runs_set_a_baseline_and_archive_from_the_table(
    login_as: Any, errors: list[str], live_server: Any, workspace: Any, alice: Any
) -> None:
    made = seeds(workspace, alice)
    page = login_as(alice)
    page.goto(f"{live_server.url}/w/default/runs/?cols=name,metrics.loss&sort=name")
    boxes = page.locator("#runs-table tbody td.col-select input")
    boxes.nth(0).click()  # lr0.01-seed0, loss 0.2
    page.get_by_role("button", name="Pin to top").click()
    expect(page.get_by_role("status").first).to_contain_text("Pinned 1 run to the top of the table.")
    pinned = page.locator("tr.pinned-row")
    expect(pinned).to_have_count(1)
    pinned.get_by_role("link", name="Set as baseline").click()
    expect(page.locator("tr.baseline-row")).to_have_count(1)
    worst = page.locator("tr:not(.pinned-row)", has_text="lr0.1-seed1")
    expect(worst.locator(".delta")).to_have_text("+0.5")  # 0.7 - 0.2
    # A filter that leaves it out still shows it, pinned.
    page.locator("#search").fill("tags.lr = 0.1")
    expect(page.locator("#run-count")).to_have_text("2")
    expect(page.locator("tr.pinned-row")).to_contain_text("lr0.01-seed0")

    # Archive the two runs the filter shows, then bring one back.
    page.locator("#runs-table tbody tr:not(.pinned-row) td.col-select input").nth(0).click()
    page.locator("#runs-table tbody tr:not(.pinned-row) td.col-select input").nth(1).click()
    page.get_by_text("Act on selected").click()
    page.get_by_role("button", name="Archive…").click()
    expect(page.locator("h1")).to_have_text("Archive 2 runs?")
    page.get_by_role("button", name="Archive 2 runs").click()
    expect(page.get_by_role("status").first).to_have_text("Archived 2 runs.")
    expect(page.locator("#run-count")).to_have_text("0")
    assert Run.objects.filter(archived_at__isnull=False).count() == 2
    page.get_by_label("Archived runs").check()
    expect(page.locator(".archived-note")).to_be_visible()
    expect(page.locator("#run-count")).to_have_text("2")
    page.locator("#runs-table tbody tr:not(.pinned-row) td.col-select input").nth(0).click()
    page.get_by_text("Act on selected").click()
    page.get_by_role("button", name="Restore…").click()
    page.get_by_role("button", name="Restore 1 run").click()
    expect(page.get_by_role("status").first).to_have_text("Restored 1 run.")
    assert Run.objects.filter(archived_at__isnull=False).count() == 1
    assert made["lr0.01-seed0"].run_id in page.url  # still pinned
    assert errors == []
