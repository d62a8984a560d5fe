// Run Studio's few behaviours that need JavaScript beyond htmx. No build step.
document.addEventListener("click", (event) => {
  // <button data-copy="#some-input">: copy that input's value (the share link).
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  navigator.clipboard.writeText(source.value).then(
    () => { button.textContent = "Copied"; },
    () => { source.select(); },  // no clipboard (plain http): leave it selected to copy by hand
  );
});

// The column picker: drag a shown column to another place. The new order goes into the state
// form's `cols` and the form is submitted, so htmx swaps the table and pushes the URL, as the ← →
// links do (which keep working without JavaScript, and from the keyboard).
let draggedColumn = null;
document.addEventListener("dragstart", (event) => {
  draggedColumn = event.target.closest?.("#column-list [data-key]") || null;
  if (!draggedColumn) return;
  event.dataTransfer.effectAllowed = "move";
  event.dataTransfer.setData("text/plain", draggedColumn.dataset.key);
  draggedColumn.classList.add("dragging");
});
document.addEventListener("dragover", (event) => {
  const over = event.target.closest?.("#column-list [data-key]");
  if (!draggedColumn || !over) return;
  event.preventDefault();  // allows the drop
  if (over === draggedColumn) return;
  const box = over.getBoundingClientRect();
  const before = event.clientX < box.left + box.width / 2;  // the list runs left to right
  over.parentNode.insertBefore(draggedColumn, before ? over : over.nextSibling);
});
document.addEventListener("drop", (event) => {
  if (draggedColumn && event.target.closest?.("#column-list")) event.preventDefault();
});
document.addEventListener("dragend", () => {
  if (!draggedColumn) return;
  draggedColumn.classList.remove("dragging");
  draggedColumn = null;
  showColumns([...document.querySelectorAll("#column-list [data-key]")].map((item) => item.dataset.key));
});

// The columns in a new order (dragged in the picker or by a header): into the state form's `cols`,
// and the form is submitted, so htmx swaps the table and pushes the URL.
function showColumns(keys) {
  const form = document.getElementById("state-form");
  if (form && form.elements.cols.value !== keys.join(",")) {
    form.elements.cols.value = keys.join(",");
    form.requestSubmit();
  }
}

// Columns already shown cannot be added again (the list of choices is loaded once, the columns change).
function markShownColumns() {
  const shown = new Set([...document.querySelectorAll("#column-list [data-key]")].map((item) => item.dataset.key));
  document.querySelectorAll("#column-choices option[value]").forEach((option) => {
    if (option.value) option.disabled = shown.has(option.value);
  });
}
document.addEventListener("DOMContentLoaded", markShownColumns);
document.addEventListener("htmx:afterSettle", markShownColumns);

// The state form's empty fields (the filters left at "any") stay out of the URL it pushes, so a
// shared link says only what was chosen. (Without JavaScript the browser sends them all; the
// server reads an empty field as no filter either way.) On a saved view, the fields the view sets
// are sent even when emptied (data-view-keys): the URL's empty value clears the view's, where a
// missing one would bring it back.
document.addEventListener("htmx:configRequest", (event) => {
  if (event.detail.verb !== "get" || event.detail.elt.id !== "state-form") return;
  const form = event.detail.formData;
  const viewKeys = new Set((event.detail.elt.dataset.viewKeys || "").split(" ").filter(Boolean));
  for (const name of new Set(form.keys())) {
    // A multi-select's hidden empty companion (what tells the server "none chosen" without
    // JavaScript) goes too, once an option is chosen.
    const values = form.getAll(name).filter((value) => value !== "");
    form.delete(name);
    values.forEach((value) => form.append(name, value));
    if (!values.length && viewKeys.has(name)) form.append(name, "");
  }
});

// A running run's Duration ticks every second, in the runs grid and on its page, counted from its
// data-started (the server drew the value it had; without JavaScript that stays). Written as
// Python's str(timedelta), as the server writes it: "1:02:03", "2 days, 1:02:03".
function tickDurations() {
  const now = Date.now();
  document.querySelectorAll("table.runs [data-started], #run-live [data-started], #run-facts [data-started]").forEach((cell) => {
    const seconds = Math.max(0, Math.floor((now - Date.parse(cell.dataset.started)) / 1000));
    const days = Math.floor(seconds / 86400);
    const rest = seconds % 86400;
    const clock = `${Math.floor(rest / 3600)}:${String(Math.floor(rest / 60) % 60).padStart(2, "0")}:${String(rest % 60).padStart(2, "0")}`;
    cell.textContent = days ? `${days} day${days === 1 ? "" : "s"}, ${clock}` : clock;
  });
}
setInterval(tickDurations, 1000);

