"""The design system in a real browser: dark mode follows the OS until the user picks a theme, the top bar's
toggle works with and without JavaScript, and no page logs a console error or spills sideways."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from runs.models import Run
from studio.models import Preference
from tests.conftest import make_run

DARK_PAGE = "rgb(20, 23, 28)"  # --surface in static/studio.css
LIGHT_PAGE = "rgb(255, 255, 255)"


def page_background(page: Page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


@pytest.mark.parametrize(
    ("scheme", "theme", "background"), [("dark", "dark", DARK_PAGE), ("light", "light", LIGHT_PAGE)]
)
def test_the_theme_follows_the_os_until_the_user_picks_one(
    open_context: Any, live_server: Any, workspace: Any, alice: Any, scheme: str, theme: str, background: str
) -> None:
    page = open_context(alice, color_scheme=scheme).new_page()
    page.goto(live_server.url + "/w/default/experiments/")
    expect(page.locator("html")).to_have_attribute("data-bs-theme", theme)
    assert page_background(page) == background

    # the OS changes while the page is open (choice: auto): the page follows
    other = "light" if scheme == "dark" else "dark"
    page.emulate_media(color_scheme=other)
    expect(page.locator("html")).to_have_attribute("data-bs-theme", other)


def test_the_toggle_wins_over_the_os_and_is_remembered(
    open_context: Any, live_server: Any, workspace: Any, alice: Any
) -> None:
    page = open_context(alice, color_scheme="dark").new_page()
    page.goto(live_server.url + "/w/default/experiments/")
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "dark")

    page.get_by_role("button", name="Light").click()  # htmx: applied in place, no reload
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "light")
    expect(page.get_by_role("button", name="Light")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert page_background(page) == LIGHT_PAGE
    assert Preference.objects.get(user=alice).theme == "light"

    page.reload()
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "light")
    page.emulate_media(color_scheme="light")
    page.emulate_media(color_scheme="dark")  # a chosen theme no longer follows the OS
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "light")

    page.get_by_role("button", name="Auto").click()
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "dark")
    assert Preference.objects.get(user=alice).theme == "auto"


def test_the_toggle_works_without_javascript(open_context: Any, live_server: Any, workspace: Any, alice: Any) -> None:
    page = open_context(alice, java_script_enabled=False).new_page()
    page.goto(live_server.url + "/w/default/members/")

    page.get_by_role("button", name="Dark").click()  # a plain form POST, redirected back here

    expect(page.locator("html")).to_have_attribute("data-bs-theme", "dark")
    assert page.url == live_server.url + "/w/default/members/"
    assert page_background(page) == DARK_PAGE


def test_without_javascript_auto_still_follows_the_os(
    open_context: Any, live_server: Any, workspace: Any, alice: Any
) -> None:
    page = open_context(alice, java_script_enabled=False, color_scheme="dark").new_page()
    page.goto(live_server.url + "/w/default/experiments/")
    assert page_background(page) == DARK_PAGE  # the tokens' light-dark() follow color-scheme, not a script
    page.emulate_media(color_scheme="light")
    assert page_background(page) == LIGHT_PAGE
    page.get_by_role("button", name="Light").click()  # a chosen theme wins over the OS, script or not
    page.emulate_media(color_scheme="dark")
    assert page_background(page) == LIGHT_PAGE


def test_the_login_page_follows_the_os(open_context: Any, live_server: Any) -> None:
    page = open_context(None, color_scheme="dark").new_page()
    page.goto(live_server.url + "/accounts/login/")
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "dark")
    expect(page.get_by_role("button", name="Dark")).to_have_count(0)  # nobody to remember it for


@pytest.fixture
def studio_pages(workspace: Any, alice: Any) -> list[str]:
    """A workspace with runs, metrics and a rule: every page of the studio, with something on it."""
    first = make_run(workspace, alice, "vision", display_name="resnet baseline", tags={"team": "vision"})
    first.log_metrics([{"name": "loss", "value": v, "step": i} for i, v in enumerate((0.9, 0.5, 0.3))])
    first.log_metrics([{"name": "accuracy", "value": v, "step": i} for i, v in enumerate((0.5, 0.7, 0.8))])
    first.transition(Run.Status.COMPLETED)
    second = make_run(workspace, alice, "vision", display_name="resnet wide", properties={"lr": "0.01"})
    second.log_metrics([{"name": "loss", "value": v, "step": i} for i, v in enumerate((1.0, 0.7))])
    second.fail(message="out of memory")
    run_page = f"/w/default/runs/{first.run_id}/"
    return [
        "/w/default/runs/",
        # filter chips, a pinned column, 17 columns
        "/w/default/runs/?q=status in (Completed, Running) and metrics.loss < 1 and tags.team ~ vis&pin=status&cols="
        "name,run_id,experiment,status,submitted_by,target,created,duration,description,tags,tags.team,properties.lr,"
        "properties.optimizer,metrics.loss,metrics.loss.min,metrics.accuracy,metrics.accuracy.max",
        "/w/default/runs/?filter=metrics",  # the "Add filter" editor open (as without JavaScript)
        # grouped by two keys with statistics and charts, a pinned run as the baseline
        f"/w/default/runs/?group=experiment,tags.team&cols=name,status,metrics.loss,metrics.accuracy.max"
        f"&pinned_runs={first.run_id}&baseline={first.run_id}",
        f"/w/default/runs/?archived=1&pinned_runs={first.run_id}&baseline={first.run_id}&cols=name,metrics.loss",
        "/w/default/runs/bulk/?action=purge&all_matching=",
        "/w/default/experiments/",
        "/w/default/experiments/vision/",
        run_page,
        run_page + "metrics/",
        run_page + "children/",
        run_page + "outputs/",
        run_page + "snapshot/",
        run_page + "activity/",
        f"/w/default/compare/?runs={first.run_id},{second.run_id}",
        "/w/default/members/",
        "/w/default/notifications/",
        "/tokens/",
    ]


@pytest.mark.parametrize(("scheme", "width"), [("light", 1400), ("dark", 800)])
def test_no_page_logs_an_error_or_spills_sideways(
    open_context: Any, live_server: Any, alice: Any, studio_pages: list[str], scheme: str, width: int
) -> None:
    page = open_context(alice, color_scheme=scheme, viewport={"width": width, "height": 900}).new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    for path in studio_pages:
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        expect(page.locator("html")).to_have_attribute("data-bs-theme", scheme)
        assert errors == [], f"{path}: {errors}"
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")  # the grid's pane scrolls
        assert overflow <= 0, f"{path} is {overflow} px wider than the {width} px window"
        # the top bar stays one line from 800 px up
        assert page.locator("header.studio-top").bounding_box()["height"] < 60, path
