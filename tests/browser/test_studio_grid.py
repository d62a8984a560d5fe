"""The All runs grid in a real browser (Debian's Chromium): it scrolls in its own pane, never the
page; the header and the select and name columns stay put; every row is one line; numbers and
times read short with the exact value kept; the density switch is state that survives a reload."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from runs.models import Run
from tests.conftest import make_run

COLUMNS = (
    "name,run_id,experiment,status,submitted_by,target,created,duration,description,tags,tags.team,"
    "properties.lr,properties.optimizer,metrics.loss,metrics.loss.min,metrics.accuracy,metrics.accuracy.max"
)


def seed_runs(workspace: Any, user: Any, count: int = 30) -> list[Run]:
    """``count`` runs with long names, tags, properties and metrics, made over the last weeks."""
    made = []
    for i in range(count):
        run = make_run(
            workspace,
            user,
            f"image-classification-{i % 3}",
            run_id=f"resnet-50-imagenet-sweep-{i:03d}-{'ab' * 6}",
            display_name=f"resnet50 baseline, lr warmup then cosine decay, mixed precision, seed {i}",
            description="A long description of what this run tried, " * 4,
            tags={"team": "vision-research", "dataset": "imagenet-1k", "priority": "high" if i % 2 else None},
            properties={"lr": f"{0.001 * (i + 1)!r}", "optimizer": "adamw with decoupled weight decay"},
        )
        run.log_metrics(
            [{"name": "loss", "value": 1 / (i + 1) + 0.123456789 * step} for step in range(3)]
            + [{"name": "accuracy", "value": 0.9123456789 - i / 1000}]
        )
        if i % 4:
            run.transition(Run.Status.COMPLETED if i % 3 else Run.Status.FAILED)
        ago = timezone.now() - dt.timedelta(hours=3 * i + 1)
        Run.objects.filter(pk=run.pk).update(created_at=ago, started_at=ago)
        made.append(run)
    return made


@pytest.fixture
def grid(login_as: Any, live_server: Any, workspace: Any, alice: Any) -> tuple[Page, list[str]]:
    seed_runs(workspace, alice)
    page = login_as(alice)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, errors


def _scroll_widths(page: Page) -> dict[str, float]:
    return page.evaluate(
        """() => { const pane = document.querySelector('.grid-pane');
          return {page: document.documentElement.scrollWidth, viewport: document.documentElement.clientWidth,
                  pane: pane.scrollWidth, paneBox: pane.clientWidth}; }"""
    )


@pytest.mark.parametrize("width", [1400, 800])
def test_the_grid_scrolls_in_its_pane_and_its_header_and_name_column_stay(
    grid: tuple[Page, list[str]], live_server: Any, width: int
) -> None:
    page, errors = grid
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/w/default/runs/?cols={COLUMNS}")
    expect(page.locator("#runs-table tbody tr")).to_have_count(30)
    widths = _scroll_widths(page)
    assert widths["page"] == widths["viewport"] == width  # the page does not scroll sideways
    assert widths["pane"] > widths["paneBox"]  # the pane does

    header = page.locator("#runs-table thead th.col-status")
    name = page.locator("#runs-table tbody tr").nth(5).locator("td.col-name")
    select = page.locator("#runs-table tbody tr").nth(5).locator("td.col-select")
    before = {"header": header.bounding_box(), "name": name.bounding_box(), "select": select.bounding_box()}
    page.locator(".grid-pane").evaluate("pane => { pane.scrollTop = 300; pane.scrollLeft = 900; }")
    page.wait_for_timeout(100)
    after = {"header": header.bounding_box(), "name": name.bounding_box(), "select": select.bounding_box()}
    assert after["header"]["y"] == before["header"]["y"]  # the header stayed at the top of the pane
    assert after["name"]["x"] == before["name"]["x"] and after["select"]["x"] == before["select"]["x"]
    assert after["name"]["y"] < before["name"]["y"]  # while the rows scrolled up
    # Nothing shows through the sticky cells: they have opaque backgrounds.
    backgrounds = page.evaluate(
        """() => [...document.querySelectorAll('#runs-table :is(thead th, td.col-name, td.col-select)')]
                 .map(cell => getComputedStyle(cell).backgroundColor)"""
    )
    assert all(b.startswith("rgb(") for b in backgrounds), set(backgrounds)
    assert errors == []


def test_every_row_is_one_line_and_long_values_keep_their_full_text(
    grid: tuple[Page, list[str]], live_server: Any
) -> None:
    page, errors = grid
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/w/default/runs/?cols=name")
    one_line = page.locator("#runs-table tbody tr").first.bounding_box()["height"]
    page.goto(f"{live_server.url}/w/default/runs/?cols={COLUMNS}")
    heights = page.evaluate("() => [...document.querySelectorAll('#runs-table tbody tr')].map(r => r.offsetHeight)")
    assert len(heights) == 30 and set(heights) == {round(one_line)}, heights
    name = page.locator("#runs-table tbody tr").first.locator("td.col-name")
    assert name.get_attribute("title").startswith("resnet50 baseline, lr warmup then cosine decay")
    assert name.evaluate("td => td.scrollWidth > td.clientWidth")  # cut with an ellipsis, not wrapped
    run_id = page.locator("#runs-table tbody tr").first.locator("td.col-run_id")
    assert run_id.evaluate("td => td.getClientRects().length") == 1
    loss = page.locator("#runs-table tbody tr").first.locator("td.col-metricsloss")
    expect(loss).to_have_text("1.247")
    assert loss.get_attribute("data-exact") == repr(1 + 0.123456789 * 2)
    assert errors == []


def test_a_copy_of_grid_cells_carries_the_exact_numbers(grid: tuple[Page, list[str]], live_server: Any) -> None:
    page, errors = grid
    page.goto(f"{live_server.url}/w/default/runs/?cols=name,metrics.loss")
    copied = page.evaluate(
        """() => { const rows = document.querySelectorAll('#runs-table tbody tr');
          const range = document.createRange();
          range.setStartBefore(rows[0].cells[1]); range.setEndAfter(rows[1].cells[2]);
          getSelection().removeAllRanges(); getSelection().addRange(range);
          const init = {clipboardData: new DataTransfer(), bubbles: true, cancelable: true};
          const event = new ClipboardEvent('copy', init);
          document.activeElement.dispatchEvent(event);
          return event.clipboardData.getData('text/plain'); }"""
    )
    name = "resnet50 baseline, lr warmup then cosine decay, mixed precision, seed"
    assert copied == f"{name} 0\t{1 + 0.123456789 * 2!r}\n{name} 1\t{0.5 + 0.123456789 * 2!r}"
    assert page.locator("#runs-table tbody tr").first.locator("td.col-metricsloss").text_content() == "1.247"
    assert errors == []


def test_a_running_runs_duration_ticks(grid: tuple[Page, list[str]], live_server: Any) -> None:
    page, errors = grid
    page.goto(f"{live_server.url}/w/default/runs/?cols=name,status,duration")
    ticking = page.locator("#runs-table tbody tr").first.locator("td.col-duration [data-started]")
    first = ticking.text_content()
    expect(ticking).not_to_have_text(first, timeout=3000)
    assert first.startswith("1:00:") or first.startswith("0:59:")  # started an hour ago
    assert errors == []


def test_the_density_switch_is_state_that_survives_a_reload(grid: tuple[Page, list[str]], live_server: Any) -> None:
    page, errors = grid
    page.goto(f"{live_server.url}/w/default/runs/?cols=name,status")
    rows = page.locator("#runs-table tbody tr")
    comfortable = rows.first.bounding_box()["height"]
    page.get_by_role("link", name="Compact").click()
    expect(page.locator("table.runs")).to_have_class("grid runs density-compact")
    assert "density=compact" in page.url
    compact = rows.first.bounding_box()["height"]
    assert compact < comfortable
    page.locator("#search").fill("status = Failed")  # the state form keeps the density
    expect(rows).to_have_count(7)
    assert "density=compact" in page.url
    page.reload()
    expect(page.locator("table.runs")).to_have_class("grid runs density-compact")
    assert rows.first.bounding_box()["height"] == compact
    page.get_by_role("link", name="Comfortable").click()
    expect(page.locator("table.runs")).to_have_class("grid runs")
    assert "density=comfortable" in page.url
    assert errors == []


def test_a_column_is_resized_by_dragging_its_header_edge_and_keeps_its_width(
    grid: tuple[Page, list[str]], live_server: Any
) -> None:
    page, errors = grid
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/w/default/runs/?cols=name,run_id,status")
    header = page.locator("#runs-table thead th.col-run_id")
    cell = page.locator("#runs-table tbody tr").first.locator("td.col-run_id")
    before = header.bounding_box()
    edge = header.locator(".col-resizer").bounding_box()
    page.mouse.move(edge["x"] + edge["width"] / 2, edge["y"] + edge["height"] / 2)
    page.mouse.down()
    page.mouse.move(edge["x"] - (before["width"] - 150), edge["y"] + 5, steps=5)
    page.mouse.up()
    expect(page).to_have_url(re.compile(r"widths=run_id%3A\d+"))
    width = int(re.search(r"widths=run_id%3A(\d+)", page.url).group(1))
    assert abs(width - 150) <= 5  # where the pointer went, give or take the handle
    assert abs(cell.bounding_box()["width"] - width) <= 1  # the cells follow their header
    assert cell.evaluate("td => td.scrollWidth > td.clientWidth")  # the id is cut with an ellipsis
    page.reload()
    assert abs(header.bounding_box()["width"] - width) <= 1
    assert errors == []


def test_a_pinned_column_stays_put_when_the_pane_scrolls(grid: tuple[Page, list[str]], live_server: Any) -> None:
    page, errors = grid
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/w/default/runs/?cols={COLUMNS}")
    loss = page.locator("#runs-table thead th.col-metricsloss")
    loss.hover()
    loss.get_by_role("link", name="Pin loss").click()
    expect(page).to_have_url(re.compile(r"pin=metrics\.loss"))
    headers = page.locator("#runs-table thead th")
    expect(headers.nth(1)).to_have_class(re.compile(r"\bcol-name\b.*\bpinned\b"))
    expect(headers.nth(2)).to_have_class(re.compile(r"\bcol-metricsloss\b.*\bpinned\b"))  # beside the name
    loss = page.locator("#runs-table thead th.col-metricsloss")
    first_cell = page.locator("#runs-table tbody tr").first.locator("td.col-metricsloss")
    run_id = page.locator("#runs-table thead th.col-run_id")
    before = (loss.bounding_box()["x"], first_cell.bounding_box()["x"], run_id.bounding_box()["x"])
    page.locator(".grid-pane").evaluate("pane => { pane.scrollLeft = 900; }")
    page.wait_for_timeout(100)
    after = (loss.bounding_box()["x"], first_cell.bounding_box()["x"], run_id.bounding_box()["x"])
    assert after[:2] == before[:2]  # the pinned header and its cells stay put
    assert after[2] < before[2] - 500  # an unpinned column scrolls away
    page.reload()
    expect(page.locator("#runs-table thead th").nth(2)).to_have_class(re.compile(r"\bpinned\b"))
    page.locator("#runs-table thead th.col-metricsloss").hover()
    page.get_by_role("link", name="Unpin loss").first.click()
    expect(page.locator("#runs-table thead th.col-metricsloss")).not_to_have_class(re.compile(r"\bpinned\b"))
    assert errors == []


def test_a_column_is_moved_by_dragging_its_header(grid: tuple[Page, list[str]], live_server: Any) -> None:
    page, errors = grid
    page.goto(f"{live_server.url}/w/default/runs/?cols=name,run_id,status,experiment")
    experiment = page.locator("#runs-table thead th.col-experiment")
    experiment.drag_to(page.locator("#runs-table thead th.col-run_id"), target_position={"x": 4, "y": 8})
    expect(page).to_have_url(re.compile(r"cols=name%2Cexperiment%2Crun_id%2Cstatus"))
    expect(page.locator("#runs-table thead th")).to_have_text(
        ["Compare", "Display name", "Experiment", "Run ID", "Status"]
    )
    page.reload()
    expect(page.locator("#runs-table thead th")).to_have_text(
        ["Compare", "Display name", "Experiment", "Run ID", "Status"]
    )
    assert errors == []


def test_the_grid_from_the_keyboard(grid: tuple[Page, list[str]], live_server: Any) -> None:
    page, errors = grid
    page.goto(f"{live_server.url}/w/default/runs/?cols=name,status&sort=name")
    rows = page.locator("#runs-table tbody tr")
    page.keyboard.press("/")
    expect(page.locator("#search")).to_be_focused()
    page.keyboard.press("j")  # typed into the box, not a move
    expect(page.locator("#search")).to_have_value("j")
    expect(rows).to_have_text(["No runs match."])  # searched for
    page.locator("#search").fill("")
    expect(rows).to_have_count(30)
    page.keyboard.press("Escape")
    expect(page.locator("#search")).not_to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(re.compile(r"\brow-cursor\b"))
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_class(re.compile(r"\brow-cursor\b"))
    expect(page.locator("tr.row-cursor")).to_have_count(1)
    page.keyboard.press("x")
    expect(rows.nth(0).locator("td.col-select input")).to_be_checked()
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()
    name = rows.nth(0).locator("td.col-name a").text_content()
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text(name, timeout=15_000)  # a run page's first, cold view
    assert "/runs/resnet-50-imagenet-sweep-" in page.url
    assert errors == []


def test_a_duration_stops_ticking_when_its_run_ends(grid: tuple[Page, list[str]], live_server: Any) -> None:
    page, errors = grid
    page.goto(f"{live_server.url}/w/default/runs/?cols=name,duration&sort=name")  # no status column
    running = Run.objects.filter(status=Run.Status.RUNNING).order_by("display_name").first()
    cell = page.locator(f"#duration-{running.pk}")
    expect(cell).to_have_attribute("data-started", re.compile(".+"))
    running.transition(Run.Status.COMPLETED)
    # The table's poll (every 5 s) brings the final duration, which ticks no more.
    expect(cell).not_to_have_attribute("data-started", re.compile(".*"), timeout=12_000)
    final = cell.text_content()
    page.wait_for_timeout(1500)
    assert cell.text_content() == final
    assert errors == []
