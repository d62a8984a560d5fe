"""Server-side downsampling of metric series for charts.

A pure module (no Django): the views hand it a metric's steps and values and send the browser at
most ``max_points`` of them.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["downsample"]


def downsample(
    steps: Sequence[float],
    values: Sequence[float | None],
    max_points: int = 1000,
) -> tuple[list[float], list[float | None]]:
    """Reduce a series to at most ``max_points`` points by min/max decimation.

    Why: a line chart about 1,000 pixels wide cannot show more than a point or two per pixel
    column, so sending 100,000 points only costs bandwidth and drawing time. Plain thinning (every
    n-th point) or averaging would however make a one-step spike (a loss blowing up, a NaN
    recovery) vanish; keeping the extremes of every slice keeps the chart's envelope, and with it
    every spike, visible.

    How: a series of at most ``max_points`` points is returned unchanged (as new lists). A longer
    one keeps its first and last points, and its interior points are cut, by index, into
    ``(max_points - 2) // 2`` buckets of consecutive points (about ``max_points / 2``). From each
    bucket it keeps the point with the minimum value and the point with the maximum value, in their
    original order (one point when they are the same point, e.g. a bucket of one distinct value:
    the first occurrence wins ties). So the result has at most ``max_points`` points, and its steps
    are in the input's order (sorted if the input's were).

    Missing values: ``None`` and NaN floats never count as a minimum or a maximum. A bucket made
    only of missing values keeps its first point, value as given (``None`` or NaN), so a chart
    still shows a gap there; a missing value among real ones is dropped (the gap would be narrower
    than a pixel). The first and last points are kept whatever their value.

    Raises ``ValueError`` if ``steps`` and ``values`` differ in length or ``max_points < 2``.
    """
    if len(steps) != len(values):
        raise ValueError(f"steps and values differ in length: {len(steps)} != {len(values)}")
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2 (the first and last points), not {max_points}")
    n = len(values)
    if n <= max_points:
        return list(steps), list(values)

    xs = steps if isinstance(steps, list) else list(steps)
    ys = values if isinstance(values, list) else list(values)
    interior = n - 2  # indices 1 .. n - 2
    buckets = min(interior, (max_points - 2) // 2)

    keep = [0]  # indices of the kept points, in order
    append = keep.append
    for b in range(buckets):
        lo = 1 + b * interior // buckets
        hi = 1 + (b + 1) * interior // buckets
        chunk = ys[lo:hi]
        # Fast path, all in C: sum() raises on a None and is NaN when a NaN is present (or, rarely,
        # when inf and -inf are both there), so either way the careful loop below takes over.
        try:
            total = sum(chunk)
        except TypeError:
            total = None
        if total is not None and total == total:
            i = chunk.index(min(chunk))
            j = chunk.index(max(chunk))
        else:
            i, j = _extremes(chunk)
            if i < 0:  # only missing values: keep one, as a gap
                append(lo)
                continue
        if i < j:
            append(lo + i)
            append(lo + j)
        elif j < i:
            append(lo + j)
            append(lo + i)
        else:
            append(lo + i)
    append(n - 1)
    return [xs[k] for k in keep], [ys[k] for k in keep]


def _extremes(chunk: list[float | None]) -> tuple[int, int]:
    """Positions of the first minimum and first maximum in ``chunk``, skipping None and NaN;
    ``(-1, -1)`` when it has no real value."""
    lo_i = hi_i = -1
    lo_v = hi_v = 0.0
    for k, v in enumerate(chunk):
        if v is None or v != v:
            continue
        if lo_i < 0:
            lo_i = hi_i = k
            lo_v = hi_v = v
        elif v < lo_v:
            lo_i, lo_v = k, v
        elif v > hi_v:
            hi_i, hi_v = k, v
    return lo_i, hi_i
