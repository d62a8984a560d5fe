"""Bulk actions in a real browser: shift-click ticks a range of runs, the action is confirmed with
its count, and the table comes back saying what changed."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from runs.models import Run
from tests.conftest import make_run


def test_shift_click_a_range_then_tag_them(login_as: Any, live_server: Any, workspace: Any, alice: Any) -> None:
    for i in range(6):
        make_run(workspace, alice, "sweep", display_name=f"seed {i}")
    page = login_as(alice)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_server.url}/w/default/runs/?sort=name&cols=name,status")
    boxes = page.locator("#runs-table tbody td.col-select input")
    boxes.nth(1).click()
    boxes.nth(4).click(modifiers=["Shift"])  # ticks 1 to 4
    assert [boxes.nth(i).is_checked() for i in range(6)] == [False, True, True, True, True, False]
    page.get_by_text("Act on selected").click()
    page.get_by_role("button", name="Add tags…").click()
    expect(page.locator("h1")).to_have_text("Tag 4 runs?")
    page.get_by_label("Tags to add").fill("reviewed, batch=7")
    page.get_by_role("button", name="Tag 4 runs").click()
    expect(page.get_by_role("status")).to_have_text("Tagged 4 runs.")
    assert "sort=name" in page.url  # back to the table as it was
    tagged = sorted(run.display_name for run in Run.objects.filter(tag_set__key="batch", tag_set__value="7"))
    assert tagged == ["seed 1", "seed 2", "seed 3", "seed 4"]
    assert errors == []