// A copy of cells from the grid carries the numbers' exact values (data-exact), not the rounded ones
// shown: rows become lines and cells tab-separated, as a spreadsheet pastes them.
document.addEventListener("copy", (event) => {
  const selection = document.getSelection();
  if (!selection || selection.isCollapsed || !selection.rangeCount) return;
  const range = selection.getRangeAt(0);
  const table = range.commonAncestorContainer.parentElement?.closest?.("table.runs")
    || (range.commonAncestorContainer.closest?.("table.runs"));
  if (!table || !table.querySelector("[data-exact]")) return;
  const rows = [...table.querySelectorAll("tbody tr")].filter((row) => selection.containsNode(row, true));
  if (!rows.length) return;
  const text = rows.map((row) => [...row.cells]
    .filter((cell) => !cell.classList.contains("col-select") && selection.containsNode(cell, true))
    .map((cell) => (cell.dataset.exact ?? cell.textContent.trim())).join("\t")).join("\n");
  event.clipboardData.setData("text/plain", text);
  event.preventDefault();
});

// The runs grid: drag a header's right edge to set the column's width. While dragging, the width is
// set in the page's <style id="grid-widths">; on release it goes into the state form's `widths`
// (column:px, the last said kept) and the form is submitted, so the URL (and a view saved from it)
// holds it, as the column picker's drag does with `cols`.
let resizing = null;
document.addEventListener("pointerdown", (event) => {
  const handle = event.target.closest?.("table.runs .col-resizer");
  if (!handle || event.button !== 0) return;
  event.preventDefault();
  const header = handle.closest("th");
  resizing = { handle, startX: event.clientX, startWidth: header.getBoundingClientRect().width, width: null };
  handle.classList.add("resizing");
  handle.setPointerCapture(event.pointerId);
});
document.addEventListener("pointermove", (event) => {
  if (!resizing) return;
  resizing.width = Math.round(Math.min(2000, Math.max(40, resizing.startWidth + event.clientX - resizing.startX)));
  const css = resizing.handle.dataset.class;
  const rule = `#runs-table .${css}{width:${resizing.width}px;min-width:${resizing.width}px;max-width:${resizing.width}px}`;
  let live = document.getElementById("grid-widths-live");
  if (!live) {
    live = document.createElement("style");
    live.id = "grid-widths-live";
    document.head.append(live);
  }
  live.textContent = rule;
});
document.addEventListener("pointerup", () => {
  if (!resizing) return;
  const { handle, width } = resizing;
  resizing = null;
  handle.classList.remove("resizing");
  const form = document.getElementById("state-form");
  if (width === null || !form?.elements.widths) return;
  const key = handle.dataset.key;
  const widths = form.elements.widths.value.split(",").filter((item) => item && item.slice(0, item.lastIndexOf(":")) !== key);
  widths.push(`${key}:${width}`);
  form.elements.widths.value = widths.join(",");
  form.requestSubmit();
});
// The server's widths arrive with the table: the dragged one's live rule has done its work.
document.addEventListener("htmx:afterSettle", () => document.getElementById("grid-widths-live")?.remove());

// Filters as chips: the search box and the chips are one query. A chip removed or a filter added
// changes the query on the server; the table comes back with it (data-q), and the box shows it,
// unless the box is being typed in (then the query came from it).
document.addEventListener("htmx:afterSettle", () => {
  const table = document.getElementById("runs-table");
  const search = document.getElementById("search");
  if (table && search && document.activeElement !== search && table.dataset.q !== undefined) {
    search.value = table.dataset.q;
  }
});
// "Add filter" closes once its filter is on the table, ready for the next one. (A filter refused
// comes back as the editor, in place, with a 400: it stays open.)
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.detail.elt;
  if (!form.matches?.(".filter-form") || !event.detail.successful || event.detail.xhr.status >= 400) return;
  form.closest("details").open = false;
  form.elements.filter.value = "";
  document.getElementById("filter-editor").replaceChildren();
});

