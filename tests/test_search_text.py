"""Run.search_text, the one column free text searches: it stays current through every path that
changes a run's id, display name, description or tags, and it finds what ``icontains`` found."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client

from runs import sdk
from runs.models import Run, Workspace, search_text_of
from tests.conftest import make_run


def assert_current(run_id: str) -> Run:
    """The stored text is the one the run's fields and tags give now."""
    run = Run.objects.get(run_id=run_id)
    tags = dict(run.tag_set.values_list("key", "value"))
    assert run.search_text == search_text_of(run.run_id, run.display_name, run.description, tags)
    return run


def found(word: str) -> set[str]:
    return set(Run.objects.search(word).values_list("run_id", flat=True))


@pytest.mark.django_db(transaction=True)
def test_sdk_paths_keep_it_current(ws: sdk.Workspace) -> None:
    run = sdk.Experiment(ws, "sdk").start_logging(
        display_name="Baseline", description="First *try*", tags={"team": "Vision", "flag": None}
    )
    assert_current(run.id)
    assert found("vision") == found("baseline") == found("FIRST") == found("flag") == {run.id}

    run.display_name = "Distilled"
    run.description = "second try"
    run.tag("quality", "Great")
    run.set_tags({"team": "audio"})
    run.remove_tags(["flag"])
    assert_current(run.id)
    assert found("distilled") == found("second") == found("great") == found("audio") == {run.id}
    assert found("baseline") == found("vision") == found("flag") == set()

    children = run.create_children(tag_key="lr", tag_values=["0.1", "0.01"])
    (named,) = run.create_children(count=1)
    child = run.child_run(name="Student")
    for each in [*children, named, child]:
        assert_current(each.id)
    assert found("0.01") == {children[1].id}
    assert found("batch_index") == {named.id}
    assert found("student") == {child.id}


@pytest.mark.django_db
def test_api_paths_keep_it_current(alice_api: Any) -> None:
    made = alice_api.post(
        "/api/v1/workspaces/default/experiments/api/runs/",
        {"displayName": "Baseline", "description": "notes", "tags": {"team": "vision"}},
        format="json",
    )
    run_id = made.json()["runId"]
    assert_current(run_id)
    assert found("vision") == {run_id}

    alice_api.patch(f"/api/v1/runs/{run_id}/", {"displayName": "Renamed", "description": "News"}, format="json")
    alice_api.patch(f"/api/v1/runs/{run_id}/tags/", {"set": {"owner": "Dora"}, "remove": ["team"]}, format="json")
    assert_current(run_id)
    assert found("renamed") == found("news") == found("dora") == {run_id}
    assert found("baseline") == found("vision") == set()

    children = alice_api.post(
        f"/api/v1/runs/{run_id}/children/", {"runs": [{"displayName": "kid", "tags": {"seed": "7"}}]}, format="json"
    ).json()
    assert_current(children[0]["runId"])
    assert found("kid") == {children[0]["runId"]}


@pytest.mark.django_db
def test_studio_paths_keep_it_current(client: Client, workspace: Workspace, alice: Any) -> None:
    run = make_run(workspace, alice, display_name="baseline", tags={"team": "vision"})
    client.force_login(alice)
    base = f"/w/default/runs/{run.run_id}/"
    client.post(base + "update/", {"display_name": "Improved"})
    client.post(base + "update/", {"description": "Findings"})
    client.post(base + "tags/", {"key": "Owner", "value": "Dora"})
    client.post(base + "tags/", {"remove": "team"})
    assert_current(run.run_id)
    assert found("improved") == found("findings") == found("owner") == found("dora") == {run.run_id}
    assert found("vision") == set()


# Names and words where Python's lower() and the databases' case folding disagree: SQLite's LIKE
# folds ASCII only; PostgreSQL's UPPER() maps dotless ı to I and ſ to S; lower() writes a final ς.
NAMES = ["ΟΔΟΣ", "Ärger", "DISTILLATION", "ıi", "ſtar", "Straße", "Kelvin K", "µm"]
WORDS = ["Σ", "σ", "ς", "οδος", "ÄRGER", "ärger", "Ä", "distill", "I", "ı", "i", "S", "STAR", "ß", "SS", "k", "μ", "M"]


@pytest.mark.django_db
def test_a_word_finds_at_least_what_icontains_found(workspace: Workspace, alice: Any) -> None:
    for name in NAMES:
        make_run(workspace, alice, display_name=name)
    for word in WORDS:
        before = set(Run.objects.filter(display_name__icontains=word).values_list("run_id", flat=True))
        assert before <= found(word), word
    assert {Run.objects.get(run_id=run_id).display_name for run_id in found("ärger")} == {"Ärger"}
    assert {Run.objects.get(run_id=run_id).display_name for run_id in found("Σ")} == {"ΟΔΟΣ"}


@pytest.mark.django_db
def test_a_word_cannot_match_across_two_fields(workspace: Workspace, alice: Any) -> None:
    run = make_run(workspace, alice, display_name="alpha", description="beta")
    assert found("alpha") == found("beta") == {run.run_id}
    assert found("alphabeta") == found('"alpha\x1fbeta"') == set()


@pytest.mark.django_db
@pytest.mark.parametrize("named_ids_max", [1000, 1])  # a list of ids, or (past the limit) a subquery
def test_a_word_finds_runs_by_their_experiment_or_submitter(
    workspace: Workspace, alice: Any, bob: Any, monkeypatch: pytest.MonkeyPatch, named_ids_max: int
) -> None:
    monkeypatch.setattr("runs.query.NAMED_IDS_MAX", named_ids_max)
    by_experiment = [make_run(workspace, alice, name, display_name="x").run_id for name in ("Vision-A", "vision-b")]
    by_user = make_run(workspace, bob, "other", display_name="y").run_id
    plain = make_run(workspace, alice, "other", display_name="z").run_id
    assert found("VISION") == set(by_experiment)
    assert found("BOB") == {by_user}
    assert found("other") == {by_user, plain}
    assert found("nothing-like-it") == set()


@pytest.mark.django_db
def test_on_sqlite_a_word_is_matched_in_the_search_index(workspace: Workspace, alice: Any) -> None:
    """Migration 0008: SQLite reads search_text from an index, not from every run's row."""
    matching = make_run(workspace, alice, "exp", description="knowledge distillation").run_id
    make_run(workspace, alice, "exp", description="plain training")
    runs = Run.objects.filter(workspace=workspace, parent__isnull=True).search("Distill")
    assert set(runs.values_list("run_id", flat=True)) == {matching}
    if connection.vendor == "sqlite":  # (PostgreSQL has no such index: see the migration)
        assert "COVERING INDEX runs_run_ws_parent_search" in runs.values_list("pk").explain()


@pytest.mark.django_db
def test_on_postgresql_a_word_can_be_found_through_trigrams(workspace: Workspace, alice: Any) -> None:
    """Migration 0009: the trigram index serves the search's LIKE (with few runs the planner would
    rather read them all, so sequential scans are turned off to see that it can)."""
    matching = make_run(workspace, alice, "exp", description="knowledge distillation").run_id
    make_run(workspace, alice, "exp", description="plain training")
    runs = Run.objects.filter(workspace=workspace, parent__isnull=True).search("Distill")
    assert set(runs.values_list("run_id", flat=True)) == {matching}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
        assert "runs_run_search_trgm" in Run.objects.search("Distill").values_list("pk").explain()
