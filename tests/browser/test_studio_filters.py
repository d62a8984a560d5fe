"""Filters as chips in a real browser (Debian's Chromium): "Add filter" offers controls that fit the
field; each chip is a condition of the search box's query, so the two never disagree; a range the
wrong way round is refused in the editor; and all of it works without JavaScript too."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from runs.models import Run
from tests.conftest import make_run


@pytest.fixture
def runs(workspace: Any, alice: Any) -> None:
    for name, status, team, loss in (
        ("bert-base", Run.Status.FAILED, "nlp", 0.9),
        ("bert-large", Run.Status.COMPLETED, "nlp", 0.4),
        ("resnet-50", Run.Status.CANCELED, "vision", 0.7),
        ("resnet-18", Run.Status.COMPLETED, "vision", 0.1),
    ):
        run = make_run(workspace, alice, "sweep", display_name=name, tags={"team": team})
        run.log_metrics([{"name": "loss", "value": loss}])
        run.transition(status)


@pytest.fixture
def studio(runs: None, login_as: Any, alice: Any) -> tuple[Page, list[str]]:
    page = login_as(alice)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, errors


def _add_filter(page: Page, field: str) -> None:
    page.get_by_text("Add filter", exact=True).click()
    page.get_by_label("Field").select_option(field)


def test_chips_and_the_search_box_are_one_query(studio: tuple[Page, list[str]], live_server: Any) -> None:
    page, errors = studio
    page.goto(f"{live_server.url}/w/default/runs/")
    rows = page.locator("#runs-table tbody tr")
    chips = page.locator(".filter-chip")
    expect(rows).to_have_count(4)

    _add_filter(page, "status")
    page.get_by_label("Failed", exact=True).check()
    page.get_by_label("Canceled", exact=True).check()
    page.get_by_role("button", name="Add this filter").click()
    expect(rows).to_have_count(2)
    expect(chips).to_have_text([re.compile(r"Status\s+is\s+Failed or Canceled")])
    expect(page.locator("#search")).to_have_value("status in (Failed, Canceled)")
    expect(page.locator("#add-filter")).not_to_have_attribute("open", "")  # closed, ready for the next

    _add_filter(page, "metrics")
    page.get_by_label("Metric name").fill("loss")
    page.get_by_label("Operator").select_option(">")
    page.get_by_label("Value", exact=True).fill("0.8")
    page.get_by_role("button", name="Add this filter").click()
    expect(rows).to_have_count(1)
    expect(chips).to_have_count(2)
    expect(chips.nth(1)).to_contain_text("loss")
    expect(page.locator("#search")).to_have_value("status in (Failed, Canceled) and metrics.loss > 0.8")

    # Typed in the box, a condition becomes a chip; a chip removed leaves the box.
    page.locator("#search").fill("status in (Failed, Canceled) and metrics.loss > 0.8 and tags.team = nlp")
    expect(chips).to_have_count(3)
    expect(chips.nth(2)).to_contain_text("team")
    page.get_by_role("link", name="Remove the filter Status is Failed or Canceled").click()
    expect(chips).to_have_count(2)
    expect(page.locator("#search")).to_have_value("metrics.loss > 0.8 and tags.team = nlp")
    expect(rows).to_have_count(1)

    page.reload()  # the URL is the state
    expect(chips).to_have_count(2)
    expect(rows).to_have_count(1)
    page.get_by_role("link", name="Clear filters").click()
    expect(chips).to_have_count(0)
    expect(rows).to_have_count(4)
    expect(page.locator("#search")).to_have_value("")
    assert errors == []


def test_an_impossible_range_is_refused_in_the_editor(studio: tuple[Page, list[str]], live_server: Any) -> None:
    page, errors = studio
    page.goto(f"{live_server.url}/w/default/runs/")
    _add_filter(page, "metrics")
    page.get_by_label("Metric name").fill("loss")
    page.get_by_label("Operator").select_option("between")
    page.get_by_label("Value", exact=True).fill("0.5")
    page.get_by_label("Up to").fill("0.1")
    page.get_by_role("button", name="Add this filter").click()
    expect(page.locator("#filter-editor [role=alert]")).to_have_text("The range ends (0.1) below where it starts (0.5)")
    expect(page.get_by_label("Up to")).to_have_value("0.1")  # what was typed is kept
    expect(page.locator(".filter-chip")).to_have_count(0)
    assert "?" not in page.url  # nothing was added to the state
    # Mended, it is added.
    page.get_by_label("Up to").fill("0.8")
    page.get_by_role("button", name="Add this filter").click()
    expect(page.locator(".filter-chip")).to_have_text([re.compile(r"loss\s+between\s+0.5 and 0.8")])
    expect(page.locator("#runs-table tbody tr")).to_have_count(1)  # resnet-50's 0.7
    assert [e for e in errors if "status of 400" not in e] == []  # the refusal is a 400; nothing else


def test_tag_values_are_suggested_for_the_key_typed(studio: tuple[Page, list[str]], live_server: Any) -> None:
    page, errors = studio
    page.goto(f"{live_server.url}/w/default/runs/")
    _add_filter(page, "tags")
    expect(page.locator("#filter-keys option")).to_have_count(1)
    page.get_by_label("Tag key").fill("team")
    expect(page.locator("#filter-values option")).to_have_count(2)
    assert page.locator("#filter-values option").evaluate_all("options => options.map(o => o.value)") == [
        "nlp",
        "vision",
    ]
    page.get_by_label("Value", exact=True).fill("vision")
    page.get_by_role("button", name="Add this filter").click()
    expect(page.locator("#search")).to_have_value("tags.team = vision")
    expect(page.locator("#runs-table tbody tr")).to_have_count(2)
    assert errors == []


def test_filters_work_without_javascript(runs: None, open_context: Any, alice: Any, live_server: Any) -> None:
    page = open_context(alice, java_script_enabled=False).new_page()
    page.goto(f"{live_server.url}/w/default/runs/")
    page.get_by_text("Add filter", exact=True).click()
    page.get_by_label("Field").select_option("status")
    page.get_by_role("button", name="Choose").click()
    page.get_by_label("Completed", exact=True).check()
    page.get_by_role("button", name="Add this filter").click()
    expect(page.locator(".filter-chip")).to_have_text([re.compile(r"Status\s+is\s+Completed")])
    expect(page.locator("#runs-table tbody tr")).to_have_count(2)
    page.get_by_role("link", name="Remove the filter Status is Completed").click()
    expect(page.locator("#runs-table tbody tr")).to_have_count(4)
