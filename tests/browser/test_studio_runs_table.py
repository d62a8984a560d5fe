"""The runs table in a real browser (Debian's Chromium, driven by Playwright) against a live server:
badges that update themselves, and the column picker."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from runs.models import Run
from tests.conftest import make_run


def test_a_running_badge_turns_completed_by_itself(
    login_as: Any, live_server: Any, workspace: Any, alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("studio.views.LIST_POLL_SECONDS", 1)  # the live server runs in this process
    running = make_run(workspace, alice, "vision", display_name="training")
    done = make_run(workspace, alice, "vision", display_name="finished")
    done.transition(Run.Status.COMPLETED)
    page = login_as(alice)
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/statuses/" in request.url else None)
    page.goto(live_server.url + "/w/default/runs/")
    badge = page.locator("#runs-table tr:has-text('training') .col-status .badge")
    expect(badge).to_have_text("Running")
    expect(page.locator("#runs-table tr:has-text('finished') .col-status .badge")).to_have_text("Completed")
    page.wait_for_timeout(1500)
    assert polls and all(f"runs={running.run_id}" in url and done.run_id not in url for url in polls)
    running.transition(Run.Status.COMPLETED)
    expect(badge).to_have_text("Completed", timeout=5_000)  # no reload
    expect(badge).to_have_class("badge ok")
    page.wait_for_timeout(500)
    asked = len(polls)
    page.wait_for_timeout(2500)
    assert len(polls) == asked  # the answer was 286: polling stopped


def test_columns_are_added_reordered_and_removed_in_the_picker(
    login_as: Any, live_server: Any, workspace: Any, alice: Any
) -> None:
    for name, losses in (("resnet", [0.9, 0.2, 0.4]), ("vit", [0.8, 0.5])):
        run = make_run(workspace, alice, "vision", display_name=name, tags={"team": "vision"})
        run.log_metrics([{"name": "loss", "value": v} for v in losses])
    page = login_as(alice)
    page.goto(live_server.url + "/w/default/runs/?cols=name,status")
    headers = page.locator("#runs-table thead th")
    picker = page.locator("#column-list li")
    expect(headers).to_have_text(["Compare", "Display name", "Status"])

    # Add a metric column: its choices load when the picker is opened.
    page.get_by_text("Columns", exact=True).click()
    expect(page.locator("#column-choices option[value='metrics.loss.min']")).to_have_count(1)
    expect(page.locator("#column-choices option[value='status']")).to_be_disabled()  # already shown
    page.get_by_label("Column to add").select_option("metrics.loss.min")
    page.get_by_role("button", name="Add column").click()
    expect(headers).to_have_text(["Compare", "Display name", "Status", "loss.min"])
    expect(page.locator("#runs-table tr:has-text('resnet') .col-metricslossmin")).to_have_text("0.2")
    expect(page).to_have_url(re.compile(r"\?cols=name,status,metrics\.loss\.min$"))
    expect(picker).to_have_count(3)

    # Drag it before Status (the name is pinned: always first).
    picker.filter(has_text="loss.min").drag_to(picker.filter(has_text="Status"), target_position={"x": 3, "y": 5})
    expect(headers).to_have_text(["Compare", "Display name", "loss.min", "Status"])
    expect(page).to_have_url(re.compile(r"cols=name%2Cmetrics\.loss\.min%2Cstatus"))

    # Move one with the arrows, then remove one.
    page.get_by_label("Move Status left").click()
    expect(headers).to_have_text(["Compare", "Display name", "Status", "loss.min"])
    page.get_by_label("Remove Display name").click()
    expect(headers).to_have_text(["Compare", "Status", "loss.min"])
    expect(page).to_have_url(re.compile(r"cols=status%2Cmetrics\.loss\.min(&|$)"))

    # Searching keeps the columns (the state form learned them), and so does a reload.
    page.locator("#search").fill("resnet")
    expect(page.locator("#runs-table tbody tr")).to_have_count(1)
    expect(headers).to_have_text(["Compare", "Status", "loss.min"])
    assert "cols=status%2Cmetrics.loss.min" in page.url and "q=resnet" in page.url
    page.reload()
    expect(headers).to_have_text(["Compare", "Status", "loss.min"])
    expect(picker).to_have_text([re.compile("^Status"), re.compile("^loss.min")])


def test_a_malformed_search_shows_its_error_in_place_and_urls_leave_out_empty_filters(
    login_as: Any, live_server: Any, workspace: Any, alice: Any
) -> None:
    for name in ("resnet baseline", "transformer small"):
        make_run(workspace, alice, "vision", display_name=name)
    page = login_as(alice)
    page.goto(live_server.url + "/w/default/runs/")
    rows = page.locator("#runs-table tbody tr")
    expect(rows).to_have_count(2)

    page.locator("#search").fill("status = Bogus")  # htmx gets a 400 with the table and its error
    expect(page.locator("#runs-table [role=alert]")).to_contain_text("Bogus")
    assert "q=status" in page.url  # a reload shows the same error
    page.locator("#search").fill("resnet")
    expect(rows).to_have_count(1)
    expect(page.locator("#runs-table [role=alert]")).to_have_count(0)

    page.get_by_text("Add filter", exact=True).click()
    page.get_by_label("Field").select_option("status")
    page.get_by_label("Running", exact=True).check()
    page.get_by_role("button", name="Add this filter").click()
    expect(page.locator("#search")).to_have_value("resnet and status = Running")
    expect(rows).to_have_count(1)
    query = page.url.partition("?")[2]
    assert {name for name, _, value in (part.partition("=") for part in query.split("&")) if not value} == set()
    assert "filter" not in query  # the editor's fields are not the table's state


def test_a_refused_tag_shows_its_reason_in_place(login_as: Any, live_server: Any, workspace: Any, alice: Any) -> None:
    run = make_run(workspace, alice, "vision", display_name="tagged", tags={"team": "vision"})
    page = login_as(alice)
    page.goto(f"{live_server.url}/w/default/runs/{run.run_id}/")
    page.get_by_label("Tag key").fill("notes")
    page.get_by_label("Tag value").fill("x" * 5001)  # longer than a tag value may be
    page.get_by_role("button", name="Add or change tag").click()
    expect(page.locator("#tab [role=alert]")).to_be_visible()  # a 400, swapped: no reload needed
    run.refresh_from_db()
    assert run.get_tags() == {"team": "vision"}