// Pinned columns (the name, and those pinned with their header's pin) stay put when the grid scrolls
// sideways: the server makes them sticky (grid.py's pin_rules), and here each gets its offset, the
// widths of the select column and of the pinned columns before it.
function placePinnedColumns() {
  const table = document.querySelector("table.runs");
  if (!table) return;
  let left = table.querySelector("thead th.col-select")?.getBoundingClientRect().width || 0;
  const rules = [...table.querySelectorAll("thead th.pinned")].map((header) => {
    const rule = `#runs-table .${header.dataset.class}{left:${left}px}`;
    left += header.getBoundingClientRect().width;
    return rule;
  });
  let style = document.getElementById("grid-pins-live");
  if (!style) {
    style = document.createElement("style");
    style.id = "grid-pins-live";
    document.head.append(style);
  }
  style.textContent = rules.join("");
}
document.addEventListener("DOMContentLoaded", placePinnedColumns);
document.addEventListener("htmx:afterSettle", placePinnedColumns);
window.addEventListener("resize", placePinnedColumns);
document.addEventListener("pointermove", () => { if (resizing) placePinnedColumns(); });

// The runs grid: drag a header onto another to move its column there, as in the column picker
// (whose ← → links do it without JavaScript).
let draggedHeader = null;
function dropSide(header, event) {
  const box = header.getBoundingClientRect();
  return event.clientX < box.left + box.width / 2 ? "before" : "after";
}
function clearDropMarks() {
  document.querySelectorAll("table.runs thead th.drop-before, table.runs thead th.drop-after")
    .forEach((header) => header.classList.remove("drop-before", "drop-after"));
}
document.addEventListener("dragstart", (event) => {
  const header = event.target.closest?.("table.runs thead th[data-key]");
  if (!header) return;
  if (resizing) { event.preventDefault(); return; }  // the edge is for the width
  draggedHeader = header;
  event.dataTransfer.effectAllowed = "move";
  event.dataTransfer.setData("text/plain", header.dataset.key);
  header.classList.add("dragging");
});
document.addEventListener("dragover", (event) => {
  const over = event.target.closest?.("table.runs thead th[data-key]");
  if (!draggedHeader || !over) return;
  event.preventDefault();
  clearDropMarks();
  if (over !== draggedHeader) over.classList.add(`drop-${dropSide(over, event)}`);
});
document.addEventListener("drop", (event) => {
  const over = event.target.closest?.("table.runs thead th[data-key]");
  if (!draggedHeader || !over) return;
  event.preventDefault();
  const keys = [...document.querySelectorAll("table.runs thead th[data-key]")].map((header) => header.dataset.key);
  const moved = draggedHeader.dataset.key;
  if (over.dataset.key === moved) return;
  const order = keys.filter((key) => key !== moved);
  order.splice(order.indexOf(over.dataset.key) + (dropSide(over, event) === "after" ? 1 : 0), 0, moved);
  showColumns(order);
});
document.addEventListener("dragend", () => {
  draggedHeader?.classList.remove("dragging");
  draggedHeader = null;
  clearDropMarks();
});

// The runs grid from the keyboard, as in Gmail and GitHub: "/" searches, j and k move a row cursor,
// Enter opens its run, x ticks it for comparing, ? lists the keys. Keys typed into a field are the
// field's; Escape leaves the search box.
function gridRows() {
  return [...document.querySelectorAll("table.runs > tbody > tr")].filter((row) => !row.querySelector("td.empty"));
}
function moveRowCursor(step) {
  const rows = gridRows();
  if (!rows.length) return;
  const current = rows.findIndex((row) => row.classList.contains("row-cursor"));
  const next = current < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, current + step));
  rows.forEach((row) => row.classList.remove("row-cursor"));
  rows[next].classList.add("row-cursor");
  rows[next].setAttribute("aria-current", "true");
  rows.forEach((row, i) => { if (i !== next) row.removeAttribute("aria-current"); });
  rows[next].scrollIntoView({ block: "nearest" });
}
document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.closest?.("input, textarea, select, [contenteditable], dialog")) {
    if (event.key === "Escape" && target.id === "search") target.blur();
    return;
  }
  const search = document.getElementById("search");
  if (!search || !document.querySelector("table.runs")) return;  // the runs page only
  const row = document.querySelector("table.runs > tbody > tr.row-cursor");
  if (event.key === "/") {
    search.focus();
    search.select();
  } else if (event.key === "j" || event.key === "ArrowDown" && row) {
    moveRowCursor(1);
  } else if (event.key === "k" || event.key === "ArrowUp" && row) {
    moveRowCursor(-1);
  } else if (event.key === "Enter" && row && !target.closest?.("a, button, summary")) {
    row.querySelector("td.col-name a, a[href*='/runs/']")?.click();
  } else if (event.key === "x" && row) {
    row.querySelector("td.col-select input[type=checkbox]")?.click();
  } else if (event.key === "?") {
    document.getElementById("keys-help")?.showModal();
  } else {
    return;
  }
  event.preventDefault();
});
// The "Keyboard shortcuts" button opens the list; it is there only where the keys work, with JavaScript.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-opens-dialog]").forEach((button) => {
    button.hidden = false;
    button.addEventListener("click", () => document.getElementById(button.dataset.opensDialog)?.showModal());
  });
});

