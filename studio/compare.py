"""Compare runs side by side: a row per property, tag, status and metric summary (the rows whose
values differ marked, or shown alone), each number rounded for reading with its exact value on
hover and, given a baseline run, its difference from the baseline's; and the charts: a metric over
steps per run, its last value across runs, it against a property (every run a point, duplicate x
values kept), and the runs on parallel axes (numeric properties and metrics), brushed to filter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from runs.models import MetricPoint, Run
from runs.series import downsample
from studio.tables import readable_number

# Runs compared at once: the table scrolls sideways with its first column kept.
COMPARE_MAX_RUNS = 100
# Axes of the parallel coordinates chart: numeric properties first, then metrics' last values.
PARALLEL_AXES_MAX = 12


@dataclass(frozen=True)
class Cell:
    text: str  # as read: rounded for a number
    exact: str = ""  # a number's every digit (its title)
    delta: str = ""  # a number's difference from the baseline's, signed


@dataclass(frozen=True)
class Row:
    label: str
    cells: list[Cell]
    differs: bool


def label(run: Run) -> str:
    return run.display_name or run.run_id


def compare_rows(runs: list[Run], baseline: Run | None = None) -> list[Row]:
    """A row for every property, tag, the status and every metric's last (and min, max) value."""
    rows: list[Row] = []
    base = runs.index(baseline) if baseline in runs else None

    def add(row_label: str, values: list[Any]) -> None:
        cells = [
            _cell(value, values[base] if base is not None and i != base else None) for i, value in enumerate(values)
        ]
        rows.append(Row(row_label, cells, len({repr(v) for v in values}) > 1))

    for key in sorted({p.key for run in runs for p in run.property_set.all()}):
        add(f"property {key}", [next((p.value for p in run.property_set.all() if p.key == key), None) for run in runs])
    for key in sorted({t.key for run in runs for t in run.tag_set.all()}):
        add(f"tag {key}", [next((t.value or "✓" for t in run.tag_set.all() if t.key == key), None) for run in runs])
    add("status", [run.status for run in runs])
    for name in sorted({m.name for run in runs for m in run.metrics.all()}):
        metrics = [next((m for m in run.metrics.all() if m.name == name), None) for run in runs]
        for aggregate in ("last", "min", "max"):
            values = [getattr(m, f"{aggregate}_number") if m else None for m in metrics]
            if aggregate != "last" and all(v is None for v in values):
                continue
            add(f"{name} ({aggregate})", values)
    return rows


def _cell(value: Any, base: Any) -> Cell:
    if value is None:
        return Cell("—")
    if not isinstance(value, float):
        return Cell(str(value))
    delta = ""
    if isinstance(base, float) and math.isfinite(base) and math.isfinite(value):
        difference = value - base
        delta = f"{'+' if difference > 0 else ''}{readable_number(difference)}" if difference else "±0"
    return Cell(readable_number(value), repr(value), delta)


def compare_charts(runs: list[Run], metric: str, prop: str) -> dict[str, Any]:
    points: dict[int, list[tuple[int, float | None]]] = {}
    rows = MetricPoint.objects.filter(metric__run__in=runs, metric__name=metric).order_by(
        "metric__run_id", "step", "id"
    )
    for run_pk, step, number in rows.values_list("metric__run_id", "step", "number").iterator(5000):
        points.setdefault(run_pk, []).append((step, _finite(number)))
    over_steps = []
    for run in runs:
        if series := points.get(run.pk):
            steps, values = downsample([s for s, _ in series], [v for _, v in series])
            over_steps.append({"label": label(run), "x": steps, "y": values})
    summaries = {run.pk: next((m for m in run.metrics.all() if m.name == metric), None) for run in runs}
    last_values = [(run, _finite(summaries[run.pk].last_number) if summaries[run.pk] else None) for run in runs]
    numbers = [v for _, v in last_values if v is not None]
    # The bars start a little below the smallest value, not at 0: runs within a percent of each
    # other (accuracies of 0.91 to 0.93) would otherwise all look the same length.
    low, high = (min(numbers), max(numbers)) if numbers else (0.0, 0.0)
    floor = low - (high - low) * 0.1 if high > low else min(0.0, low)
    span = (high - floor) or 1.0
    against = []
    for run, value in last_values:
        x = _number(next((p.value for p in run.property_set.all() if p.key == prop), None))
        if x is not None and value is not None:
            against.append((x, value, label(run)))
    return {
        "chart_steps": {"title": f"{metric} over steps", "xLabel": "step", "controls": True, "series": over_steps},
        "last_values": [
            (
                run,
                Cell(readable_number(v), repr(v)) if v is not None else Cell("—"),
                (v - floor) / span * 100 if v is not None else 0,
            )
            for run, v in last_values
        ],  # fmt: skip
        "bars_from": readable_number(floor) if numbers else "",
        "chart_property": {
            "title": f"{metric} (last) against {prop}",
            "xLabel": prop,
            "kind": "scatter",
            "series": [
                {
                    "label": metric,
                    "x": [x for x, _, _ in against],
                    "y": [y for _, y, _ in against],
                    "labels": [name for _, _, name in against],
                }
            ],
        }
        if against
        else None,
    }


# Images compared side by side: the first runs of the comparison.
IMAGE_RUNS_MAX = 4


def image_steps(runs: list[Run], name: str) -> dict[str, Any] | None:
    """An image metric of the first IMAGE_RUNS_MAX runs, side by side at each step: the steps any
    of them logged, and for each run its image at each of those steps (its latest at or before it,
    so runs that logged at different steps still line up)."""
    shown = [run for run in runs if any(m.name == name and m.kind == "image" for m in run.metrics.all())]
    shown = shown[:IMAGE_RUNS_MAX]
    if not shown:
        return None
    points = MetricPoint.objects.filter(metric__run__in=shown, metric__name=name).order_by("step", "id")
    by_run: dict[int, list[tuple[int, str]]] = {}
    for run_pk, step, number, value in points.values_list("metric__run_id", "step", "number", "value"):
        path = MetricPoint.decode(number, value)
        if isinstance(path, str):
            by_run.setdefault(run_pk, []).append((step or 0, path))
    steps = sorted({step for found in by_run.values() for step, _ in found})
    columns = []
    for run in shown:
        found = by_run.get(run.pk, [])
        paths, at = [], None
        for step in steps:
            for logged, path in found:
                if logged <= step:
                    at = path
            paths.append(at)
        columns.append({"run": run, "paths": paths})
    return {"name": name, "steps": steps, "columns": columns}


def parallel_axes(runs: list[Run], metric_names: list[str]) -> dict[str, Any] | None:
    """The parallel coordinates chart's data: an axis per numeric property (every run's value a
    number) and per metric (its last value), and a line per run; None with fewer than two axes."""
    axes: list[dict[str, Any]] = []
    for key in sorted({p.key for run in runs for p in run.property_set.all()}):
        values = [_number(next((p.value for p in run.property_set.all() if p.key == key), None)) for run in runs]
        if sum(v is not None for v in values) >= 2:
            axes.append({"label": key, "kind": "property", "values": values})
    for name in metric_names:
        values = [_finite(next((m.last_number for m in run.metrics.all() if m.name == name), None)) for run in runs]
        if sum(v is not None for v in values) >= 2:
            axes.append({"label": name, "kind": "metric", "values": values})
    axes = axes[:PARALLEL_AXES_MAX]
    if len(axes) < 2:
        return None
    return {"runs": [label(run) for run in runs], "ids": [run.run_id for run in runs], "axes": axes}


def _number(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: the chart shows a gap."""
    return value if value is not None and math.isfinite(value) else None
