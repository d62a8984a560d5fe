"""Compare in a real browser: every run is a point in the scatter (two sharing a property value
included), "Only differences" hides the rows that are alike, the parallel coordinates chart is
brushed to keep runs in a range, and 30 runs scroll sideways inside the table, its first column kept."""

from __future__ import annotations

import io
from typing import Any

from playwright.sync_api import expect

from tests.conftest import make_run
from tests.test_studio_metrics_tab import PNG


def test_compare_keeps_every_run_and_filters_what_is_alike(
    login_as: Any, errors: list[str], live_server: Any, workspace: Any, alice: Any
) -> None:
    ids = []
    for i, lr in enumerate(["0.1", "0.1", "0.01", "0.001"] + ["0.5"] * 26):
        run = make_run(
            workspace, alice, "sweep", display_name=f"seed {i}", properties={"lr": lr}, tags={"team": "vision"}
        )
        run.log_metrics([{"name": "loss", "value": 0.1 * (i + 1), "step": s} for s in range(3)])
        ids.append(run.run_id)
    page = login_as(alice)
    page.goto(f"{live_server.url}/w/default/compare/?runs={','.join(ids[:4])}")
    scatter = page.locator("#compare-property")
    expect(scatter.locator("canvas").first).to_be_visible()
    points = scatter.evaluate("el => window.studioCharts.get(el).data[1].filter(v => v != null).length")
    assert points == 4  # two runs share lr 0.1: both are points
    expect(page.locator("table.compare th[scope=row]", has_text="tag team")).to_have_count(1)
    page.get_by_role("link", name="Only differences").click()
    expect(page.locator("table.compare th[scope=row]", has_text="tag team")).to_have_count(0)
    expect(page.locator("table.compare th[scope=row]", has_text="property lr")).to_have_count(1)
    # Parallel coordinates: drag along the loss axis's top half keeps the runs with a high loss.
    box = page.locator("[data-parallel]")
    band = box.locator("rect.band").nth(1)
    area = band.bounding_box()
    page.mouse.move(area["x"] + area["width"] / 2, area["y"] + 2)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] / 2, area["y"] + area["height"] * 0.4, steps=5)
    page.mouse.up()
    expect(box).to_have_attribute("data-kept", "2")
    expect(box.locator(".parallel-said")).to_contain_text("2 of 4 runs in the brushed ranges")
    # 30 runs: the table scrolls in its pane, the page does not.
    page.goto(f"{live_server.url}/w/default/compare/?runs={','.join(ids)}")
    pane = page.locator(".compare-scroll")
    assert pane.evaluate("el => el.scrollWidth > el.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    pane.evaluate("el => { el.scrollLeft = el.scrollWidth; }")
    label = page.locator("table.compare th[scope=row]").first
    assert (
        label.evaluate("el => el.getBoundingClientRect().left")
        >= pane.evaluate("el => el.getBoundingClientRect().left") - 1
    )
    assert errors == []


def test_images_of_runs_side_by_side_at_one_step(
    login_as: Any, errors: list[str], live_server: Any, workspace: Any, alice: Any
) -> None:
    runs = [make_run(workspace, alice, "gan", display_name=f"gan {i}") for i in range(3)]
    for _step in range(3):
        for run in runs:
            run.log_image("samples", io.BytesIO(PNG))
    page = login_as(alice)
    page.goto(f"{live_server.url}/w/default/compare/?runs={','.join(r.run_id for r in runs)}")
    images = page.locator("[data-image-compare] figure img")
    expect(images).to_have_count(3)
    # Each image loaded (on a busy machine they may still be on their way when they are counted).
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-image-compare] figure img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    page.get_by_label("Step").fill("0")
    expect(page.locator("[data-image-compare] .image-step")).to_have_text("0")
    expect(images.nth(1)).to_have_attribute("src", f"/api/v1/runs/{runs[1].run_id}/files/outputs/samples.png")
    assert errors == []