// Menus (<details class="menu">, "Add filter") close on a click outside them and on Escape, as menus do;
// without JavaScript they close when their summary is clicked again.
document.addEventListener("click", (event) => {
  document.querySelectorAll("details.menu[open], details.add-filter[open]").forEach((menu) => {
    if (!menu.contains(event.target)) menu.open = false;
  });
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  document.querySelectorAll("details.menu[open], details.add-filter[open]").forEach((menu) => {
    menu.open = false;
    menu.querySelector("summary")?.focus();
  });
});

// Selecting runs in the grid: shift-click ticks (or unticks) every box between the last one clicked
// and this one, as in Gmail and W&B.
let lastTicked = null;
document.addEventListener("click", (event) => {
  const box = event.target.closest?.("table.runs td.col-select input[type=checkbox]");
  if (!box) return;
  const boxes = [...document.querySelectorAll("table.runs td.col-select input[type=checkbox]")];
  if (event.shiftKey && lastTicked && boxes.includes(lastTicked)) {
    const [from, to] = [boxes.indexOf(lastTicked), boxes.indexOf(box)].sort((a, b) => a - b);
    boxes.slice(from, to + 1).forEach((each) => { each.checked = box.checked; });
  }
  lastTicked = box;
});

// A log on a run's Outputs tab (#file-text.log): it follows its tail while the reader is at the end
// ("Follow"), stops when they scroll up ("Jump to end" brings them back), and searches its lines.
(() => {
  const NEAR_END_PX = 24;
  const NEAR_TOP_PX = 200;
  const MAX_MARKS = 2000;
  let marks = [];
  let current = -1;
  let loadingEarlier = null; // {link, fromBottom} while an earlier part is on its way
  let wasAtEnd = true;

  const log = () => document.querySelector("#file-text.log");
  const follow = () => document.getElementById("log-follow");
  const atEnd = (el) => el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_END_PX;

  function toEnd() {
    const el = log();
    if (el) el.scrollTop = el.scrollHeight;
  }

  function showJump(show) {
    const button = document.getElementById("log-end");
    if (button) button.hidden = !show;
  }

  function setUp() {
    const el = log();
    if (!el || el.dataset.ready) return;
    el.dataset.ready = "1";
    toEnd(); // a log opens at its end
    el.addEventListener("scroll", () => {
      const following = atEnd(el);
      if (follow()) follow().checked = following;
      showJump(!following);
      // Near the top: the part before comes by itself ("Show earlier output"), the view kept where it is.
      const earlier = el.querySelector(".earlier a[hx-get]");
      if (el.scrollTop < NEAR_TOP_PX && earlier && !loadingEarlier) {
        loadingEarlier = { link: earlier, fromBottom: el.scrollHeight - el.scrollTop };
        earlier.click();
      }
    });
  }

  document.addEventListener("click", (event) => {
    if (event.target.id === "log-end") {
      toEnd();
      if (follow()) follow().checked = true;
      showJump(false);
    } else if (event.target.id === "log-next" || event.target.id === "log-prev") {
      step(event.target.id === "log-next" ? 1 : -1);
    }
  });
  document.addEventListener("change", (event) => {
    if (event.target.id === "log-follow" && event.target.checked) {
      toEnd();
      showJump(false);
    }
  });

  // New lines arrived (htmx swapped in the tail): keep the end in view while following, unless the
  // reader scrolled away just before the swap (their scroll event may not have fired yet). An earlier
  // part arrived above: keep the lines the reader was on where they were. Other swaps (the live poll)
  // can land between the click on "Show earlier output" and its answer, hence the link's identity.
  document.body.addEventListener("htmx:beforeSwap", () => {
    const el = log();
    wasAtEnd = !el || atEnd(el);
  });
  document.body.addEventListener("htmx:afterRequest", (event) => {
    // An earlier part that failed to come may be asked for again by scrolling.
    if (loadingEarlier && !event.detail.successful && event.detail.requestConfig?.elt === loadingEarlier.link) {
      loadingEarlier = null;
    }
  });
  document.body.addEventListener("htmx:afterSwap", (event) => {
    setUp();
    const el = log();
    if (el && loadingEarlier && event.detail.requestConfig?.elt === loadingEarlier.link) {
      el.scrollTop = el.scrollHeight - loadingEarlier.fromBottom;
      loadingEarlier = null;
    }
    if (el && follow() && follow().checked && wasAtEnd) toEnd();
    // New lines are searched too; the match the reader was on stays the current one.
    const search = document.getElementById("log-search");
    if (search && search.value) {
      const was = current;
      find(search.value, false);
      if (was >= 0 && marks.length) select(Math.min(was, marks.length - 1), false);
    }
  });

  function clearMarks() {
    document.querySelectorAll("#file-text mark").forEach((mark) => {
      mark.replaceWith(document.createTextNode(mark.textContent));
    });
    document.querySelectorAll("#file-text .ln").forEach((line) => line.normalize());
    marks = [];
    current = -1;
  }

  // Marks every match of ``text`` (case-insensitive) in the log's lines, as text nodes: the lines'
  // text is never parsed as HTML.
  function find(text, jump = true) {
    clearMarks();
    const said = document.getElementById("log-matches");
    if (!text) {
      if (said) said.textContent = "";
      return;
    }
    const needle = text.toLowerCase();
    for (const line of document.querySelectorAll("#file-text .ln")) {
      const content = line.textContent;
      const lower = content.toLowerCase();
      let at = lower.indexOf(needle);
      if (at < 0) continue;
      const parts = document.createDocumentFragment();
      let from = 0;
      while (at >= 0 && marks.length < MAX_MARKS) {
        parts.append(document.createTextNode(content.slice(from, at)));
        const mark = document.createElement("mark");
        mark.textContent = content.slice(at, at + needle.length);
        parts.append(mark);
        marks.push(mark);
        from = at + needle.length;
        at = lower.indexOf(needle, from);
      }
      parts.append(document.createTextNode(content.slice(from)));
      line.replaceChildren(parts);
      if (marks.length >= MAX_MARKS) break;
    }
    if (said) {
      said.textContent = marks.length ? `${marks.length}${marks.length >= MAX_MARKS ? "+" : ""} found` : "Not found in the lines shown";
    }
    if (jump && marks.length) step(1);
  }

  function step(direction) {
    if (!marks.length) return;
    select((current + direction + marks.length) % marks.length, true);
  }

  function select(index, show) {
    if (current >= 0 && marks[current]) marks[current].classList.remove("current");
    current = index;
    const mark = marks[current];
    mark.classList.add("current");
    if (show) {
      if (follow()) follow().checked = false; // reading a match: stop following the tail
      mark.scrollIntoView({ block: "center" });
    }
    const said = document.getElementById("log-matches");
    if (said) said.textContent = `${current + 1} of ${marks.length}`;
  }

  let typing;
  document.addEventListener("input", (event) => {
    if (event.target.id !== "log-search") return;
    clearTimeout(typing);
    typing = setTimeout(() => find(event.target.value), 200);
  });
  document.addEventListener("keydown", (event) => {
    if (event.target.id === "log-search" && event.key === "Enter") {
      event.preventDefault();
      step(event.shiftKey ? -1 : 1);
    }
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();

// The Metrics tab: an image metric's step slider (without JavaScript, its thumbnails are links), a
// row or table metric's columns sorted by a click on their header, and any of its columns charted.
document.addEventListener("input", (event) => {
  const slider = event.target.closest(".image-slider");
  if (!slider) return;
  const figure = slider.closest("figure");
  const link = figure.querySelectorAll(".image-thumbs a")[slider.value];
  const image = figure.querySelector(":scope > img");
  image.src = link.getAttribute("href");
  image.alt = link.querySelector("img").alt;
  figure.querySelector(".image-full").href = link.getAttribute("href");
  figure.querySelector(".image-step").textContent = link.dataset.step || "—";
  figure.querySelectorAll(".image-thumbs a").forEach((a) => a.classList.toggle("current", a === link));
});
document.addEventListener("click", (event) => {
  const thumb = event.target.closest(".image-thumbs a");
  if (thumb) {
    event.preventDefault();
    const figure = thumb.closest("figure");
    const slider = figure.querySelector(".image-slider");
    slider.value = Array.from(figure.querySelectorAll(".image-thumbs a")).indexOf(thumb);
    slider.dispatchEvent(new Event("input", { bubbles: true }));
    return;
  }
  const sorter = event.target.closest("table.sortable .sort-column");
  if (!sorter) return;
  const th = sorter.closest("th");
  const table = th.closest("table");
  const index = Array.from(th.parentNode.children).indexOf(th);
  const descending = th.getAttribute("aria-sort") === "ascending";
  table.querySelectorAll("th").forEach((other) => other.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", descending ? "descending" : "ascending");
  const key = (row) => {
    const cell = row.children[index];
    const raw = cell && cell.dataset.value !== undefined ? cell.dataset.value : null;
    const asNumber = raw === null ? NaN : Number(raw);
    return { missing: raw === null, number: asNumber, text: raw || "" };
  };
  const rows = Array.from(table.tBodies[0].rows);
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x.missing !== y.missing) return x.missing ? 1 : -1; // empty cells last, either way
    const order = !Number.isNaN(x.number) && !Number.isNaN(y.number) ? x.number - y.number : x.text.localeCompare(y.text);
    return descending ? -order : order;
  });
  table.tBodies[0].append(...rows);
});
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-chart-column]");
  if (!select) return;
  const box = select.closest(".metric-table");
  const holder = box.querySelector(".column-chart");
  holder.replaceChildren();
  if (select.value === "") return;
  const index = Number(select.value);
  const ys = Array.from(box.querySelectorAll("tbody tr")).map((row) => {
    const cell = row.children[index];
    const value = cell && cell.dataset.value !== undefined ? Number(cell.dataset.value) : NaN;
    return Number.isFinite(value) ? value : null;
  });
  const label = select.options[select.selectedIndex].text;
  const chart = document.createElement("div");
  chart.className = "chart";
  chart.setAttribute("data-chart", "");
  chart.setAttribute("data-chart-height", "240");
  const spec = document.createElement("script");
  spec.type = "application/json";
  spec.textContent = JSON.stringify({ title: label, xLabel: "row", series: [{ label, x: ys.map((_, i) => i), y: ys }] });
  chart.append(spec);
  holder.append(chart);
  if (window.studioCharts) window.studioCharts.render(chart);
});
document.querySelectorAll(".image-slider").forEach((slider) => { slider.hidden = false; });
document.body.addEventListener("htmx:afterSwap", () => {
  document.querySelectorAll(".image-slider").forEach((slider) => { slider.hidden = false; });
});

