/*
 * Parallel coordinates for the compare page: an element with `data-parallel` holding, as a child
 * <script type="application/json">, {"runs": [names], "ids": [run ids], "axes": [{"label", "kind",
 * "values": [number or null per run]}]}. Each axis is scaled to its own min..max; each run is a line
 * across the axes (a gap where it has no value). Dragging along an axis keeps the runs whose value
 * is in that range (a brush per axis, all of them ANDed); a click on an axis clears its brush.
 * Drawn as SVG, in the page's colours; plain ES2017, no dependency.
 */
(() => {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const HEIGHT = 320, TOP = 36, BOTTOM = 28, SIDE = 48;
  const COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"];

  function make(name, attributes, parent) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (parent) parent.append(element);
    return element;
  }

  function readable(n) {
    if (window.studioCharts && window.studioCharts.readable) return window.studioCharts.readable(n);
    return Number(n.toPrecision(4)).toString();
  }

  function draw(box) {
    const spec = JSON.parse(box.querySelector(':scope > script[type="application/json"]').textContent);
    box.querySelectorAll("svg").forEach((old) => old.remove());
    const width = Math.max(box.clientWidth, 320);
    const svg = make("svg", { width, height: HEIGHT, role: "img", "aria-label": "Parallel coordinates of the runs" });
    box.prepend(svg);
    const axes = spec.axes;
    const gap = (width - 2 * SIDE) / (axes.length - 1);
    const scales = axes.map((axis) => {
      const numbers = axis.values.filter((v) => v !== null);
      const lo = Math.min(...numbers), hi = Math.max(...numbers);
      return { lo, hi, y: (v) => (hi === lo ? (TOP + HEIGHT - BOTTOM) / 2 : TOP + (HEIGHT - BOTTOM - TOP) * (1 - (v - lo) / (hi - lo))) };
    });
    const brushes = box._brushes || (box._brushes = axes.map(() => null));
    const inBrushes = (r) => axes.every((axis, a) => {
      const b = brushes[a];
      const v = axis.values[r];
      return !b || (v !== null && v >= b[0] && v <= b[1]);
    });
    const lines = make("g", { class: "lines" }, svg);
    let kept = 0;
    spec.runs.forEach((name, r) => {
      const keep = inBrushes(r);
      kept += keep ? 1 : 0;
      let d = "", pen = false;
      axes.forEach((axis, a) => {
        const v = axis.values[r];
        if (v === null) { pen = false; return; }
        d += `${pen ? "L" : "M"}${SIDE + a * gap},${scales[a].y(v)}`;
        pen = true;
      });
      const line = make("path", { d, class: keep ? "run kept" : "run faded", stroke: COLOURS[r % COLOURS.length] }, lines);
      make("title", {}, line).textContent = name;
    });
    axes.forEach((axis, a) => {
      const x = SIDE + a * gap, s = scales[a];
      const g = make("g", { class: "axis" }, svg);
      make("line", { x1: x, x2: x, y1: TOP, y2: HEIGHT - BOTTOM }, g);
      const title = make("text", { x, y: TOP - 18, "text-anchor": "middle", class: "axis-label" }, g);
      title.textContent = axis.label;
      make("text", { x, y: TOP - 4, "text-anchor": "middle", class: "tick" }, g).textContent = readable(s.hi);
      make("text", { x, y: HEIGHT - BOTTOM + 16, "text-anchor": "middle", class: "tick" }, g).textContent = readable(s.lo);
      if (brushes[a]) {
        const [b0, b1] = brushes[a];
        make("rect", { x: x - 7, width: 14, y: s.y(b1), height: Math.max(2, s.y(b0) - s.y(b1)), class: "brush" }, g);
      }
      // The brush: drag along the axis's band.
      const band = make("rect", { x: x - 12, width: 24, y: TOP, height: HEIGHT - BOTTOM - TOP, class: "band" }, g);
      band.addEventListener("pointerdown", (down) => {
        const rect = svg.getBoundingClientRect();
        const start = down.clientY - rect.top;
        let moved = false;
        const value = (py) => {
          if (s.hi === s.lo) return s.lo;
          let t = Math.min(1, Math.max(0, 1 - (py - TOP) / (HEIGHT - BOTTOM - TOP)));
          if (t > 0.97) t = 1; // a drag from (or to) near an end takes the end in
          if (t < 0.03) t = 0;
          return s.lo + t * (s.hi - s.lo);
        };
        const move = (event) => {
          const now = event.clientY - rect.top;
          if (Math.abs(now - start) < 3) return;
          moved = true;
          const [v0, v1] = [value(start), value(now)].sort((p, q) => p - q);
          brushes[a] = [v0, v1];
          draw(box);
        };
        const up = () => {
          window.removeEventListener("pointermove", move);
          window.removeEventListener("pointerup", up);
          if (!moved) { brushes[a] = null; draw(box); }
        };
        window.addEventListener("pointermove", move);
        window.addEventListener("pointerup", up);
        down.preventDefault();
      });
    });
    const said = box.querySelector(".parallel-said");
    const brushed = brushes.some(Boolean);
    if (said) {
      said.textContent = brushed
        ? `${kept} of ${spec.runs.length} runs in the brushed ranges: ${spec.runs.filter((_, r) => inBrushes(r)).join(", ")}`
        : `${spec.runs.length} runs on ${axes.length} axes`;
    }
    box.dataset.kept = String(kept);
  }

  function start() {
    document.querySelectorAll("[data-parallel]").forEach(draw);
    let timer;
    window.addEventListener("resize", () => {
      clearTimeout(timer);
      timer = setTimeout(() => document.querySelectorAll("[data-parallel]").forEach(draw), 150);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
