"""The Metrics tab in a real browser: an image metric is an image whose step slider walks its steps,
a row metric is a table sorted by a click on a header, and charts come with their controls."""

from __future__ import annotations

import io
from typing import Any

from playwright.sync_api import expect

from tests.conftest import make_run
from tests.test_studio_metrics_tab import PNG


def test_images_tables_and_charts(
    login_as: Any, errors: list[str], live_server: Any, workspace: Any, alice: Any
) -> None:
    run = make_run(workspace, alice, "metrics", display_name="all kinds")
    run.log_metrics([{"name": "loss", "value": 1.0 / (step + 1), "step": step} for step in range(20)])
    run.log_metrics(
        [{"name": "epochs", "kind": "row", "value": {"epoch": e, "loss": [0.3, 0.9, 0.1][e]}} for e in range(3)]
    )
    for step in range(3):
        run.log_metrics([{"name": "tick", "value": step, "step": step}])
        run.log_image("roc", io.BytesIO(PNG))
    page = login_as(alice)
    page.goto(f"{live_server.url}/w/default/runs/{run.run_id}/metrics/")
    image = page.locator("figure.metric-image > img")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")  # an image, not its path
    image.click()  # full screen, then closed with Esc
    expect(page.locator("dialog.image-zoom img")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("dialog.image-zoom")).not_to_be_visible()
    slider = page.get_by_label("Step of roc")
    slider.fill("0")
    expect(image).to_have_attribute("src", f"/api/v1/runs/{run.run_id}/files/outputs/roc.png")
    table = page.locator(".metric-table table")
    # The loss column, wherever it is (PostgreSQL's jsonb keeps a row's keys in an order of its own).
    loss = table.locator("th").all_inner_texts().index("loss")
    table.get_by_role("button", name="loss").click()
    expect(table.locator("tbody tr").first.locator("td").nth(loss)).to_have_text("0.1")
    table.get_by_role("button", name="loss").click()
    expect(table.locator("tbody tr").first.locator("td").nth(loss)).to_have_text("0.9")
    page.locator(".metric-table select").select_option(label="loss")
    expect(page.locator(".column-chart canvas").first).to_be_visible()
    loss_chart = page.locator(".chart-grid .chart").first
    expect(loss_chart.get_by_label("Log y")).to_be_visible()  # the chart's controls
    # Tabs swapped in by htmx: the live block's poll follows the tab shown (no facts sent to a page without them).
    for tab in ("Overview", "Outputs"):
        page.locator("nav.tabs").get_by_role("link", name=tab).click()
        expect(page.locator("#tab-state input[name=tab]")).to_have_value(tab.lower())
        page.wait_for_timeout(2500)  # a poll
    assert errors == []


def test_the_system_tab_of_a_submitted_run(
    login_as: Any, errors: list[str], live_server: Any, ws: Any, alice: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    from runs import sdk

    monkeypatch.delenv("STUDIO_SYSTEM_METRICS", raising=False)  # tests/conftest.py turns sampling off
    monkeypatch.setenv("STUDIO_SYSTEM_METRICS_INTERVAL", "0.5")  # the runner inherits it
    (tmp_path / "train.py").write_text("import time\nend = time.time() + 3\nwhile time.time() < end:\n    pass\n")
    run = sdk.Experiment(ws, "system").submit(sdk.ScriptRunConfig(source_directory=str(tmp_path), script="train.py"))
    assert run.wait_for_completion()["status"] == "Completed"
    page = login_as(alice)
    page.goto(f"{live_server.url}/w/default/runs/{run.id}/system/")
    charts = page.locator(".system-tab .chart")
    expect(charts.first.locator("canvas").first).to_be_visible()
    titles = charts.locator(".u-title").all_inner_texts()
    assert titles[:2] == ["system/cpu_percent", "system/memory_rss_mb"]  # the run's own first
    page.goto(f"{live_server.url}/w/default/runs/{run.id}/metrics/")
    expect(page.locator(".metrics-tab .chart")).to_have_count(0)  # not charted among its own metrics
    expect(page.locator(".metrics-tab table")).to_contain_text("system/cpu_percent")  # but listed
    assert errors == []


def test_charts_take_the_themes_colours(open_context: Any, live_server: Any, workspace: Any, alice: Any) -> None:
    """The tokens are light-dark() pairs: a chart's canvas gets the colour they resolve to, per theme."""
    run = make_run(workspace, alice, "metrics", display_name="colours")
    run.log_metrics([{"name": "loss", "value": 1.0 / (step + 1), "step": step} for step in range(5)])
    strokes = (
        "el => { const u = window.studioCharts.get(el); return [u.axes[0].stroke(u, 0), u.axes[0].grid.stroke(u, 0)]; }"
    )
    for scheme, ink, grid in (("light", "rgb(29, 35, 48)", "rgba(29, 35, 48, 0.08)"),
                              ("dark", "rgb(227, 231, 238)", "rgba(227, 231, 238, 0.1)")):  # fmt: skip
        page = open_context(alice, color_scheme=scheme).new_page()
        page.goto(f"{live_server.url}/w/default/runs/{run.run_id}/metrics/")
        chart = page.locator("[data-chart]").first
        expect(chart.locator("canvas").first).to_be_visible()
        assert chart.evaluate(strokes) == [ink, grid]
