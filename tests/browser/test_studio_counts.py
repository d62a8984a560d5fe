"""In a real browser, a filtered table's count arrives after its page and fills itself in."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.conftest import make_run


def test_the_count_of_a_filtered_table_fills_itself_in(
    login_as: Any, errors: list[str], live_server: Any, workspace: Any, alice: Any
) -> None:
    for i in range(53):
        make_run(workspace, alice, "sweep", display_name=f"seed {i}", tags={"sweep": "lr"})
    page = login_as(alice)
    page.goto(f"{live_server.url}/w/default/runs/?cols=name")
    expect(page.locator("#run-count")).to_have_text("53")
    page.locator("#search").fill("tags.sweep = lr")
    expect(page.locator("#run-count")).to_have_text("53")  # "50+" first, then the count
    expect(page.locator(".pages")).to_contain_text("Page 1 of 2")
    assert errors == []
