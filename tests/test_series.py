"""Min/max decimation of metric series (runs.series): pure functions, no database."""

from __future__ import annotations

import math
import random

import pytest

from runs.series import downsample


def _noisy(n: int, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    return [math.sin(i / 300) + rng.random() * 0.1 for i in range(n)]


def _buckets(n: int, max_points: int) -> list[range]:
    """The interior buckets downsample uses (documented: (max_points - 2) // 2 of them)."""
    interior = n - 2
    count = min(interior, (max_points - 2) // 2)
    return [range(1 + b * interior // count, 1 + (b + 1) * interior // count) for b in range(count)]


def _missing(v: float | None) -> bool:
    return v is None or math.isnan(v)


@pytest.mark.parametrize(
    ("n", "max_points"),
    [(0, 1000), (1, 1000), (2, 2), (3, 3), (999, 1000), (1000, 1000), (10, 10), (5, 7)],
)
def test_it_returns_short_series_unchanged(n: int, max_points: int) -> None:
    steps = [float(s) for s in range(n)]
    values: list[float | None] = [v if i % 4 else None for i, v in enumerate(_noisy(n))]
    xs, ys = downsample(steps, values, max_points)
    assert xs == steps
    assert ys == values
    assert xs is not steps and ys is not values  # new lists: the caller's are not aliased


def test_it_returns_empty_lists_for_empty_input() -> None:
    assert downsample([], []) == ([], [])
    assert downsample((), (), max_points=2) == ([], [])


@pytest.mark.parametrize("n", [1001, 2000, 10_000, 100_000])
@pytest.mark.parametrize("max_points", [2, 3, 4, 5, 11, 100, 999, 1000])
def test_it_caps_long_series_and_keeps_first_and_last(n: int, max_points: int) -> None:
    steps = list(range(n))
    values = _noisy(n)
    xs, ys = downsample(steps, values, max_points)
    assert len(xs) == len(ys) <= max_points
    assert (xs[0], ys[0]) == (0, values[0])
    assert (xs[-1], ys[-1]) == (n - 1, values[-1])
    assert xs == sorted(set(xs))  # strictly increasing: no point twice, original order kept
    assert all(values[x] == y for x, y in zip(xs, ys, strict=True))  # real points, not averages


@pytest.mark.parametrize("max_points", [2, 3])
def test_it_keeps_only_first_and_last_when_there_is_no_room_for_a_bucket(max_points: int) -> None:
    xs, ys = downsample([0, 1, 2, 3, 4], [5.0, 1.0, 9.0, 2.0, 7.0], max_points)
    assert (xs, ys) == ([0, 4], [5.0, 7.0])


@pytest.mark.parametrize("max_points", [4, 5])
def test_it_keeps_the_extremes_of_a_single_bucket(max_points: int) -> None:
    # 4 and 5 both leave room for one bucket (its min and max) besides the first and last points.
    xs, ys = downsample([0, 1, 2, 3, 4, 5], [5.0, 3.0, 9.0, 1.0, 4.0, 6.0], max_points)
    assert (xs, ys) == ([0, 2, 3, 5], [5.0, 9.0, 1.0, 6.0])


@pytest.mark.parametrize("max_points", [7, 100, 501, 1000])
@pytest.mark.parametrize(("spike_at", "spike"), [(1, 1e6), (12_345, 1e6), (50_000, -1e6), (99_998, 42.0)])
def test_it_lets_a_single_spike_survive(max_points: int, spike_at: int, spike: float) -> None:
    values = [0.5] * 100_000
    values[spike_at] = spike
    xs, ys = downsample(range(100_000), values, max_points)
    assert len(xs) <= max_points
    assert (spike_at, spike) in zip(xs, ys, strict=True)


@pytest.mark.parametrize(("n", "max_points"), [(5000, 1000), (5000, 999), (12_345, 100), (1001, 1000), (3000, 11)])
def test_it_keeps_the_min_and_max_of_every_bucket(n: int, max_points: int) -> None:
    values = _noisy(n, seed=n)
    xs, ys = downsample(list(range(n)), values, max_points)
    kept = dict(zip(xs, ys, strict=True))
    expected = {0, n - 1}
    for bucket in _buckets(n, max_points):
        lowest = min(bucket, key=values.__getitem__)
        highest = max(bucket, key=values.__getitem__)
        assert kept.get(lowest) == values[lowest]
        assert kept.get(highest) == values[highest]
        expected |= {lowest, highest}
    assert xs == sorted(expected)  # exactly these points: the extremes of each bucket, first, last


@pytest.mark.parametrize("max_points", [10, 101, 1000])
def test_it_keeps_steps_sorted(max_points: int) -> None:
    rng = random.Random(3)
    steps = sorted(rng.uniform(0, 1e6) for _ in range(20_000))  # uneven steps
    values = [rng.gauss(0, 1) for _ in steps]
    xs, ys = downsample(steps, values, max_points)
    assert xs == sorted(xs)
    assert len(set(xs)) == len(xs)
    assert xs[0] == steps[0] and xs[-1] == steps[-1]


@pytest.mark.parametrize("missing", [None, math.nan], ids=["None", "NaN"])
def test_it_keeps_a_gap_where_a_bucket_has_no_value(missing: float | None) -> None:
    n, max_points = 10_000, 100  # 49 buckets of ~204 points
    values: list[float | None] = list(_noisy(n))
    for i in range(4000, 6000):  # covers several whole buckets
        values[i] = missing
    xs, ys = downsample(list(range(n)), values, max_points)
    assert len(xs) <= max_points
    gap = [(x, y) for x, y in zip(xs, ys, strict=True) if _missing(y)]
    whole = [b for b in _buckets(n, max_points) if b.start >= 4000 and b.stop <= 6000]
    assert len(whole) >= 8
    assert [x for x, _ in gap] == [b.start for b in whole]  # one missing point per empty bucket
    assert all(y is missing for _, y in gap)  # passed through as given
    assert xs == sorted(xs)


@pytest.mark.parametrize("missing", [None, math.nan], ids=["None", "NaN"])
def test_it_does_not_count_missing_values_as_min_or_max(missing: float | None) -> None:
    n, max_points = 1000, 10  # 4 buckets of ~250 points
    values: list[float | None] = [1.0 + (i % 7) for i in range(n)]
    for i in range(0, n, 3):
        values[i] = missing
    values[0] = values[-1] = 4.0
    values[300] = -5.0
    values[301] = 50.0
    xs, ys = downsample(list(range(n)), values, max_points)
    assert len(xs) <= max_points
    assert (300, -5.0) in zip(xs, ys, strict=True) and (301, 50.0) in zip(xs, ys, strict=True)
    assert not any(_missing(y) for y in ys)  # every bucket has real values: no gap


@pytest.mark.parametrize("missing", [None, math.nan], ids=["None", "NaN"])
def test_it_keeps_missing_first_and_last_points(missing: float | None) -> None:
    values: list[float | None] = [missing, *_noisy(5000), missing]
    xs, ys = downsample(range(len(values)), values, 50)
    assert xs[0] == 0 and ys[0] is missing
    assert xs[-1] == len(values) - 1 and ys[-1] is missing


def test_it_handles_infinities_as_real_values() -> None:
    values = [0.0] * 10_000
    values[10] = math.inf
    values[20] = -math.inf
    xs, ys = downsample(range(10_000), values, 100)
    assert (10, math.inf) in zip(xs, ys, strict=True)
    assert (20, -math.inf) in zip(xs, ys, strict=True)


@pytest.mark.parametrize(
    ("steps", "values", "max_points"),
    [([1, 2], [1.0], 1000), ([1, 2, 3], [1.0, 2.0, 3.0], 1), ([1], [1.0], 0)],
    ids=["length-mismatch", "max_points-1", "max_points-0"],
)
def test_it_rejects_bad_arguments(steps: list[float], values: list[float | None], max_points: int) -> None:
    with pytest.raises(ValueError):
        downsample(steps, values, max_points)
