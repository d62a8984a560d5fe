"""Charts with bands (a group's min to max around its mean line, static/charts.js) in real Chromium:
the demo page draws them without a console error, a band paints the area between its edges, hides
and shows with its series from the legend, survives a theme change, and a malformed band is an error
shown in the element."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

STATIC = Path(__file__).resolve().parents[2] / "static"
# The canvas's painted pixels (alpha > 0), once uPlot has drawn (it draws in a microtask).
PAINTED = """async (el) => {
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  const canvas = el.querySelector("canvas");
  if (!canvas) return -1;
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
  return painted;
}"""
# Renders a chart of the given spec into a new element of the page, returned.
RENDER = """(spec) => {
  const el = document.createElement("div");
  el.setAttribute("data-chart", "");
  el.style.width = "700px";
  const script = document.createElement("script");
  script.type = "application/json";
  script.textContent = JSON.stringify(spec);
  el.appendChild(script);
  document.body.appendChild(el);
  window.studioCharts.render(el);
  return el;
}"""
STEPS = list(range(0, 100, 5))
SPEC: dict[str, Any] = {
    "title": "loss over steps",
    "xLabel": "step",
    "series": [
        {
            "label": "lr=0.01",
            "x": STEPS,
            "y": [2 - i * 0.05 for i in range(len(STEPS))],
            "band": {
                "lo": [1.5 - i * 0.05 for i in range(len(STEPS))],
                "hi": [2.5 - i * 0.05 if i != 7 else None for i in range(len(STEPS))],  # a gap at step 35
            },
            "runs": 3,
        },
        {"label": "lr=0.1", "x": STEPS, "y": [1.0] * len(STEPS)},  # no band: a line as before
    ],
}


def _without_band(spec: dict[str, Any]) -> dict[str, Any]:
    return {**spec, "series": [{k: v for k, v in s.items() if k != "band"} for s in spec["series"]]}


@pytest.fixture
def harness(page: Page) -> Page:
    """A blank page with uPlot and charts.js, as the studio loads them."""
    page.set_content("<!doctype html><html><head><meta charset='utf-8'></head><body></body></html>")
    page.add_style_tag(path=str(STATIC / "vendor" / "uplot" / "uPlot.min.css"))
    page.add_script_tag(path=str(STATIC / "vendor" / "uplot" / "uPlot.iife.min.js"))
    page.add_script_tag(path=str(STATIC / "charts.js"))
    return page


def test_the_demo_page_draws_every_chart_and_the_band_without_errors(page: Page, errors: list[str]) -> None:
    page.goto((STATIC / "charts-demo.html").as_uri())
    charts = page.locator("[data-chart]")
    assert charts.count() == 6  # three more for issue 14's scatter and controls (test_chart_controls.py)
    assert page.locator(".chart-error").count() == 0
    for i in range(3):
        assert page.evaluate(PAINTED, charts.nth(i).element_handle()) > 1000
    # The band chart's legend: its three groups, not the bands' six edges; the x axis' row only
    # while hovering (static/charts.js shows values only then).
    rows = page.locator("#band-demo .u-legend tr.u-series")
    assert rows.count() == 1 + 3 + 6
    visible = [rows.nth(i).locator(".u-label").inner_text() for i in range(rows.count()) if rows.nth(i).is_visible()]
    assert visible == ["lr=0.1 · 5 runs", "lr=0.01 · 5 runs", "lr=0.001 · 3 runs"]
    assert page.locator("#band-demo .u-cursor-pt:visible").count() <= 3
    assert errors == []


def test_a_band_fills_between_its_edges_and_follows_its_series(harness: Page, errors: list[str]) -> None:
    page = harness
    banded = page.evaluate_handle(RENDER, SPEC)
    plain = page.evaluate_handle(RENDER, _without_band(SPEC))
    with_band, without = page.evaluate(PAINTED, banded), page.evaluate(PAINTED, plain)
    assert without > 0
    assert with_band > without + 10_000  # the band: an area, not a line's few pixels
    assert page.evaluate("(el) => el.querySelector('.chart-error')", banded) is None

    # Hidden from the legend, the series takes its band with it; shown again, both come back.
    row = page.locator("[data-chart]").first.locator(".u-legend tr.u-series").nth(1)
    row.locator("th").click()
    assert page.evaluate(PAINTED, banded) < without
    row.locator("th").click()
    assert page.evaluate(PAINTED, banded) == with_band

    # A theme change redraws (static/theme.js's event): the band is drawn again, nothing breaks.
    page.evaluate("document.dispatchEvent(new Event('studio:themechange'))")
    assert page.evaluate(PAINTED, banded) == with_band
    assert errors == []


def test_a_malformed_band_is_an_error_shown_in_the_element(harness: Page) -> None:
    spec = json.loads(json.dumps(SPEC))
    spec["series"][0]["band"]["lo"].pop()
    el = harness.evaluate_handle(RENDER, spec)
    message = harness.evaluate("(el) => el.querySelector('.chart-error').textContent", el)
    assert message == 'Chart unavailable: series 0\'s "band" needs "lo" and "hi" lists as long as "x"'
