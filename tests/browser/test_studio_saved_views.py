"""Saved views in a real browser: every action round-trips through a reload, and a view whose state
does not hold is refused when it is saved."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from runs.models import Run
from studio.models import SavedView
from tests.conftest import make_run


def _runs(workspace: Any, alice: Any) -> None:
    make_run(workspace, alice, "vision", display_name="vit run", tags={"team": "vision"})
    make_run(workspace, alice, "nlp", display_name="bert run", tags={"team": "nlp"}).transition(Run.Status.FAILED)
    make_run(workspace, alice, "nlp", display_name="gpt run").transition(Run.Status.CANCELED)


def _views(page: Page, menu: str = "view-more") -> None:
    """Open one of the views bar's menus (a <details>: "view-picker", "save-menu", "view-more"), if it is closed."""
    details = page.locator(f"section.views details.{menu}")
    if details.get_attribute("open") is None:
        details.locator("summary").click()


def test_every_view_action_round_trips_after_a_reload(
    login_as: Any, live_server: Any, workspace: Any, alice: Any
) -> None:
    _runs(workspace, alice)
    page = login_as(alice)
    page.goto(live_server.url + "/w/default/runs/?cols=name,status,experiment")
    rows = page.locator("#runs-table tbody tr")
    expect(rows).to_have_count(3)
    # Two statuses ticked in "Add filter", then saved as a view.
    page.get_by_text("Add filter", exact=True).click()
    page.get_by_label("Field").select_option("status")
    page.get_by_label("Failed", exact=True).check()
    page.get_by_label("Canceled", exact=True).check()
    page.get_by_role("button", name="Add this filter").click()
    expect(rows).to_have_count(2)
    expect(page.locator(".filter-chip")).to_have_text(re.compile(r"Status\s+is\s+Failed or Canceled"))
    _views(page, "save-menu")
    page.get_by_label("View name").fill("Broken runs")
    page.get_by_role("button", name="Save as a new view").click()
    expect(page.get_by_role("status")).to_have_text("Saved the view “Broken runs”.")
    view = SavedView.objects.get(name="Broken runs")
    assert view.params == {"q": "status in (Failed, Canceled)", "cols": "name,status,experiment"}

    page.reload()
    expect(page).to_have_title("Broken runs · All runs · default")
    expect(page.locator("h1")).to_contain_text("Broken runs")
    expect(rows).to_have_count(2)
    expect(page.locator(".filter-chip .chip-value")).to_have_text(["Failed or Canceled"])
    expect(page.locator("#search")).to_have_value("status in (Failed, Canceled)")

    # Update: a word typed after the filters narrows the view's table further, and the view takes it.
    page.locator("#search").press("End")
    page.locator("#search").press_sequentially(" bert")
    expect(rows).to_have_count(1)
    expect(page.locator(".filter-chip .chip-value")).to_have_text(["Failed or Canceled", "bert"])
    expect(page.locator(".view-status .badge")).to_have_text("Modified")  # what is shown is not the view as saved
    page.get_by_role("button", name="Update the view to what is shown").click()
    expect(page.get_by_role("status")).to_have_text("Updated the view “Broken runs” to what is shown.")
    page.goto(f"{live_server.url}/w/default/runs/?view={view.pk}")
    expect(page.locator("#search")).to_have_value("status in (Failed, Canceled) bert")
    expect(rows).to_have_count(1)

    _views(page)
    page.get_by_label("New name").fill("Bert failures")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("status")).to_have_text("Renamed the view “Broken runs” to “Bert failures”.")
    page.reload()
    expect(page).to_have_title("Bert failures · All runs · default")

    _views(page)
    page.get_by_role("button", name="Share with the workspace").click()
    expect(page.get_by_role("status")).to_have_text("Shared the view “Bert failures” with the workspace.")
    page.reload()
    _views(page)
    expect(page.locator(".view-changed")).to_contain_text("shared by alice")
    page.get_by_role("button", name="Make it private").click()
    expect(page.get_by_role("status")).to_have_text("The view “Bert failures” is private now: only you see it.")
    page.reload()
    _views(page)
    expect(page.locator(".view-changed")).to_contain_text("private")

    page.get_by_role("button", name="Open this view by default").click()
    expect(page.get_by_role("status")).to_have_text("“Bert failures” now opens when you open All runs.")
    page.goto(live_server.url + "/w/default/runs/")
    expect(page.locator("h1")).to_contain_text("Bert failures")
    expect(rows).to_have_count(1)
    _views(page, "view-picker")
    page.get_by_role("link", name="All runs, unfiltered").click()
    expect(page.locator("h1")).to_have_text("All runs")
    expect(rows).to_have_count(3)

    page.goto(f"{live_server.url}/w/default/runs/?view={view.pk}")
    _views(page)
    page.once("dialog", lambda dialog: dialog.accept())  # hx-confirm
    page.get_by_role("button", name="Delete view").click()
    expect(page.get_by_role("status")).to_have_text("Deleted the view “Bert failures”.")
    response = page.goto(f"{live_server.url}/w/default/runs/?view={view.pk}")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("This view is not here")
    page.get_by_role("link", name="Go to All runs").click()
    expect(rows).to_have_count(3)


def test_a_bad_view_is_refused_at_save(login_as: Any, live_server: Any, workspace: Any, alice: Any) -> None:
    _runs(workspace, alice)
    page = login_as(alice)
    page.goto(live_server.url + "/w/default/runs/?q=run")
    _views(page, "save-menu")
    # A form from before a column was removed (or edited by hand): its state names a column that is not.
    page.locator('form.save-view input[name="q"]').evaluate("input => input.value = 'tags.team = (vision'")
    page.get_by_label("View name").fill("Stale")
    page.get_by_role("button", name="Save as a new view").click()
    expect(page.locator("#runs-table .error")).to_contain_text("The view “Stale” was not saved: q: ")
    expect(page.get_by_label("View name")).to_have_value("Stale")
    assert not SavedView.objects.exists()
