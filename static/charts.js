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
 * A series may have a "band": a range drawn around its line (a group's min to max over its runs,
 * runs/group_series.py), filled in the series' colour at low opacity, with lists as long as "x":
 *
 *   {"label": "lr=0.01", "x": [0, 1, 2], "y": [0.9, 0.8, 0.7],
 *    "band": {"lo": [0.8, 0.75, 0.6], "hi": [1.0, 0.9, 0.8]}}
 *
 * A null in "lo" or "hi" is a gap in the band. The band has no legend entry of its own; hiding the
 * series from the legend hides its band too. Other keys of a series (e.g. "runs") are ignored.
 * `"kind": "scatter"` on the chart (a metric against a property) draws points, not lines.
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

  const BAND_ALPHA = 0.18;
  // The class of a band's two edge series: their legend rows and cursor points are hidden.
  const BAND_CLASS = "studio-chart-band";

  /**
   * The colour as a CSS colour with the given opacity. Any CSS colour (a hex colour, rgb(), a name:
   * the page's ink comes from a CSS variable) is first normalized by a canvas, which reads it back
   * as "#rrggbb", or as "rgba(...)" when it has an opacity of its own.
   */
  const normalizer = document.createElement("canvas").getContext("2d");
  function translucent(colour, alpha) {
    normalizer.fillStyle = "#000";
    normalizer.fillStyle = colour;
    const css = normalizer.fillStyle;
    if (css.startsWith("#")) {
      const [r, g, b] = [1, 3, 5].map((i) => parseInt(css.slice(i, i + 2), 16));
      return `rgba(${r}, ${g}, ${b}, ${alpha})`;
    }
    const rgba = css.match(/^rgba\(([^,]+),([^,]+),([^,]+),([^)]+)\)$/);
    return rgba ? `rgba(${rgba[1]},${rgba[2]},${rgba[3]}, ${parseFloat(rgba[4]) * alpha})` : css;
  }
  // A series' colour: some are functions (the ink, which follows the theme), read when drawing.
  const colourAt = (i) => COLOURS[i % COLOURS.length];
  const resolve = (colour) => (typeof colour === "function" ? colour() : colour);

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
      if (s.band != null) {
        const { lo, hi } = s.band;
        if (!Array.isArray(lo) || !Array.isArray(hi) || lo.length !== s.x.length || hi.length !== s.x.length) {
          throw new Error(`series ${i}'s "band" needs "lo" and "hi" lists as long as "x"`);
        }
      }
    });
    return spec;
  }

  /**
   * The chart's series as uPlot draws them: the spec's series first, in order (their index is their
   * colour and legend row), then two per band, its "hi" and "lo" edges, as series of their own so
   * that uPlot's `bands` option can fill between them. `bands` maps a series' index to its edges'.
   */
  function withBands(series) {
    const all = series.slice();
    const bands = new Map();
    series.forEach((s, i) => {
      if (s.band != null) {
        bands.set(i + 1, [all.length + 1, all.length + 2]); // uPlot's indices: 0 is the x axis
        all.push({ label: `${s.label} (max)`, x: s.x, y: s.band.hi, bandOf: i });
        all.push({ label: `${s.label} (min)`, x: s.x, y: s.band.lo, bandOf: i });
      }
    });
    return { all, bands };
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

  function buildOptions(el, spec, all, bands) {
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
        ...all.map((s, i) =>
          s.bandOf === undefined
            ? {
                label: s.label,
                stroke: colourAt(i),
                width: 1.5,
                spanGaps: false, // a missing value breaks the line
                // "kind": "scatter" (a metric against a property): points, no line.
                ...(spec.kind === "scatter" ? { paths: () => null, points: { show: true, size: 8 } } : {}),
              }
            : {
                // A band's edge: a path for the fill to follow, not drawn itself (width 0).
                label: s.label,
                class: BAND_CLASS,
                stroke: () => translucent(resolve(colourAt(s.bandOf)), BAND_ALPHA),
                width: 0,
                spanGaps: false,
                points: { show: false },
              },
        ),
      ],
      // The fill is a function, so that a theme change (the ink colour) repaints it.
      bands: Array.from(bands.values(), ([hi, lo], k) => ({
        series: [hi, lo],
        fill: () => translucent(resolve(colourAt(all[hi - 1].bandOf)), BAND_ALPHA),
      })),
      hooks: {
        // A series hidden or shown from the legend takes its band with it.
        setSeries: [
          (u, i, opts) => {
            if (i != null && bands.has(i) && opts && opts.show !== undefined) {
              bands.get(i).forEach((edge) => {
                if (u.series[edge].show !== opts.show) {
                  u.setSeries(edge, { show: opts.show });
                }
              });
            }
          },
        ],
      },
    };
  }

  /** Renders one chart element, once; a failure is shown in the element instead of a chart. */
  function renderChart(el) {
    if (charts.has(el) || failed.has(el)) {
      return;
    }
    try {
      const spec = readSpec(el);
      const { all, bands } = withBands(spec.series);
      const chart = new uPlot(buildOptions(el, spec, all, bands), alignSeries(all), el);
      // No legend row or cursor point of a band's edges: the band belongs to its series' row.
      chart.root.querySelectorAll(`.${BAND_CLASS}`).forEach((node) => {
        node.style.display = "none";
      });
      charts.set(el, chart);
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
