"""A long log in a real browser: it opens at its end, and scrolling up brings the parts before it by
themselves, keeping in view the lines the reader was on, back to the log's first line."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.conftest import make_run
from tests.test_studio_run_logs import write_log


def test_scrolling_up_loads_the_log_back_to_its_start(
    login_as: Any, errors: list[str], live_server: Any, workspace: Any, alice: Any
) -> None:
    run = make_run(workspace, alice, "chatty", display_name="chatty")
    write_log(run, 25_000)  # about 2.6 MB: three parts of 1 MiB
    page = login_as(alice)
    page.goto(f"{live_server.url}/w/default/runs/{run.run_id}/outputs/")
    log = page.locator("#file-text")
    expect(log.locator(".log-part")).to_have_count(1)
    for parts in (2, 3):
        log.evaluate("el => { el.scrollTop = 0; }")
        expect(log.locator(".log-part")).to_have_count(parts)
        assert log.evaluate("el => el.scrollTop") > 1000  # the lines read stay in view, not the new top
    expect(log.locator(".earlier")).to_have_count(0)  # the whole log is here
    assert log.locator(".ln").first.inner_text().startswith("line 0000000 ")
    assert log.locator(".ln").count() == 25_000
    assert errors == []


def test_a_swap_landing_before_the_scroll_event_leaves_the_reader_where_they_scrolled(
    login_as: Any, errors: list[str], live_server: Any, workspace: Any, alice: Any
) -> None:
    """The live poll's answer can be swapped in between the reader's scroll and its scroll event
    (one frame, longer on a busy machine): following must not pull them back to the end then."""
    run = make_run(workspace, alice, "chatty", display_name="chatty")
    write_log(run, 25_000)
    page = login_as(alice)
    page.goto(f"{live_server.url}/w/default/runs/{run.run_id}/outputs/")
    log = page.locator("#file-text")
    expect(page.locator("#log-follow")).to_be_checked()
    log.evaluate(
        """el => {
            el.scrollTop = 0;
            document.body.dispatchEvent(new CustomEvent("htmx:beforeSwap", {detail: {}}));
            document.body.dispatchEvent(new CustomEvent("htmx:afterSwap", {detail: {}}));
        }"""
    )
    expect(log.locator(".log-part")).to_have_count(2)
    expect(page.locator("#log-follow")).not_to_be_checked()
    assert errors == []
