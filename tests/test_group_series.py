"""A metric over steps per group of runs (runs/group_series.py): the mean, min and max at each step
against Python's ``statistics``, one and two keys, runs without a key, points that are not numbers
or not finite, max_groups, downsampling that keeps the band's extremes, and a constant number of
queries."""

from __future__ import annotations

import json
import math
import random
import statistics
from collections import defaultdict
from typing import Any

import pytest

from runs import groups
from runs.group_series import group_series
from runs.models import Run
from tests.conftest import make_run

pytestmark = pytest.mark.django_db


def _run(workspace: Any, user: Any, points: list[tuple[int, Any]], **spec: Any) -> Run:
    run = make_run(workspace, user, "sweep", **spec)
    if points:
        run.log_metrics([{"name": "loss", "value": value, "step": step} for step, value in points])
    return run


def _expected(runs_points: list[list[tuple[int, Any]]]) -> dict[int, tuple[float, float, float]]:
    """Step -> (mean, min, max) over every numeric point of the runs at that step, in Python."""
    at: dict[int, list[float]] = defaultdict(list)
    for points in runs_points:
        for step, value in points:
            if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value):
                at[step].append(float(value))
    return {step: (statistics.fmean(values), min(values), max(values)) for step, values in sorted(at.items())}


def _as_expected(series: dict[str, Any]) -> dict[int, tuple[float, float, float]]:
    band = series["band"]
    return {x: (y, lo, hi) for x, y, lo, hi in zip(series["x"], series["y"], band["lo"], band["hi"], strict=True)}


def _assert_matches(series: dict[str, Any], expected: dict[int, tuple[float, float, float]]) -> None:
    found = _as_expected(series)
    assert list(found) == list(expected)
    for step, (mean, lo, hi) in expected.items():
        assert found[step][0] == pytest.approx(mean, rel=1e-12), step
        assert found[step][1:] == (lo, hi), step


@pytest.fixture
def sweep(workspace: Any, alice: Any) -> dict[tuple[str | None, str | None], list[list[tuple[int, Any]]]]:
    """Runs by (lr, model), each with its loss points: seeds that logged different steps, one that
    logged a step twice, and a run without a model."""
    rng = random.Random(13)
    made: dict[tuple[str | None, str | None], list[list[tuple[int, Any]]]] = {
        ("0.01", "cnn"): [
            [(step, rng.uniform(0, 3)) for step in range(0, 40)],
            [(step, rng.uniform(0, 3)) for step in range(0, 60, 2)],
            [(step, rng.uniform(0, 3)) for step in range(0, 40)] + [(5, 10.0), (5, -4.0)],  # step 5 thrice
        ],
        ("0.01", "mlp"): [[(step, rng.uniform(0, 3)) for step in range(30)] for _ in range(2)],
        ("0.1", "cnn"): [[(step, 1.0 + step) for step in range(10)]],
        ("0.1", None): [[(0, 7.5), (3, 2.5)]],
    }
    for (lr, model), runs_points in made.items():
        for points in runs_points:
            _run(workspace, alice, points, properties={"lr": lr}, tags={"model": model} if model else {})
    return made


def test_the_mean_min_and_max_at_each_step_are_statistics(sweep: Any, workspace: Any) -> None:
    spec = group_series(Run.objects.filter(workspace=workspace), ["properties.lr"], "loss")
    assert (spec["title"], spec["xLabel"]) == ("loss over steps", "step")
    assert [(s["label"], s["runs"]) for s in spec["series"]] == [("lr=0.01", 5), ("lr=0.1", 2)]
    small = sweep["0.01", "cnn"] + sweep["0.01", "mlp"]
    _assert_matches(spec["series"][0], _expected(small))
    _assert_matches(spec["series"][1], _expected(sweep["0.1", "cnn"] + sweep["0.1", None]))
    # Step 5 of the (0.01, cnn) runs: all three points of the run that logged it thrice count.
    mean5, lo5, hi5 = _as_expected(spec["series"][0])[5]
    assert (lo5, hi5) == (-4.0, 10.0)


