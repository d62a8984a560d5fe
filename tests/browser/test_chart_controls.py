"""Charts in real Chromium (static/charts.js), issue 14: a scatter keeps every point, duplicate x values
included, and names the hovered one; a line chart's opt-in toolbar ("controls": true) smooths (the raw
line kept faint), switches the y axis to log (not for values <= 0) and the x axis to wall or relative
time (series with "t"), resets a zoom, and keeps its choices when the chart is rendered again;
numbers are rounded for reading as studio/tables.py's readable_number; whole-number x gets
whole-number ticks; the legend shows values only while hovering. No console errors."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page

from studio.tables import readable_number

STATIC = Path(__file__).resolve().parents[2] / "static"
# Renders a chart of the given spec into a new element of the page (with the id, if given), returned.
RENDER = """([spec, id]) => {
  const el = document.createElement("div");
  el.setAttribute("data-chart", "");
  if (id) el.id = id;
  el.style.width = "700px";
  const script = document.createElement("script");
  script.type = "application/json";
  script.textContent = JSON.stringify(spec);
  el.appendChild(script);
  document.body.appendChild(el);
  window.studioCharts.render(el);
  return el;
}"""
# Waits until uPlot has drawn (it draws in a microtask) and the next frames ran.
FRAMES = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
# The data of the chart drawn in an element (uPlot's: data[0] the x axis, data[i] series i).
DATA = "(el) => window.studioCharts.get(el).data.map((column) => Array.from(column, (v) => v === undefined ? null : v))"
# The uPlot series' labels, in order (0 is the x axis).
LABELS = "(el) => window.studioCharts.get(el).series.map((s) => s.label)"

STEPS = list(range(0, 200, 10))
LOSS = [round(2 * math.exp(-i / 6) + 0.1 + (0.15 if i % 2 else -0.05), 4) for i in range(len(STEPS))]
T0 = 1_714_557_600.0  # 2024-05-01 10:00 UTC
CONTROLS: dict[str, Any] = {
    "title": "train loss",
    "xLabel": "step",
    "controls": True,
    "series": [
        {"label": "run-a", "x": STEPS, "y": LOSS, "t": [T0 + 3.5 * i for i in range(len(STEPS))]},
        {"label": "run-b", "x": STEPS[:10], "y": LOSS[:10], "t": [T0 + 900 + 7 * i for i in range(10)]},
    ],
}


@pytest.fixture
def harness(page: Page, errors: list[str]) -> Iterator[Page]:
    """A blank page with uPlot and charts.js, as the studio loads them; no console error by the end."""
    page.set_content("<!doctype html><html><head><meta charset='utf-8'></head><body></body></html>")
    page.add_style_tag(path=str(STATIC / "vendor" / "uplot" / "uPlot.min.css"))
    page.add_script_tag(path=str(STATIC / "vendor" / "uplot" / "uPlot.iife.min.js"))
    page.add_script_tag(path=str(STATIC / "charts.js"))
    yield page
    assert errors == []


def _render(page: Page, spec: dict[str, Any], id: str | None = None) -> Locator:
    page.evaluate(RENDER, [spec, id])
    page.evaluate(FRAMES)
    charts = page.locator("[data-chart]")
    return charts.nth(charts.count() - 1)  # this one, not whichever is last later


def _point(page: Page, chart: Locator, index: int, series: int = 1) -> tuple[float, float]:
    """Where, on the page, the point at data index `index` of uPlot series `series` is drawn."""
    return page.evaluate(
        """([el, k, i]) => {
          const u = window.studioCharts.get(el);
          const box = u.over.getBoundingClientRect();
          return [box.left + u.valToPos(u.data[0][k], "x"), box.top + u.valToPos(u.data[i][k], "y")];
        }""",
        [chart.element_handle(), index, series],
    )


def _visible_legend(chart: Locator) -> list[str]:
    rows = chart.locator(".u-legend tr.u-series")
    return [" ".join(rows.nth(i).inner_text().split()) for i in range(rows.count()) if rows.nth(i).is_visible()]


def test_the_demo_page_draws_the_scatter_and_the_controls_without_errors(page: Page, errors: list[str]) -> None:
    page.goto((STATIC / "charts-demo.html").as_uri())
    page.evaluate(FRAMES)
    assert page.locator("[data-chart]").count() == 6
    assert page.locator(".chart-error").count() == 0
    # The scatter keeps its 7 runs, two pairs of them at the same lr.
    scatter = page.locator("#scatter-demo")
    xs = page.evaluate(DATA, scatter.element_handle())[0]
    assert xs == [0.001, 0.003, 0.003, 0.01, 0.03, 0.03, 0.1]
    # Only the charts that ask for controls have a toolbar; the signed one cannot be log.
    assert page.locator(".studio-chart-controls").count() == 2
    assert page.locator("#controls-demo [data-control=x-axis]").count() == 1
    assert page.locator("#controls-signed-demo [data-control=x-axis]").count() == 0
    assert page.locator("#controls-signed-demo [data-control=log-y]").is_disabled()
    assert page.locator("#controls-signed-demo .studio-chart-note").is_visible()
    assert not page.locator("#controls-demo .studio-chart-note").is_visible()
    assert errors == []


def test_a_scatter_keeps_every_point_and_names_the_hovered_one(harness: Page) -> None:
    page = harness
    spec = {
        "title": "valid loss against lr",
        "xLabel": "lr",
        "kind": "scatter",
        "series": [
            {
                "label": "valid loss",
                "x": [0.01, 0.03, 0.03, 0.1],  # two runs with the same lr
                "y": [0.41, 0.3, 0.35, 0.52],
                "labels": ["run-1", "run-2", "run-3", "run-4"],
            }
        ],
    }
    chart = _render(page, spec)
    data = page.evaluate(DATA, chart.element_handle())
    assert data[0] == [0.01, 0.03, 0.03, 0.1]
    assert data[1] == [0.41, 0.3, 0.35, 0.52]
    assert sum(v is not None for column in data[1:] for v in column) == 4

    # A second series sharing an x value with the first: its point is a point of its own too.
    two = {**spec, "series": [*spec["series"], {"label": "train loss", "x": [0.03], "y": [0.2]}]}
    data = page.evaluate(DATA, _render(page, two).element_handle())
    assert data[0] == [0.01, 0.03, 0.03, 0.03, 0.1]
    assert sum(v is not None for column in data[1:] for v in column) == 5

    # Not hovering: the series' names only. Hovering run-3 (lr 0.03, like run-2): its name and values.
    assert _visible_legend(chart) == ["valid loss"]
    page.mouse.move(*_point(page, chart, 2))
    value = chart.locator(".u-legend tr.u-series").nth(1).locator(".u-value")
    assert value.inner_text() == "run-3 · lr=0.03 · 0.35"
    assert value.get_attribute("title") == "run-3: lr=0.03, 0.35"
    page.mouse.move(*_point(page, chart, 1))
    assert value.inner_text() == "run-2 · lr=0.03 · 0.3"
    # Away from every point: nothing is hovered, names only again.
    box = chart.locator(".u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 2)
    assert _visible_legend(chart) == ["valid loss"]


def test_smoothing_draws_the_average_and_keeps_the_raw_line(harness: Page) -> None:
    page = harness
    chart = _render(page, CONTROLS)
    el = chart.element_handle()
    labels = page.evaluate(LABELS, el)
    # With controls, each series' raw line comes first (drawn behind), then the lines.
    assert labels == ["step", "run-a (raw)", "run-b (raw)", "run-a", "run-b"]
    data = page.evaluate(DATA, el)
    assert data[3] == LOSS
    assert all(v is None for v in data[1])  # smoothing off: no raw line of its own

    chart.locator("[data-control=smoothing]").fill("0.9")
    page.evaluate(FRAMES)
    assert chart.locator(".studio-chart-controls output").inner_text() == "0.90"
    data = page.evaluate(DATA, el)
    assert data[1] == LOSS  # the raw line, as logged
    assert data[3] != LOSS
    # The average, debiased: starts at the first value, lags behind the zig-zag, smoother than it.
    assert data[3][0] == pytest.approx(LOSS[0])
    assert sum(abs(a - b) for a, b in zip(data[3][1:], data[3][:-1], strict=False)) < sum(
        abs(a - b) for a, b in zip(LOSS[1:], LOSS[:-1], strict=False)
    )
    raw = page.evaluate("(el) => { const s = window.studioCharts.get(el).series[1]; return [s.show, s.width]; }", el)
    assert raw == [True, 1]
    # The raw line has no legend row of its own; hiding run-a from the legend hides its raw line.
    assert _visible_legend(chart) == ["run-a", "run-b"]
    chart.locator(".u-legend tr.u-series").nth(3).locator("th").click()
    shown = page.evaluate("(el) => window.studioCharts.get(el).series.map((s) => s.show)", el)
    assert shown == [True, False, True, False, True]
    # Hovered, a value is the smoothed one; its title has the exact one and the raw one.
    chart.locator(".u-legend tr.u-series").nth(3).locator("th").click()
    page.mouse.move(*_point(page, chart, 5, series=3))
    value = chart.locator(".u-legend tr.u-series").nth(3).locator(".u-value")
    assert value.inner_text() == readable_number(data[3][5])
    assert value.get_attribute("title") == f"{data[3][5]!r} (smoothed; raw {LOSS[5]!r})"

    chart.locator("[data-control=smoothing]").fill("0")
    data = page.evaluate(DATA, el)
    assert data[3] == LOSS and all(v is None for v in data[1])


def test_log_y_toggles_the_scale_and_is_not_offered_for_values_at_or_below_zero(harness: Page) -> None:
    page = harness
    chart = _render(page, CONTROLS)
    distr = "(el) => window.studioCharts.get(el).scales.y.distr"
    assert page.evaluate(distr, chart.element_handle()) == 1
    chart.locator("[data-control=log-y]").check()
    page.evaluate(FRAMES)
    assert page.evaluate(distr, chart.element_handle()) == 3
    assert page.locator(".chart-error").count() == 0
    chart.locator("[data-control=log-y]").uncheck()
    assert page.evaluate(distr, chart.element_handle()) == 1

    signed = {**CONTROLS, "title": "reward", "series": [{"label": "reward", "x": [1, 2, 3], "y": [-1.0, 0.0, 2.5]}]}
    other = _render(page, signed)
    box = other.locator("[data-control=log-y]")
    assert box.is_disabled()
    assert "needs values above 0" in (other.locator("label:has([data-control=log-y])").get_attribute("title") or "")
    assert other.locator(".studio-chart-note").is_visible()
    # No "t": no choice of x axis.
    assert other.locator("[data-control=x-axis]").count() == 0


def test_the_x_axis_by_wall_time_and_relative_time(harness: Page) -> None:
    page = harness
    chart = _render(page, CONTROLS)
    el = chart.element_handle()
    select = chart.locator("[data-control=x-axis]")
    assert select.input_value() == "step"

    select.select_option("relative")
    page.evaluate(FRAMES)
    data = page.evaluate(DATA, el)
    # Seconds since each series' own first point: both start at 0.
    assert data[0][0] == 0 and data[0][-1] == pytest.approx(3.5 * (len(STEPS) - 1))
    ticks = page.evaluate("(el) => window.studioCharts.get(el).axes[0]._values.filter(Boolean)", el)
    assert ticks and all(len(t.split(":")) == 3 for t in ticks), ticks
    assert page.evaluate(LABELS, el)[0] == "relative time (h:mm:ss)"

    select.select_option("wall")
    page.evaluate(FRAMES)
    data = page.evaluate(DATA, el)
    assert data[0][0] == T0 and data[0][-1] == T0 + 900 + 7 * 9
    assert page.evaluate("(el) => window.studioCharts.get(el).scales.x.time", el) is True

    select.select_option("step")
    assert page.evaluate(DATA, el)[0] == STEPS


def test_drag_zooms_and_reset_zoom_zooms_out(harness: Page) -> None:
    page = harness
    chart = _render(page, CONTROLS)
    el = chart.element_handle()
    reset = chart.locator("[data-control=reset-zoom]")
    assert reset.is_disabled()
    box = chart.locator(".u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 40, steps=5)
    page.mouse.up()
    page.evaluate(FRAMES)
    scale = "(el) => { const x = window.studioCharts.get(el).scales.x; return [x.min, x.max]; }"
    low, high = page.evaluate(scale, el)
    assert STEPS[0] < low < high < STEPS[-1]
    assert reset.is_enabled()

    # Log y draws the chart again: the zoom stays.
    chart.locator("[data-control=log-y]").check()
    page.evaluate(FRAMES)
    assert page.evaluate(scale, el) == pytest.approx([low, high])

    reset.click()
    page.evaluate(FRAMES)
    assert page.evaluate(scale, el) == [STEPS[0], STEPS[-1]]
    assert reset.is_disabled()


def test_the_choices_stay_when_the_chart_is_rendered_again(harness: Page) -> None:
    page = harness
    chart = _render(page, CONTROLS, id="loss-chart")
    chart.locator("[data-control=smoothing]").fill("0.5")
    chart.locator("[data-control=log-y]").check()
    chart.locator("[data-control=x-axis]").select_option("relative")
    page.evaluate("() => document.getElementById('loss-chart').remove()")

    # The page gives the chart new data (a live run): a new element, the same id.
    again = _render(page, CONTROLS, id="loss-chart")
    assert again.locator("[data-control=smoothing]").input_value() == "0.5"
    assert again.locator("[data-control=log-y]").is_checked()
    assert again.locator("[data-control=x-axis]").input_value() == "relative"
    el = again.element_handle()
    assert page.evaluate("(el) => window.studioCharts.get(el).scales.y.distr", el) == 3
    assert page.evaluate(DATA, el)[1][0] is not None  # smoothed: the raw line is drawn

    # Another chart of its own keeps its own choices.
    other = _render(page, {**CONTROLS, "title": "valid loss"})
    assert other.locator("[data-control=smoothing]").input_value() == "0"


def test_whole_number_x_gets_whole_number_ticks(harness: Page) -> None:
    page = harness
    splits = "(el) => window.studioCharts.get(el).axes[0]._splits"
    line = {"label": "lr", "x": [0, 1, 2, 3], "y": [1, 2, 3, 4]}
    steps = _render(page, {"title": "lr", "xLabel": "step", "series": [line]})
    ticks = page.evaluate(splits, steps.element_handle())
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    # Fractional x (epochs as fractions) keeps fractional ticks.
    line = {"label": "a", "x": [0, 0.5, 1], "y": [1, 2, 3]}
    epochs = _render(page, {"title": "acc", "xLabel": "epoch", "series": [line]})
    ticks = page.evaluate(splits, epochs.element_handle())
    assert any(not float(t).is_integer() for t in ticks), ticks


def test_the_legend_shows_names_until_hovered_then_rounded_values(harness: Page) -> None:
    page = harness
    y = [0.821720453292698, 0.000012345678, 1234.5678, 0.5]
    chart = _render(page, {"title": "m", "xLabel": "step", "series": [{"label": "loss", "x": [0, 1, 2, 3], "y": y}]})
    assert _visible_legend(chart) == ["loss"]  # no "step: --", no "loss: --"
    assert not chart.locator(".u-legend .u-value").nth(1).is_visible()
    box = chart.locator(".u-over").bounding_box()
    assert box is not None
    for k, value in enumerate(y[:3]):
        x, _ = _point(page, chart, k)
        page.mouse.move(x + 1, box["y"] + box["height"] / 2)  # a line chart is hovered by x (the first on the edge)
        cells = chart.locator(".u-legend .u-value")
        assert cells.nth(0).inner_text() == str(k)
        assert cells.nth(1).inner_text() == readable_number(value)
        assert cells.nth(1).get_attribute("title") == repr(value)
    assert _visible_legend(chart)[0].startswith("step")
    # y ticks are rounded for reading too.
    ticks = page.evaluate("(el) => window.studioCharts.get(el).axes[1]._values.filter(Boolean)", chart.element_handle())
    assert ticks and all(len(t.replace("-", "").replace(".", "").lstrip("0")) <= 4 or "e" in t for t in ticks), ticks
    page.mouse.move(0, 0)
    assert _visible_legend(chart) == ["loss"]


@pytest.mark.parametrize(
    "number",
    [
        0.821720453292698,
        0.00001234567,
        1.2345e-5,
        1234.5,  # a half: to even, as Python
        1235.5,
        1.0625,
        12345.0,
        12345.5,
        -12345.5,
        999999.5,
        1e6,
        123456789.0,
        0.0001,
        0.5,
        -0.30000000000000004,
        0.0,
        -0.0,
        100.0,
        7.0,
        2.5e-300,
        1.7976931348623157e308,
    ],
)
def test_numbers_read_as_the_tables_write_them(harness: Page, number: float) -> None:
    assert harness.evaluate("(n) => window.studioCharts.readable(n)", number) == readable_number(number)


def test_a_malformed_t_or_labels_is_an_error_shown_in_the_element(harness: Page, errors: list[str]) -> None:
    spec = {"title": "x", "series": [{"label": "a", "x": [0, 1], "y": [1, 2], "t": [0]}]}
    chart = _render(harness, spec)
    message = chart.locator(".chart-error").inner_text()
    assert message == 'Chart unavailable: series 0\'s "t" needs to be a list as long as "x"'
    spec = {"title": "y", "kind": "scatter", "series": [{"label": "a", "x": [0, 1], "y": [1, 2], "labels": "ab"}]}
    chart = _render(harness, spec)
    message = chart.locator(".chart-error").inner_text()
    assert message == 'Chart unavailable: series 0\'s "labels" needs to be a list as long as "x"'
    errors.clear()  # the two failures are logged to the console, as meant
