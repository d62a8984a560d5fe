"""The REST runs list (issue 15): pages planned as the studio plans its table's (runs/pages.py), a
count only where it costs no reading of every match, rows written without DRF's per-field machinery,
and a constant number of queries whatever the page's length."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rest_framework import serializers

from runs import pages
from runs.api.serializers import RunSerializer
from runs.models import Experiment, Run, RunSpec
from tests.conftest import make_run

pytestmark = pytest.mark.django_db
RUNS = "/api/v1/workspaces/default/runs/"


@pytest.fixture
def many(workspace: Any, alice: Any, settings: Any) -> list[Run]:
    """25 runs: every third on team vision, losses in a shuffled order, every fifth without one."""
    settings.RUNS_PAGE_SIZE = 4
    made = []
    for i in range(25):
        run = make_run(workspace, alice, "sweep", display_name=f"run {i}",
                       tags={"team": "vision" if i % 3 == 0 else "nlp", "seed": str(i)})  # fmt: skip
        if i % 5:
            run.log_metrics([{"name": "loss", "value": (i * 7) % 11 / 10, "step": 0}])
        made.append(run)
    return made


def all_pages(api: Any, params: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """Every page's run ids, following ``next``, and each page's count."""
    ids, counts = [], []
    body = api.get(RUNS, params).json()
    while True:
        ids += [run["runId"] for run in body["results"]]
        counts.append(body["count"])
        if not body["next"]:
            return ids, counts
        body = api.get(body["next"]).json()


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"sort": "-metrics.loss"},
        {"sort": "metrics.loss"},
        {"q": "tags.team = vision"},
        {"q": "tags.team = vision", "sort": "-metrics.loss"},
        {"q": "tags.team = nlp", "sort": "display_name"},
    ],
)
@pytest.mark.parametrize("walk", [2000, 6])  # pages found by walking the sort's index, or some too far for it
def test_the_pages_hold_every_match_once_in_order(
    alice_api: Any, many: list[Run], params: dict[str, str], walk: int, monkeypatch: Any
) -> None:
    monkeypatch.setattr(pages, "WALK", walk)
    monkeypatch.setattr(pages, "WALKING_DATABASES", ("sqlite", "postgresql"))  # the walk's rule, on each
    ids, counts = all_pages(alice_api, params)
    expected = (
        Run.objects.filter(parent=None).listed().search(params.get("q", "")).sorted_by(params.get("sort", "-created"))
    )
    assert ids == list(expected.values_list("run_id", flat=True))
    if params.get("q"):
        # Filtered: counted only on the last page, where the matches end.
        assert counts == [None] * (len(counts) - 1) + [len(ids)]
    else:
        assert counts == [25] * len(counts)


def test_a_filtered_count_comes_when_asked_for(alice_api: Any, many: list[Run]) -> None:
    body = alice_api.get(RUNS, {"q": "tags.team = nlp"}).json()
    assert body["count"] is None and body["next"] and len(body["results"]) == 4
    assert alice_api.get(RUNS, {"q": "tags.team = nlp", "count": "true"}).json()["count"] == 16


def test_pages_link_to_each_other(alice_api: Any, many: list[Run]) -> None:
    first = alice_api.get(RUNS, {"q": "tags.team = nlp", "page_size": 5}).json()
    second = alice_api.get(first["next"]).json()
    assert "page=2" in first["next"] and "page_size=5" in first["next"] and first["previous"] is None
    assert "page=" not in second["previous"] and "page_size=5" in second["previous"]
    assert alice_api.get(second["previous"]).json()["results"] == first["results"]


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [({"page": "0"}, 400, "page"), ({"page": "x"}, 400, "page"), ({"page_size": "-1"}, 400, "page_size"),
     ({"page": "99"}, 404, None), ({"page": "99", "q": "tags.team = vision"}, 404, None)],
)  # fmt: skip
def test_a_page_that_is_not_there(
    alice_api: Any, many: list[Run], params: dict[str, str], status: int, field: str | None
) -> None:
    response = alice_api.get(RUNS, params)
    assert response.status_code == status
    if field:
        assert field in response.json()["error"]["message"]


def test_a_page_size_is_capped(alice_api: Any, many: list[Run], settings: Any) -> None:
    settings.RUNS_MAX_PAGE_SIZE = 10
    assert len(alice_api.get(RUNS, {"page_size": 1000}).json()["results"]) == 10


def test_the_queries_do_not_grow_with_the_page(
    alice_api: Any, many: list[Run], django_assert_max_num_queries: Any
) -> None:
    for run in many:
        run.append_log("logs/driver.log", 0, b"hello\n")
    # The token 1 (and 1 to note its first use), the workspace 1, the page's keys 2 on SQLite (the
    # first runs in the sort's order, those of them that match), its rows 1, and their tags,
    # properties, log files and live logs 1; a filtered page no count.
    with django_assert_max_num_queries(7):
        body = alice_api.get(RUNS, {"q": "tags.seed != x", "page_size": 25}).json()
    assert len(body["results"]) == 25 and all(run["logFiles"] for run in body["results"])


def test_a_run_is_written_as_drf_reads_its_fields(workspace: Any, alice: Any, bob: Any) -> None:
    """RunSerializer writes its fields itself (for speed): the same as DRF's own reading of them."""
    experiment, _ = Experiment.ensure(workspace, "scripts")
    (script,) = experiment.create_runs(
        [RunSpec(type=Run.Type.SCRIPT, script="train.py", arguments=["--lr", "0.1"], status=Run.Status.NOT_STARTED,
                 tags={"flag": None, "team": "vision"}, properties={"commit": "abc"}, description="**bold**")],
        by=alice,
    )  # fmt: skip
    failed = make_run(workspace, bob, "scripts", display_name="diverged")
    failed.add_file("logs/train.log", io.BytesIO(b"x"))
    failed.append_log("logs/live.log", 0, b"y\n")
    failed.fail(code="UserError", message="loss is NaN", details="Traceback ...")
    (child,) = experiment.create_runs([RunSpec(display_name="child")], by=alice, parent=failed)
    archived = make_run(workspace, alice, "scripts")
    Run.objects.filter(pk=archived.pk).update(archived_at=failed.ended_at)
    for run in Run.objects.in_list([script.pk, failed.pk, child.pk, archived.pk]):
        written = RunSerializer(run).data
        read = serializers.Serializer.to_representation(RunSerializer(run), run)
        assert written == {key: value for key, value in read.items() if value is not None}
        assert list(written) == [key for key in RunSerializer().fields if key in written]
    assert RunSerializer(Run.objects.in_list([failed.pk])[0]).data["logFiles"].keys() == {
        "logs/live.log",
        "logs/train.log",
    }


def test_only_a_filter_on_keyed_values_walks_the_sort_index() -> None:
    from runs.query import parse, tests_keyed_values

    assert tests_keyed_values(parse("tags.team = vision"))
    assert tests_keyed_values(parse("status = Failed and not metrics.loss > 1"))
    assert tests_keyed_values(parse("has properties.commit or resnet"))
    assert not tests_keyed_values(parse("resnet and status = Failed"))
    assert not tests_keyed_values(parse(""))