// Compare: images of 2 to 4 runs side by side, one step for all of them.
document.addEventListener("input", (event) => {
  const slider = event.target.closest(".image-compare-slider");
  if (!slider) return;
  const box = slider.closest("[data-image-compare]");
  const step = slider.dataset.steps.split(",")[slider.value];
  box.querySelector(".image-step").textContent = step;
  box.querySelectorAll("figure [data-srcs]").forEach((shown) => {
    const src = shown.dataset.srcs.split("|")[slider.value];
    if (shown.tagName === "IMG" && src) shown.src = src;
    if (shown.tagName === "IMG") shown.style.visibility = src ? "" : "hidden";
  });
});

// An image metric (or an image compared) opens full screen on a click; Esc or a click closes it.
document.addEventListener("click", (event) => {
  const shown = event.target.closest("figure.metric-image > img, .image-columns img");
  if (!shown || !shown.getAttribute("src")) return;
  let dialog = document.getElementById("image-zoom");
  if (!dialog) {
    dialog = document.createElement("dialog");
    dialog.id = "image-zoom";
    dialog.className = "image-zoom";
    dialog.append(document.createElement("img"));
    dialog.addEventListener("click", () => dialog.close());
    document.body.append(dialog);
  }
  const image = dialog.querySelector("img");
  image.src = shown.getAttribute("src");
  image.alt = shown.alt;
  dialog.showModal();
});
