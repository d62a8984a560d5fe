"""The studio's bulk actions (templates/studio/run_bulk.html): a page that confirms how many runs an
action changes, works without JavaScript, keeps what was typed when refused, and goes back to the
table saying what changed and what was skipped."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from pytest_django.asserts import assertContains

from runs.models import Experiment, Run
from tests.conftest import make_run

pytestmark = pytest.mark.django_db
BULK = "/w/default/runs/bulk/"
BACK = "/w/default/runs/?q=tags.sweep+%3D+lr"


@pytest.fixture
def runs(workspace: Any, alice: Any) -> list[Run]:
    made = [make_run(workspace, alice, "sweep", display_name=f"lr {i}", tags={"sweep": "lr"}) for i in range(3)]
    made[2].transition(Run.Status.COMPLETED)
    make_run(workspace, alice, "other", display_name="elsewhere")
    Experiment.ensure(workspace, "kept")
    return made


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_a_ticked_runs_action_is_confirmed_then_done(client: Client, runs: list[Run], alice: Any) -> None:
    client.force_login(alice)
    ticked = {"action": "cancel", "runs": [runs[0].run_id, runs[2].run_id], "next": BACK}
    confirm = client.get(BULK, ticked)
    assertContains(confirm, '<h1 id="bulk-title">Cancel 2 runs?</h1>', html=True)
    assertContains(confirm, "lr 0")
    done = client.post(BULK, ticked, follow=True)
    assert done.redirect_chain == [(BACK, 302)]
    assert messages_of(done) == [f"Canceled 1 run. Skipped 1: {runs[2].run_id} cannot be canceled: it is Completed."]
    runs[0].refresh_from_db()
    assert runs[0].status == Run.Status.CANCELED


def test_all_the_runs_the_table_matches_not_only_a_page(client: Client, runs: list[Run], alice: Any) -> None:
    client.force_login(alice)
    every = {"action": "tag", "all_matching": "tags.sweep = lr", "next": BACK}
    assertContains(client.get(BULK, every), "Tag 3 runs?")
    done = client.post(BULK, {**every, "tags": "reviewed, batch=7"}, follow=True)
    assert messages_of(done) == ["Tagged 3 runs."]
    assert all(run.get_tags() == {"sweep": "lr", "reviewed": None, "batch": "7"} for run in runs)
    moved = client.post(BULK, {"action": "move", "all_matching": "tags.batch = 7", "experiment": "kept"}, follow=True)
    assert messages_of(moved) == ["Moved 3 runs."]
    assert moved.redirect_chain == [("/w/default/runs/", 302)]  # no next: the table


def test_a_refused_action_keeps_what_was_typed(client: Client, runs: list[Run], alice: Any) -> None:
    client.force_login(alice)
    refused = client.post(BULK, {"action": "move", "runs": [runs[0].run_id], "experiment": "nowhere", "next": BACK})
    assert refused.status_code == 400
    assertContains(refused, "has no experiment", status_code=400)
    assertContains(refused, 'aria-invalid="true" aria-describedby="experiment-error"', status_code=400)
    bad_tags = client.post(BULK, {"action": "tag", "runs": [runs[0].run_id], "tags": "=x"})
    assertContains(bad_tags, 'value="=x"', status_code=400)
    assert runs[0].get_tags() == {"sweep": "lr"}


def test_nothing_chosen_says_what_to_do(client: Client, runs: list[Run], alice: Any) -> None:
    client.force_login(alice)
    assertContains(client.get(BULK, {"action": "cancel"}), "No runs were chosen: tick the runs to cancel")


def test_readers_cannot_and_the_way_back_stays_on_the_site(
    client: Client, runs: list[Run], alice: Any, bob: Any
) -> None:
    client.force_login(bob)  # a Reader
    assert client.get(BULK, {"action": "cancel", "runs": runs[0].run_id}).status_code == 403
    assert client.post(BULK, {"action": "cancel", "runs": runs[0].run_id}).status_code == 403
    client.force_login(alice)
    elsewhere = client.post(
        BULK, {"action": "tag", "runs": runs[0].run_id, "tags": "x", "next": "https://evil.example/"}
    )
    assert elsewhere["Location"] == "/w/default/runs/"
    assert client.get(BULK, {"action": "explode"}).status_code == 400


def test_the_table_offers_the_actions_to_writers_only(client: Client, runs: list[Run], alice: Any, bob: Any) -> None:
    client.force_login(alice)
    assertContains(
        client.get("/w/default/runs/"), 'formaction="/w/default/runs/bulk/" class="danger">Cancel runs…</button>'
    )
    client.force_login(bob)
    assert b"Act on selected" not in client.get("/w/default/runs/").content


def test_all_matching_on_an_experiments_page_stays_in_that_experiment(
    client: Client, runs: list[Run], alice: Any, settings: Any, monkeypatch: Any
) -> None:
    from studio import views

    monkeypatch.setattr(views, "RUNS_PER_PAGE", 1)  # more runs than a page: "all N matching" is offered
    client.force_login(alice)
    page = client.get("/w/default/experiments/sweep/", {"q": "lr"}).content.decode()
    assert 'name="all_matching" value="lr and experiment = sweep"' in page
    assertContains(
        client.get(BULK, {"action": "cancel", "all_matching": "lr and experiment = sweep"}), "Cancel 3 runs?"
    )
