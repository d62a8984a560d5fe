"""The runs table in a real browser (Debian's Chromium, driven by Playwright) against a live server:
badges that update themselves, and the column picker."""

from __future__ import annotations

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