def test_two_keys_and_runs_without_a_key_come_last(sweep: Any, workspace: Any) -> None:
    runs = Run.objects.filter(workspace=workspace)
    spec = group_series(runs, ["properties.lr", "tags.model"], "loss")
    assert [(s["label"], s["runs"]) for s in spec["series"]] == [
        ("lr=0.01 · model=cnn", 3),
        ("lr=0.01 · model=mlp", 2),
        ("lr=0.1 · model=cnn", 1),
        ("lr=0.1 · model=(none)", 1),
    ]
    # The groups and their order are run_groups' (the table's rows).
    assert [g.key for g in groups.run_groups(runs, ["properties.lr", "tags.model"], [])] == [
        ("0.01", "cnn"),
        ("0.01", "mlp"),
        ("0.1", "cnn"),
        ("0.1", None),
    ]
    for series, key in zip(spec["series"], sweep, strict=True):
        _assert_matches(series, _expected(sweep[key]))
    assert spec["series"][3]["band"] == {"lo": [7.5, 2.5], "hi": [7.5, 2.5]}  # one run: the band is the line


def test_plain_keys_group_as_run_groups_does(sweep: Any, workspace: Any, alice: Any) -> None:
    other = make_run(workspace, alice, "other")
    other.log_metrics([{"name": "loss", "value": 1.0, "step": 0}])
    spec = group_series(Run.objects.filter(workspace=workspace), ["experiment", "status"], "loss")
    assert [(s["label"], s["runs"]) for s in spec["series"]] == [
        ("experiment=other · status=Running", 1),
        ("experiment=sweep · status=Running", 7),
    ]
    assert (spec["series"][0]["x"], spec["series"][0]["y"]) == ([0], [1.0])


def test_points_that_are_not_numbers_are_left_out(workspace: Any, alice: Any) -> None:
    a = [(0, 1.0), (1, "diverged"), (2, float("nan")), (3, 3.0), (4, True)]
    b = [(0, 3.0), (1, 2.0), (2, False), (3, "n/a")]
    c = [(9, "text only")]  # a step with no number at all: no entry
    for points in (a, b, c):
        _run(workspace, alice, points, tags={"model": "cnn"})
    (series,) = group_series(Run.objects.filter(workspace=workspace), ["tags.model"], "loss")["series"]
    assert series["runs"] == 3
    assert _as_expected(series) == {0: (2.0, 1.0, 3.0), 1: (2.0, 2.0, 2.0), 3: (3.0, 3.0, 3.0)}


def test_values_that_are_not_finite_are_sent_as_null(workspace: Any, alice: Any) -> None:
    _run(workspace, alice, [(0, 1.0), (1, float("inf")), (2, 5.0)], tags={"model": "cnn"})
    _run(workspace, alice, [(0, 3.0), (1, 2.0), (2, float("-inf"))], tags={"model": "cnn"})
    spec = group_series(Run.objects.filter(workspace=workspace), ["tags.model"], "loss")
    (series,) = spec["series"]
    assert series["x"] == [0, 1, 2]
    assert series["y"] == [2.0, None, None]
    assert series["band"] == {"lo": [1.0, 2.0, None], "hi": [3.0, None, 5.0]}
    json.dumps(spec, allow_nan=False)  # strict JSON: would raise on a NaN or an infinity


def test_max_groups_keeps_the_first_groups_in_run_groups_order(sweep: Any, workspace: Any) -> None:
    runs = Run.objects.filter(workspace=workspace)
    spec = group_series(runs, ["properties.lr", "tags.model"], "loss", max_groups=2)
    assert [s["label"] for s in spec["series"]] == ["lr=0.01 · model=cnn", "lr=0.01 · model=mlp"]
    _assert_matches(spec["series"][0], _expected(sweep["0.01", "cnn"]))
    _assert_matches(spec["series"][1], _expected(sweep["0.01", "mlp"]))
    # A group without the key among those shown: its filter is IS NULL, not = NULL.
    spec = group_series(runs.exclude(tag_set__key="model", tag_set__value="mlp"), ["tags.model"], "loss", max_groups=2)
    assert [(s["label"], s["runs"]) for s in spec["series"]] == [("model=cnn", 4), ("model=(none)", 1)]
    _assert_matches(spec["series"][1], _expected(sweep["0.1", None]))


