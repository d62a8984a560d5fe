/*
 * Run Studio charts: metric line charts and scatter plots drawn with uPlot (static/vendor/uplot/).
 * Plain ES2017, no build step, no dependency besides uPlot, which must be loaded first.
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
 * have different x values. `data-chart-height` is optional (300 px): the plot's height, the toolbar
 * and the legend come on top of it.
 *
 * Chart keys (all optional but "series"):
 *   "title"     string, drawn above the plot ("" by default).
 *   "xLabel"    string, the x axis' name ("" by default; the legend's x row says "x" then).
 *   "kind"      "line" (the default) or "scatter": a metric against a property, points and no
 *               lines. A scatter keeps every point, two points at the same x included (within a
 *               series and across series): its data are not merged onto one x axis.
 *   "controls"  boolean, false by default: a line chart with `"controls": true` gets a toolbar
 *               above it (ignored on a scatter):
 *                 - Smoothing, a slider from 0 (off, the default) to 0.99: each line is drawn as
 *                   its exponential moving average (debiased, as TensorBoard's: the first points
 *                   are not pulled towards 0), its band smoothed with it, and the raw line stays
 *                   drawn faintly behind it. Hover shows the smoothed value; the raw one is in the
 *                   value's title.
 *                 - Log y, a check box: a logarithmic y axis (uPlot's distr 3). Disabled, with a
 *                   note, when any value (or band edge) is 0 or below.
 *                 - X axis, a choice shown only when every series has "t": the "xLabel" (step),
 *                   wall time (local date and time), or relative time (seconds since the series'
 *                   own first point, written h:mm:ss).
 *                 - Reset zoom, a button enabled once the plot is zoomed (drag across it to zoom
 *                   into x; double-clicking also resets).
 *               The choices are kept per chart (by the element's id, else by its title and x
 *               label) while the page lives, also when the chart is rendered again (htmx).
 *   "series"    a list of series, each:
 *     "label"   string, its legend name.
 *     "x", "y"  lists of the same length: the points, in x order.
 *     "t"       optional list as long as "x": each point's wall time in epoch seconds (float),
 *               for the X axis control; a null "t" leaves the point out in time.
 *     "t0"      optional number: "t" holds seconds after it (epoch seconds), not epoch seconds.
 *     "labels"  optional list as long as "x": each point's name (a run), shown on hover in the
 *               legend, as "name · xLabel=x · y" (mainly for a scatter's points).
 *     "band"    optional {"lo": [...], "hi": [...]} as long as "x": a range drawn around the line
 *               (a group's min to max over its runs, runs/group_series.py), filled in the series'
 *               colour at low opacity. A null in "lo" or "hi" is a gap in the band. The band has
 *               no legend entry of its own; hiding the series from the legend hides its band too.
 *               Ignored on a scatter.
 *     Other keys of a series (e.g. "runs") are ignored.
 *
 *   {"label": "lr=0.01", "x": [0, 1, 2], "y": [0.9, 0.8, 0.7], "t": [1.7e9, 1.7e9 + 30, 1.7e9 + 61],
 *    "band": {"lo": [0.8, 0.75, 0.6], "hi": [1.0, 0.9, 0.8]}}
 *
 * Numbers are written for reading: about 4 significant digits (0.8217, 1235, 1.235e-05), as
 * studio/tables.py's readable_number, on the y axis and in the legend; the exact value is the
 * legend value's title. When every x is a whole number (steps), the x axis has whole-number ticks
 * only. The legend shows the series' names and colours, and their values only while the cursor is
 * on the plot.
 *
 * Every chart on the page is rendered once the DOM is ready, fills its element's width, and is
 * re-sized when the window is (debounced). Content added later is rendered on htmx's
 * `htmx:afterSwap`, or by calling `window.studioCharts.render(root)` on it.
 * `window.studioCharts.get(el)` is the uPlot instance drawn in a chart element (for tests and other
 * scripts: its `data`, `series`, `scales`); `window.studioCharts.readable(number)` the number
 * written for reading.
 */
