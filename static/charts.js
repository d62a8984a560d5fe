/*
 * Run Studio charts: metric line charts drawn with uPlot (static/vendor/uplot/). Plain ES2017, no
 * build step, no dependency besides uPlot, which must be loaded first.
 *
 * Markup: any element with a `data-chart` attribute holding, as a direct child, its data as JSON:
 *
 *   <div data-chart data-chart-height="300">
 *     <script type="application/json">
 *       {"title": "loss", "xLabel": "step",
 *        "series": [{"label": "train", "x": [0, 1, 2, 3], "y": [0.9, null, 0.7, 0.6]},
 *                   {"label": "valid", "x": [0, 3], "y": [1.0, 0.8]}]}
 *     </script>
 *   </div>
 *
 * Django's `json_script` filter writes such a <script> safely. A `null` in "y" is a missing value,
 * drawn as a gap in the line; JSON has no NaN or Infinity, so send null for those. The series may
 * have different x values. `data-chart-height` is optional (300 px).
 *
 * Every chart on the page is rendered once the DOM is ready, fills its element's width, and is
 * re-sized when the window is (debounced). Content added later is rendered on htmx's
 * `htmx:afterSwap`, or by calling `window.studioCharts.render(root)` on it.
 */
(() => {
  "use strict";

  /* global uPlot */

  const DEFAULT_HEIGHT = 300;
  const MIN_WIDTH = 200;
  const RESIZE_DEBOUNCE_MS = 150;
  // The page's colours (static/studio.css), read when a chart is drawn: the canvas cannot use CSS
  // variables, and the theme (light or dark) may change while the page is open.
  function cssColour(name, fallback) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  }
  const ink = () => cssColour("--ink", "#1d2330");
  const gridColour = () => cssColour("--chart-grid", "rgba(0, 0, 0, 0.07)");
  const axis = (label) => ({ label, stroke: ink, grid: { stroke: gridColour }, ticks: { stroke: gridColour } });
  // Okabe-Ito: distinguishable with colour-blindness; its black is the page's text colour, so that it
  // stays readable on a dark page.
  const COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", ink];

  // Chart element -> its uPlot instance: to re-size them, and to never render an element twice.
  const charts = new Map();
  // Chart elements whose JSON could not be rendered (they show a message instead).
  const failed = new WeakSet();

  /**
   * Merges series that have x values of their own onto one sorted x axis, the shape uPlot needs:
   * data[0] is the x axis and data[i] holds series i's y at each of those x.
   *
   * Where a series has no point at some x, its slot is `undefined`: uPlot draws the line across
   * it. Where the series has a point whose value is missing (null, or anything but a finite
   * number), the slot is `null`: with `spanGaps: false`, uPlot breaks the line there.
   */
  function alignSeries(series) {
    const xSet = new Set();
    for (const s of series) {
      s.x.forEach((x) => xSet.add(x));
    }
    const xs = Array.from(xSet).sort((a, b) => a - b);
    const indexOfX = new Map(xs.map((x, i) => [x, i]));
    const data = [xs];
    for (const s of series) {
      const ys = new Array(xs.length).fill(undefined);
      s.x.forEach((x, i) => {
        const y = s.y[i];
        ys[indexOfX.get(x)] = Number.isFinite(y) ? y : null;
      });
      data.push(ys);
    }
    return data;
  }

  /** The chart's description, from the element's own <script type="application/json"> child. */
  function readSpec(el) {
    const script = el.querySelector(':scope > script[type="application/json"]');
    if (!script) {
      throw new Error('no <script type="application/json"> child');
    }
    const spec = JSON.parse(script.textContent);
    if (!spec || !Array.isArray(spec.series)) {
      throw new Error('the JSON has no "series" list');
    }
    spec.series.forEach((s, i) => {
      if (!Array.isArray(s.x) || !Array.isArray(s.y) || s.x.length !== s.y.length) {
        throw new Error(`series ${i} needs "x" and "y" lists of the same length`);
      }
    });
    return spec;
  }

  /** The width inside the element (its padding excluded), at least MIN_WIDTH even when hidden. */
  function widthOf(el) {
    const style = window.getComputedStyle(el);
    const width = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return Math.max(Math.floor(width) || 0, MIN_WIDTH);
  }

  function heightOf(el) {
    const height = parseInt(el.getAttribute("data-chart-height"), 10);
    return height > 0 ? height : DEFAULT_HEIGHT;
  }

  function buildOptions(el, spec) {
    const xLabel = spec.xLabel || "";
    return {
      title: spec.title || "",
      width: widthOf(el),
      height: heightOf(el),
      scales: {
        x: {
          time: false, // steps, not timestamps
          // A scatter's outermost points would sit on the plot's edges: leave 5% either side.
          ...(spec.kind === "scatter"
            ? { range: (u, min, max) => { const pad = (max - min || Math.abs(max) || 1) * 0.05; return [min - pad, max + pad]; } }
            : {}),
        },
      },
      axes: [axis(xLabel), axis()],
      legend: { show: true }, // one entry per series, with the values under the cursor
      cursor: { drag: { x: true, y: false } }, // drag to zoom into steps, double-click to zoom out
      series: [
        { label: xLabel || "x" },
        ...spec.series.map((s, i) => ({
          label: s.label,
          stroke: COLOURS[i % COLOURS.length],
          width: 1.5,
          spanGaps: false, // a missing value breaks the line
          // "kind": "scatter" (a metric against a property): points, no line.
          ...(spec.kind === "scatter" ? { paths: () => null, points: { show: true, size: 8 } } : {}),
        })),
      ],
    };
  }

  /** Renders one chart element, once; a failure is shown in the element instead of a chart. */
  function renderChart(el) {
    if (charts.has(el) || failed.has(el)) {
      return;
    }
    try {
      const spec = readSpec(el);
      charts.set(el, new uPlot(buildOptions(el, spec), alignSeries(spec.series), el));
    } catch (err) {
      console.error("studioCharts: cannot render", el, err);
      failed.add(el);
      const message = document.createElement("p");
      message.className = "chart-error";
      message.textContent = `Chart unavailable: ${err.message}`;
      el.appendChild(message);
    }
  }

  /** Renders every `[data-chart]` element in root, root itself included, not rendered yet. */
  function render(root = document) {
    if (root.nodeType === Node.ELEMENT_NODE && root.matches("[data-chart]")) {
      renderChart(root);
    }
    root.querySelectorAll("[data-chart]").forEach(renderChart);
  }

  /** Fits every chart to its element's width; forgets the charts whose element left the page. */
  function resizeAll() {
    charts.forEach((chart, el) => {
      if (!el.isConnected) {
        chart.destroy();
        charts.delete(el);
        return;
      }
      const width = widthOf(el);
      if (chart.width !== width) {
        chart.setSize({ width, height: heightOf(el) });
      }
    });
  }

  function debounce(fn, ms) {
    let timer;
    return () => {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function start() {
    render(document);
    window.addEventListener("resize", debounce(resizeAll, RESIZE_DEBOUNCE_MS));
    // Charts in content htmx swapped in. After an outerHTML swap the event's target may be the
    // element that was replaced, no longer on the page: then search the whole page (charts
    // already rendered are skipped).
    document.body.addEventListener("htmx:afterSwap", (event) => {
      const target = event.detail && event.detail.target;
      render(target && target.isConnected ? target : document);
      resizeAll(); // also forgets the charts the swap removed
    });
    // static/theme.js: the light or dark theme changed, so the axes, grid and ink series are drawn again.
    document.addEventListener("studio:themechange", () => charts.forEach((chart) => chart.redraw(false, true)));
  }

  window.studioCharts = { render, alignSeries };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