def test_a_group_without_the_metric_has_empty_lists(sweep: Any, workspace: Any, alice: Any) -> None:
    make_run(workspace, alice, "sweep", properties={"lr": "1.0"}).log_metrics([{"name": "accuracy", "value": 0.5}])
    spec = group_series(Run.objects.filter(workspace=workspace), ["properties.lr"], "loss")
    assert spec["series"][2] == {"label": "lr=1.0", "x": [], "y": [], "band": {"lo": [], "hi": []}, "runs": 1}
    assert group_series(Run.objects.filter(workspace=workspace), ["properties.lr"], "nothing")["series"][0]["x"] == []
    assert group_series(Run.objects.none(), ["properties.lr"], "loss")["series"] == []


def test_downsampling_merges_buckets_and_keeps_the_band_s_extremes(workspace: Any, alice: Any) -> None:
    rng = random.Random(5)
    runs_points = [[(step, rng.uniform(0, 1)) for step in range(3, 2503)] for _ in range(3)]
    runs_points[1][1234] = (1237, 50.0)  # a one-step spike in one run
    runs_points[2][777] = (780, -50.0)
    for points in runs_points:
        _run(workspace, alice, points, tags={"model": "cnn"})
    (series,) = group_series(Run.objects.filter(workspace=workspace), ["tags.model"], "loss", max_points=100)["series"]
    # 2,500 steps from 3: buckets of 25 steps, from the smallest step logged.
    assert series["x"] == list(range(3, 2503, 25))
    assert max(series["band"]["hi"]) == 50.0 and min(series["band"]["lo"]) == -50.0
    for i, x in enumerate(series["x"]):
        values = [value for points in runs_points for step, value in points if x <= step < x + 25]
        assert series["y"][i] == pytest.approx(statistics.fmean(values), rel=1e-12)
        assert (series["band"]["lo"][i], series["band"]["hi"][i]) == (min(values), max(values))


def test_sparse_steps_are_not_merged_and_every_series_fits_max_points(workspace: Any, alice: Any) -> None:
    _run(workspace, alice, [(step, 1.0) for step in range(0, 100_000, 1000)], tags={"model": "cnn"})
    _run(workspace, alice, [(step, 2.0) for step in range(0, 1000)], tags={"model": "mlp"})
    spec = group_series(Run.objects.filter(workspace=workspace), ["tags.model"], "loss", max_points=200)
    cnn, mlp = spec["series"]
    assert cnn["x"] == list(range(0, 100_000, 1000))  # one step a bucket: the real steps
    assert mlp["x"] == [0, 496, 992]  # 99,001 steps in 200 buckets: 496 steps each
    assert all(len(s["x"]) <= 200 for s in spec["series"])


def test_the_number_of_queries_is_constant(workspace: Any, alice: Any, django_assert_max_num_queries: Any) -> None:
    def chart() -> dict[str, Any]:
        return group_series(Run.objects.filter(workspace=workspace), ["properties.lr", "tags.seed"], "loss")

    _run(workspace, alice, [(0, 1.0)], properties={"lr": "0.1"}, tags={"seed": "0"})
    with django_assert_max_num_queries(3):
        assert len(chart()["series"]) == 1
    for lr in range(4):
        for seed in range(4):
            points = [(step, float(step * seed)) for step in range(50)]
            _run(workspace, alice, points, properties={"lr": str(lr)}, tags={"seed": str(seed)})
    with django_assert_max_num_queries(3):
        assert len(chart()["series"]) == 10  # of 17 groups: max_groups


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        group_series(Run.objects.none(), ["status"], "loss", max_points=0)