(() => {
  "use strict";

  /* global uPlot */

  const DEFAULT_HEIGHT = 300;
  const MIN_WIDTH = 200;
  const RESIZE_DEBOUNCE_MS = 150;
  // The page's colours (static/studio.css), read when a chart is drawn: the canvas cannot use CSS
  // variables, and the theme (light or dark) may change while the page is open.
  // A custom property's value is its text (the tokens are light-dark(light, dark), which a canvas
  // cannot read): a probe element's computed colour gives the colour it resolves to in the theme shown.
  let probe = null;
  function cssColour(name, fallback) {
    if (!getComputedStyle(document.documentElement).getPropertyValue(name).trim()) return fallback;
    if (!probe) {
      probe = document.createElement("span");
      probe.style.display = "none";
      document.body.append(probe);
    }
    probe.style.color = "";
    probe.style.color = `var(${name})`;
    return getComputedStyle(probe).color || fallback;
  }
  const ink = () => cssColour("--ink", "#1d2330");
  const gridColour = () => cssColour("--chart-grid", "rgba(0, 0, 0, 0.07)");
  const axis = (label) => ({ label, stroke: ink, grid: { stroke: gridColour }, ticks: { stroke: gridColour } });
  // Okabe-Ito: distinguishable with colour-blindness; its black is the page's text colour, so that it
  // stays readable on a dark page.
  const COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", ink];

  const BAND_ALPHA = 0.18;
  // A smoothed line's raw line, drawn faintly behind it.
  const RAW_ALPHA = 0.25;
  // The classes of a band's two edge series and of a raw line: their legend rows and cursor points
  // are hidden (they belong to their series' row).
  const BAND_CLASS = "studio-chart-band";
  const RAW_CLASS = "studio-chart-raw";
  // On a chart's uPlot root: the cursor is not on the plot (the legend shows names only); a scatter.
  const IDLE_CLASS = "studio-chart-idle";
  const SCATTER_CLASS = "studio-chart-scatter";
  // A scatter's point is hovered within this distance of the cursor (CSS pixels).
  const HOVER_RADIUS_PX = 24;
  const MAX_SMOOTHING = 0.99;
  // Whole-number tick steps for an x axis of whole numbers (steps): no tick at 0.2 or 0.5.
  const INTEGER_INCRS = [];
  for (let power = 1; power <= 1e15; power *= 10) {
    INTEGER_INCRS.push(power, 2 * power);
    if (power >= 10) INTEGER_INCRS.push(2.5 * power);
    INTEGER_INCRS.push(5 * power);
  }
  INTEGER_INCRS.sort((a, b) => a - b);
  // Tick steps for durations in seconds: whole seconds, minutes, hours, days.
  const DURATION_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200];
  for (let days = 1; days <= 1e5; days *= 2) DURATION_INCRS.push(days * 86400);

  const X_MODES = { step: null, wall: "wall time", relative: "relative time (h:mm:ss)" };

  /** The CSS the toolbar and the legend need, added to the page once. */
  const STYLE = `
.studio-chart-controls { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 16px; margin: 0 0 6px; font-size: 12px; }
.studio-chart-controls label { display: inline-flex; align-items: center; gap: 6px; margin: 0; }
.studio-chart-controls input[type="range"] { width: 110px; margin: 0; }
.studio-chart-controls input[type="checkbox"] { margin: 0; }
.studio-chart-controls output { min-width: 2.2em; font-variant-numeric: tabular-nums; }
.studio-chart-controls select, .studio-chart-controls button { font: inherit; font-size: 12px; padding: 1px 6px; }
.studio-chart-controls .studio-chart-note { opacity: 0.7; }
.studio-chart-controls label.studio-chart-disabled { opacity: 0.6; }
.${IDLE_CLASS} .u-legend .u-value { display: none; }
.${IDLE_CLASS} .u-legend.u-live th::after { content: none; }
.${IDLE_CLASS} .u-legend tr.u-series:first-child, .${SCATTER_CLASS} .u-legend tr.u-series:first-child { display: none; }
.u-legend .u-value { font-variant-numeric: tabular-nums; }`;
  let styled = false;
  function addStyle() {
    if (styled) return;
    styled = true;
    const style = document.createElement("style");
    style.setAttribute("data-studio-charts", "");
    style.textContent = STYLE;
    document.head.appendChild(style);
  }

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

  // Chart element -> its Chart (below): to re-size them, and to never render an element twice.
  const charts = new Map();
  // Chart elements whose JSON could not be rendered (they show a message instead).
  const failed = new WeakSet();
  // A chart's key (see chartKey) -> its toolbar's choices, kept while the page lives.
  const choices = new Map();

  /* ---------------------------------------------------------------------------------------------
   * Numbers for reading
   */

  /** Python's round(): halves to the even neighbour. */
  function roundHalfEven(number) {
    if (Math.abs(number % 1) === 0.5) {
      return 2 * Math.round(number / 2);
    }
    return Math.round(number);
  }

  /**
   * The number as studio/tables.py's readable_number writes it: Python's `f"{number:.4g}"` (4
   * significant digits, halves rounded to even, no trailing zeros, an exponent below 1e-4 and from
   * 1e4 on, written e-05 or e+06), except that whole numbers from 10,000 to a million are kept whole.
   */
  function readable(number) {
    if (number == null || number === "") return "";
    if (typeof number !== "number") return String(number);
    if (Number.isNaN(number)) return "NaN";
    if (!Number.isFinite(number)) return number > 0 ? "∞" : "-∞";
    const abs = Math.abs(number);
    const sign = number < 0 || Object.is(number, -0) ? "-" : "";
    let text = "0";
    if (abs !== 0) {
      // Every digit (a double's exact value, as far as 100 digits go), rounded here to 4, as Python
      // does: toExponential(3) would round a half up.
      const [mantissa, power] = abs.toExponential(99).split("e");
      const digits = mantissa.replace(".", "");
      let exponent = parseInt(power, 10);
      let kept = digits.slice(0, 4);
      const rest = digits.slice(4);
      const half = rest[0] === "5" && !/[1-9]/.test(rest.slice(1));
      if (rest[0] > "5" || (rest[0] === "5" && !half) || (half && Number(kept[3]) % 2 === 1)) {
        kept = String(Number(kept) + 1);
        if (kept.length > 4) {
          kept = kept.slice(0, 4);
          exponent += 1;
        }
      }
      const strip = (s) => s.replace(/0+$/, "");
      if (exponent < -4 || exponent >= 4) {
        const fraction = strip(kept.slice(1));
        const e = String(Math.abs(exponent)).padStart(2, "0");
        text = `${kept[0]}${fraction ? "." + fraction : ""}e${exponent < 0 ? "-" : "+"}${e}`;
      } else {
        const whole = exponent >= 0 ? kept.slice(0, exponent + 1) : "0";
        const fraction = strip(exponent >= 0 ? kept.slice(exponent + 1) : "0".repeat(-exponent - 1) + kept);
        text = fraction ? `${whole}.${fraction}` : whole;
      }
    }
    text = sign + text;
    if (text.includes("e") && abs >= 1 && abs < 1e6) {
      text = String(roundHalfEven(number));
    }
    return text;
  }

  /**
   * The exact value, every digit (the shortest that reads back as the same number), for a title;
   * an exponent below 1e-4 and from 1e16 on, written e-05 or e+16, as Python's repr().
   */
  function exact(number) {
    if (number == null) return "";
    const abs = Math.abs(number);
    if (!Number.isFinite(number) || abs === 0 || (abs >= 1e-4 && abs < 1e16)) {
      return String(number);
    }
    return number.toExponential().replace(/e([+-])(\d)$/, (match, sign, digit) => `e${sign}0${digit}`);
  }

  /** Seconds as h:mm:ss (a relative time). */
  function hms(seconds) {
    if (!Number.isFinite(seconds)) return "";
    const sign = seconds < 0 ? "-" : "";
    const total = Math.round(Math.abs(seconds));
    const pad = (n) => String(n).padStart(2, "0");
    return `${sign}${Math.floor(total / 3600)}:${pad(Math.floor((total % 3600) / 60))}:${pad(total % 60)}`;
  }

  /** Epoch seconds as a local date and time, 2024-05-01 13:04:05. */
  function dateTime(seconds) {
    if (!Number.isFinite(seconds)) return "";
    const d = new Date(seconds * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    return (
      `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
    );
  }

  /** An x value in the legend: a whole number as it is (a step), a time as a time. */
  function xText(value, xMode) {
    if (value == null) return "";
    if (xMode === "wall") return dateTime(value);
    if (xMode === "relative") return hms(value);
    return Number.isInteger(value) ? String(value) : readable(value);
  }

  /**
   * The y axis' tick labels: readable numbers, unless rounding would make two ticks read the same
   * (a narrow range, e.g. 1000.2 to 1000.8): then as many decimals as the ticks' step needs.
   */
  function yTicks(u, splits, axisIdx, space, incr) {
    const labels = splits.map((v) => (v == null ? "" : readable(v)));
    const shown = labels.filter((label) => label !== "");
    if (new Set(shown).size === shown.length) {
      return labels;
    }
    const decimals = Math.min(20, Math.max(0, Math.ceil(-Math.log10(incr || 1) + 1e-9)));
    return splits.map((v) => (v == null ? "" : v.toFixed(decimals)));
  }

  /** A y axis as wide as its longest tick label. */
  function axisWidth(u, values, axisIdx, cycleNum) {
    const ax = u.axes[axisIdx];
    if (cycleNum > 1 && ax._size) {
      return ax._size;
    }
    const longest = (values || []).reduce((a, v) => (v != null && String(v).length > a.length ? String(v) : a), "");
    let width = (ax.ticks.size || 0) + (ax.gap || 0) + 10; // room for the text's own side bearings
    if (longest) {
      u.ctx.font = ax.font[0];
      width += u.ctx.measureText(longest).width / (window.devicePixelRatio || 1);
    }
    return Math.max(40, Math.ceil(width));
  }

  /* ---------------------------------------------------------------------------------------------
   * Data
   */

  /**
   * Merges series that have x values of their own onto one sorted x axis, the shape uPlot needs:
   * data[0] is the x axis and data[i] holds series i's y at each of those x.
   *
   * Where a series has no point at some x, its slot is `undefined`: uPlot draws the line across
   * it. Where the series has a point whose value is missing (null, or anything but a finite
   * number), the slot is `null`: with `spanGaps: false`, uPlot breaks the line there. A point
   * without a finite x is left out.
   */
  function alignSeries(series) {
    const xSet = new Set();
    for (const s of series) {
      s.x.forEach((x) => Number.isFinite(x) && xSet.add(x));
    }
    const xs = Array.from(xSet).sort((a, b) => a - b);
    const indexOfX = new Map(xs.map((x, i) => [x, i]));
    const data = [xs];
    for (const s of series) {
      const ys = new Array(xs.length).fill(undefined);
      s.x.forEach((x, i) => {
        if (Number.isFinite(x)) {
          const y = s.y[i];
          ys[indexOfX.get(x)] = Number.isFinite(y) ? y : null;
        }
      });
      data.push(ys);
    }
    return data;
  }

  /**
   * A scatter's data: every point of every series with a finite x and y, sorted by x, each at an
   * index of its own (two points at the same x stay two points). data[0] holds the points' x, and
   * data[i] series i's y at its own points' indices, null elsewhere. `points[k]` is the point at
   * index k: its series (0-based in the spec) and its index in that series' lists.
   */
  function scatterData(series) {
    const points = [];
    series.forEach((s, i) =>
      s.x.forEach((x, j) => {
        if (Number.isFinite(x) && Number.isFinite(s.y[j])) {
          points.push({ x, y: s.y[j], series: i, index: j });
        }
      }),
    );
    points.sort((a, b) => a.x - b.x || a.series - b.series || a.index - b.index);
    const data = [points.map((p) => p.x)];
    series.forEach(() => data.push(new Array(points.length).fill(null)));
    points.forEach((p, k) => {
      data[p.series + 1][k] = p.y;
    });
    return { data, points };
  }

  /**
   * The values smoothed by an exponential moving average of the given weight (0: as they are),
   * in the order of xs, debiased (TensorBoard's): the first values are not pulled towards 0. A
   * missing value stays missing and does not move the average.
   */
  function smooth(xs, ys, weight) {
    if (!(weight > 0)) {
      return ys.slice();
    }
    const order = ys.map((_, i) => i).sort((a, b) => xs[a] - xs[b] || a - b);
    const out = new Array(ys.length).fill(null);
    let sum = 0;
    let norm = 0;
    for (const i of order) {
      const y = ys[i];
      if (!Number.isFinite(y)) {
        continue;
      }
      sum = sum * weight + (1 - weight) * y;
      norm = norm * weight + (1 - weight);
      out[i] = sum / norm;
    }
    return out;
  }

  /** The series' x for an x axis mode: its "x", its "t", or its "t" from its first point. */
  function xsFor(s, xMode) {
    if (xMode === "wall") {
      return s.t;
    }
    if (xMode === "relative") {
      const first = s.t.find((t) => Number.isFinite(t));
      return s.t.map((t) => (Number.isFinite(t) ? t - first : null));
    }
    return s.x;
  }

  const allPositive = (values) => values.every((v) => !Number.isFinite(v) || v > 0);

  /** The first and last of a sorted list's finite values. */
  function extent(xs) {
    let lo = 0;
    let hi = xs.length - 1;
    while (lo <= hi && !Number.isFinite(xs[lo])) lo++;
    while (hi >= lo && !Number.isFinite(xs[hi])) hi--;
    return lo <= hi ? [xs[lo], xs[hi]] : [null, null];
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
      for (const key of ["t", "labels"]) {
        if (s[key] != null && (!Array.isArray(s[key]) || s[key].length !== s.x.length)) {
          throw new Error(`series ${i}'s "${key}" needs to be a list as long as "x"`);
        }
      }
      // "t0": the times are seconds after it (shorter to send than whole epoch seconds).
      if (typeof s.t0 === "number" && Array.isArray(s.t)) {
        s.t = s.t.map((t) => (t == null ? null : s.t0 + t));
      }
    });
    return spec;
  }

  /** The key a chart's toolbar choices are kept under: the element's id, else title and x label. */
  function chartKey(el, spec) {
    return el.id ? `#${el.id}` : `${spec.title || ""}\u0000${spec.xLabel || ""}`;
  }

  /* ---------------------------------------------------------------------------------------------
   * Sizes
   */

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

  /* ---------------------------------------------------------------------------------------------
   * A chart
   */

  /**
   * One chart element: its uPlot instance (`u`), and for a line chart with "controls" its toolbar.
   * A change of smoothing gives uPlot new data; a change of the y scale or the x axis draws the
   * chart again.
   */
  class Chart {
    constructor(el, spec) {
      this.el = el;
      this.spec = spec;
      this.scatter = spec.kind === "scatter";
      this.controls = Boolean(spec.controls) && !this.scatter;
      this.hasTime = !this.scatter && spec.series.length > 0 && spec.series.every((s) => Array.isArray(s.t));
      this.canLog = spec.series.every(
        (s) => allPositive(s.y) && (this.scatter || s.band == null || (allPositive(s.band.lo) && allPositive(s.band.hi))),
      );
      // Two charts on the page with the same key (same title, no id) keep choices of their own.
      const base = chartKey(el, spec);
      let key = base;
      for (let n = 2; Array.from(charts.values()).some((c) => c.key === key && c.el.isConnected); n++) {
        key = `${base}\u0000${n}`;
      }
      this.key = key;
      if (!choices.has(key)) {
        choices.set(key, { smoothing: 0, logY: false, xMode: "step", zoom: null });
      }
      this.choices = choices.get(key);
      this.u = null;
      addStyle();
      if (this.controls) {
        this.toolbar = this.buildToolbar();
        el.appendChild(this.toolbar);
      }
      this.draw();
    }

    /** The choices as they apply to this chart's data (e.g. no log scale for values ≤ 0). */
    get xMode() {
      return this.controls && this.hasTime && this.choices.xMode in X_MODES ? this.choices.xMode : "step";
    }
    get logY() {
      return this.controls && this.canLog && this.choices.logY;
    }
    get smoothing() {
      return this.controls ? Math.min(Math.max(Number(this.choices.smoothing) || 0, 0), MAX_SMOOTHING) : 0;
    }

    /**
     * A line chart's series as uPlot draws them, in order: with controls, each series' raw line
     * first (drawn behind; empty while smoothing is off), then the spec's series (their index is
     * their colour and legend row), then two per band, its "hi" and "lo" edges, as series of their
     * own so that uPlot's `bands` option can fill between them.
     */
    lines() {
      const series = this.spec.series;
      const xMode = this.xMode;
      const weight = this.smoothing;
      const drawn = [];
      if (this.controls) {
        series.forEach((s, i) => {
          const x = xsFor(s, xMode);
          drawn.push({ role: "raw", of: i, label: `${s.label} (raw)`, x, y: weight > 0 ? s.y : s.y.map(() => null) });
        });
      }
      series.forEach((s, i) => {
        const x = xsFor(s, xMode);
        drawn.push({ role: "line", of: i, label: s.label, x, y: smooth(x, s.y, weight) });
      });
      series.forEach((s, i) => {
        if (s.band != null) {
          const x = xsFor(s, xMode);
          drawn.push({ role: "band", of: i, label: `${s.label} (max)`, x, y: smooth(x, s.band.hi, weight) });
          drawn.push({ role: "band", of: i, label: `${s.label} (min)`, x, y: smooth(x, s.band.lo, weight) });
        }
      });
      return drawn;
    }

    /** uPlot's options and data for the chart as it is now. */
    build() {
      const spec = this.spec;
      const xMode = this.xMode;
      const xLabel = X_MODES[xMode] || spec.xLabel || "";
      let data;
      let drawn;
      let points = null;
      if (this.scatter) {
        ({ data, points } = scatterData(spec.series));
        drawn = spec.series.map((s, i) => ({ role: "line", of: i, label: s.label }));
      } else {
        drawn = this.lines();
        data = alignSeries(drawn);
      }
      this.drawn = drawn;
      this.points = points;
      // uPlot's index (0 is the x axis) of each spec series' line, and of the series drawn with it
      // (raw line, band edges): hidden and shown with it from the legend.
      const lineIndex = new Map();
      const rawIndex = new Map();
      const twins = new Map();
      drawn.forEach((d, k) => {
        if (d.role === "line") lineIndex.set(d.of, k + 1);
      });
      drawn.forEach((d, k) => {
        if (d.role !== "line") {
          const line = lineIndex.get(d.of);
          twins.set(line, (twins.get(line) || []).concat(k + 1));
          if (d.role === "raw") rawIndex.set(line, k + 1);
        }
      });
      this.rawIndex = rawIndex;
      const bandEdges = [];
      drawn.forEach((d, k) => {
        if (d.role === "band" && d.label.endsWith("(max)")) bandEdges.push([k + 1, k + 2, d.of]);
      });

      const wholeX = xMode === "step" && data[0].length > 0 && data[0].every(Number.isInteger);
      const xAxis = axis(xLabel);
      if (wholeX) {
        xAxis.incrs = INTEGER_INCRS;
      } else if (xMode === "relative") {
        xAxis.incrs = DURATION_INCRS;
        xAxis.values = (u, splits) => splits.map((v) => (v == null ? "" : hms(v)));
      }
      const yAxis = Object.assign(axis(), { values: yTicks, size: axisWidth });

      const xScale = { time: xMode === "wall" };
      if (this.scatter) {
        // A scatter's outermost points would sit on the plot's edges: leave 5% either side.
        xScale.range = (u, min, max) => {
          const pad = (max - min || Math.abs(max) || 1) * 0.05;
          return [min - pad, max + pad];
        };
      }

      const lineValue = (u, v) => (v == null ? null : readable(v));
      const scatterValue = (u, v, si, idx) => {
        if (v == null || idx == null || !points[idx]) return "";
        const p = points[idx];
        const s = spec.series[p.series];
        const parts = [];
        if (Array.isArray(s.labels) && s.labels[p.index] != null) parts.push(String(s.labels[p.index]));
        parts.push(`${spec.xLabel || "x"}=${xText(p.x, "step")}`);
        parts.push(readable(v));
        return parts.join(" · ");
      };

      const uSeries = [{ label: xLabel || "x", value: (u, v) => xText(v, xMode) }].concat(
        drawn.map((d) => {
          const colour = colourAt(d.of);
          if (d.role === "line") {
            return Object.assign(
              { label: d.label, stroke: colour, width: 1.5, spanGaps: false, value: this.scatter ? scatterValue : lineValue },
              // "kind": "scatter" (a metric against a property): points, no line.
              this.scatter ? { paths: () => null, points: { show: true, size: 8 } } : {},
            );
          }
          return {
            // A raw line, faint; or a band's edge: a path for the fill to follow, not drawn itself.
            label: d.label,
            class: d.role === "raw" ? RAW_CLASS : BAND_CLASS,
            stroke: () => translucent(resolve(colour), d.role === "raw" ? RAW_ALPHA : BAND_ALPHA),
            width: d.role === "raw" ? 1 : 0,
            spanGaps: false,
            points: { show: false },
            value: lineValue,
          };
        }),
      );

      const chart = this;
      const options = {
        title: spec.title || "",
        width: widthOf(this.el),
        height: heightOf(this.el),
        scales: { x: xScale, y: this.logY ? { distr: 3, log: 10 } : {} },
        axes: [xAxis, yAxis],
        legend: { show: true }, // one entry per series, with the values under the cursor
        cursor: Object.assign(
          { drag: { x: true, y: false } }, // drag to zoom into x, double-click to zoom out
          this.scatter ? { dataIdx: (u, si, closest) => chart.nearestPoint(u, si, closest) } : {},
        ),
        series: uSeries,
        // The fill is a function, so that a theme change (the ink colour) repaints it.
        bands: bandEdges.map(([hi, lo, of]) => ({
          series: [hi, lo],
          fill: () => translucent(resolve(colourAt(of)), BAND_ALPHA),
        })),
        hooks: {
          // A series hidden or shown from the legend takes its band and raw line with it.
          setSeries: [
            (u, i, opts) => {
              if (i != null && twins.has(i) && opts && opts.show !== undefined) {
                twins.get(i).forEach((twin) => {
                  if (u.series[twin].show !== opts.show) {
                    u.setSeries(twin, { show: opts.show });
                  }
                });
              }
            },
          ],
          setLegend: [(u) => chart.legendChanged(u)],
          setScale: [(u, key) => key === "x" && chart.xScaleChanged(u)],
        },
      };
      return { options, data };
    }

    /** Draws the chart (again), keeping the zoom when the x axis is the same. */
    draw() {
      const zoom = this.choices.zoom && this.choices.zoom.xMode === this.xMode ? this.choices.zoom : null;
      if (this.u) {
        this.u.destroy();
        this.u = null;
      }
      const { options, data } = this.build();
      const u = new uPlot(options, data, this.el);
      this.u = u;
      // No legend row or cursor point of a band's edges or a raw line: they belong to their series.
      u.root.querySelectorAll(`.${BAND_CLASS}, .${RAW_CLASS}`).forEach((node) => {
        node.style.display = "none";
      });
      u.root.classList.add(IDLE_CLASS);
      u.root.classList.toggle(SCATTER_CLASS, this.scatter);
      this.choices.zoom = zoom;
      if (zoom) {
        u.setScale("x", { min: zoom.min, max: zoom.max });
      }
      this.updateToolbar();
    }

    /** New smoothing: the same series with new values; the zoom stays. */
    redata() {
      const u = this.u;
      const { min, max } = u.scales.x;
      u.setData(alignSeries(this.lines()), false);
      if (min != null && max != null) {
        u.setScale("x", { min, max }); // and the y axis fits the new values
      }
    }

    /** A scatter's point nearest the cursor in series si, within HOVER_RADIUS_PX, else null. */
    nearestPoint(u, si, closest) {
      if (si === 0) return closest;
      const { left, top } = u.cursor;
      if (!u.series[si].show || left == null || left < 0 || !this.points) return null;
      const ys = u.data[si];
      const xs = u.data[0];
      let best = null;
      let bestDistance = HOVER_RADIUS_PX * HOVER_RADIUS_PX;
      this.points.forEach((p, k) => {
        if (p.series === si - 1 && ys[k] != null) {
          const dx = u.valToPos(xs[k], "x") - left;
          const dy = u.valToPos(ys[k], "y") - top;
          const distance = dx * dx + dy * dy;
          if (distance <= bestDistance) {
            bestDistance = distance;
            best = k;
          }
        }
      });
      return best;
    }

    /** The legend shows values only while hovering; each value's title is its exact value. */
    legendChanged(u) {
      const idxs = u.cursor.idxs || [];
      const hovering = this.scatter ? idxs.some((k, i) => i > 0 && k != null) : u.cursor.idx != null;
      u.root.classList.toggle(IDLE_CLASS, !hovering);
      const rows = u.root.querySelectorAll(".u-legend tr.u-series");
      rows.forEach((row, i) => {
        const cell = row.querySelector(".u-value");
        if (!cell) return;
        const k = idxs[i];
        let title = "";
        if (hovering && k != null && u.data[i]) {
          const value = u.data[i][k];
          if (i === 0) {
            title = this.scatter ? "" : exact(value);
          } else if (this.scatter && this.points && this.points[k]) {
            const p = this.points[k];
            const labels = this.spec.series[p.series].labels;
            const name = Array.isArray(labels) && labels[p.index] != null ? `${labels[p.index]}: ` : "";
            title = `${name}${this.spec.xLabel || "x"}=${exact(p.x)}, ${exact(value)}`;
          } else if (value != null) {
            const raw = this.rawIndex && this.rawIndex.get(i);
            const rawValue = raw != null && this.smoothing > 0 ? u.data[raw][k] : null;
            title = rawValue != null ? `${exact(value)} (smoothed; raw ${exact(rawValue)})` : exact(value);
          }
        }
        if (title) {
          cell.title = title;
        } else {
          cell.removeAttribute("title");
        }
      });
    }

    /** A zoom (or its reset) is remembered, and enables (or disables) "Reset zoom". */
    xScaleChanged(u) {
      if (u !== this.u || !this.controls) return;
      const [lo, hi] = extent(u.data[0]);
      const { min, max } = u.scales.x;
      const slack = (hi - lo) * 1e-9;
      const zoomed = lo != null && min != null && max != null && (min > lo + slack || max < hi - slack);
      this.choices.zoom = zoomed ? { min, max, xMode: this.xMode } : null;
      this.updateToolbar();
    }

    resetZoom() {
      const [lo, hi] = extent(this.u.data[0]);
      if (lo != null && hi > lo) {
        this.u.setScale("x", { min: lo, max: hi });
      }
    }

    buildToolbar() {
      const bar = document.createElement("div");
      bar.className = "studio-chart-controls";
      bar.setAttribute("role", "group");
      bar.setAttribute("aria-label", "Chart controls");
      const labelled = (text, control, title) => {
        const label = document.createElement("label");
        if (title) label.title = title;
        label.append(text, control);
        return label;
      };

      const slider = document.createElement("input");
      Object.assign(slider, { type: "range", min: "0", max: String(MAX_SMOOTHING), step: "0.01" });
      slider.dataset.control = "smoothing";
      const shown = document.createElement("output");
      slider.addEventListener("input", () => {
        this.choices.smoothing = Math.min(Math.max(parseFloat(slider.value) || 0, 0), MAX_SMOOTHING);
        shown.textContent = this.choices.smoothing.toFixed(2);
        this.redata();
      });
      const smoothing = labelled(
        "Smoothing",
        slider,
        "Exponential moving average of each line (0: off); the raw line stays faint behind it",
      );
      smoothing.append(shown);

      const log = document.createElement("input");
      log.type = "checkbox";
      log.dataset.control = "log-y";
      log.addEventListener("change", () => {
        this.choices.logY = log.checked;
        this.draw();
      });
      const logLabel = labelled("", log, "");
      logLabel.append("Log y");
      const logNote = document.createElement("span");
      logNote.className = "studio-chart-note";
      logNote.textContent = "(not for values ≤ 0)";
      logLabel.append(logNote);
      if (!this.canLog) {
        log.disabled = true;
        logLabel.classList.add("studio-chart-disabled");
        logLabel.title = "A logarithmic scale needs values above 0: this chart has values of 0 or below";
      } else {
        logNote.hidden = true;
      }

      bar.append(smoothing, logLabel);

      if (this.hasTime) {
        const select = document.createElement("select");
        select.dataset.control = "x-axis";
        [
          ["step", this.spec.xLabel || "step"],
          ["wall", "wall time"],
          ["relative", "relative time"],
        ].forEach(([value, text]) => select.append(new Option(text, value)));
        select.addEventListener("change", () => {
          this.choices.xMode = select.value;
          this.draw();
        });
        bar.append(labelled("X axis", select, "What the x axis shows: steps, the wall time, or the time since each series' first point"));
      }

      const reset = document.createElement("button");
      reset.type = "button";
      reset.dataset.control = "reset-zoom";
      reset.textContent = "Reset zoom";
      reset.title = "Drag across the chart to zoom in";
      reset.addEventListener("click", () => this.resetZoom());
      bar.append(reset);

      this.inputs = { slider, shown, log, reset, select: bar.querySelector("select") };
      return bar;
    }

    /** The toolbar shows the choices as they apply. */
    updateToolbar() {
      if (!this.inputs) return;
      const { slider, shown, log, reset, select } = this.inputs;
      slider.value = String(this.smoothing);
      shown.textContent = this.smoothing.toFixed(2);
      log.checked = this.logY;
      if (select) select.value = this.xMode;
      reset.disabled = !this.choices.zoom;
    }

    resize() {
      const width = widthOf(this.el);
      if (this.u && this.u.width !== width) {
        this.u.setSize({ width, height: heightOf(this.el) });
      }
    }

    destroy() {
      if (this.u) this.u.destroy();
      this.u = null;
    }
  }

  /* ---------------------------------------------------------------------------------------------
   * The page
   */

  /** Renders one chart element, once; a failure is shown in the element instead of a chart. */
  function renderChart(el) {
    if (charts.has(el) || failed.has(el)) {
      return;
    }
    try {
      charts.set(el, new Chart(el, readSpec(el)));
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
      chart.resize();
    });
  }

  /** The uPlot instance drawn in a chart element (undefined if none). */
  function get(el) {
    const chart = charts.get(el);
    return chart ? chart.u : undefined;
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
    document.addEventListener("studio:themechange", () => charts.forEach((chart) => chart.u && chart.u.redraw(false, true)));
  }

  window.studioCharts = { render, get, readable, alignSeries };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
