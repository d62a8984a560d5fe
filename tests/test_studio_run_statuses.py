"""The runs table's live status badges: one poll for the whole table, answered with the badges of
its live runs as out-of-band swaps, and 286 (stop polling) once none of them is alive."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_django.asserts import assertContains, assertNotContains

from runs.models import Run, RunSpec
from tests.conftest import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(workspace: Any, alice: Any) -> dict[str, Run]:
    live = make_run(workspace, alice, "mnist", display_name="still going")
    done = make_run(workspace, alice, "mnist", display_name="all done")
    done.transition(Run.Status.COMPLETED)
    return {"live": live, "done": done}


def as_user(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def statuses(client: Client, *runs: Run) -> Any:
    return client.get("/w/default/statuses/", {"runs": [run.run_id for run in runs]}, headers={"HX-Request": "true"})


def test_the_table_polls_once_for_all_its_live_badges(client: Client, runs: dict[str, Run], alice: Any) -> None:
    page = as_user(client, alice).get("/w/default/runs/").content.decode()
    assert page.count('id="badge-poll"') == 1 and page.count("every 5s") == 1  # one poller, not one per row
    live, done = runs["live"], runs["done"]
    assert f'<span id="status-{live.pk}" class="badge live">Running</span>' in page
    assert f'<input type="hidden" name="runs" value="{live.run_id}" form="badge-poll">' in page
    assert '<span class="badge ok">Completed</span>' in page  # an ended run's badge never changes: no id
    assert f'value="{done.run_id}" form="badge-poll"' not in page
    assert "run_status_badge" not in page and 'hx-trigger="every 2s"' not in page  # no per-row poller


def test_a_table_with_nothing_alive_or_no_status_column_does_not_poll(
    client: Client, runs: dict[str, Run], alice: Any
) -> None:
    as_user(client, alice)
    assertNotContains(client.get("/w/default/runs/", {"q": "status = Completed"}), "/statuses/")
    assertNotContains(client.get("/w/default/runs/", {"cols": "name,created"}), "/statuses/")


def test_it_answers_the_badges_out_of_band_and_stops_once_none_is_alive(
    client: Client, runs: dict[str, Run], alice: Any
) -> None:
    live, done = runs["live"], runs["done"]
    response = statuses(as_user(client, alice), live, done)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'<span id="status-{live.pk}" class="badge live" hx-swap-oob="true">Running</span>' in body
    assert f'<span id="status-{done.pk}" class="badge ok" hx-swap-oob="true">Completed</span>' in body
    live.transition(Run.Status.COMPLETED)
    response = statuses(client, live, done)
    assert response.status_code == 286  # htmx stops polling, and still swaps the final badges in
    assertContains(response, f'<span id="status-{live.pk}" class="badge ok" hx-swap-oob="true">Completed</span>',
                   status_code=286)  # fmt: skip


def test_it_is_for_members_only_and_scoped_to_the_workspace(
    client: Client, runs: dict[str, Run], alice: Any, bob: Any, charlie: Any, other_workspace: Any
) -> None:
    elsewhere = make_run(other_workspace, charlie, "secret", display_name="charlie's")
    anonymous = client.get("/w/default/statuses/", {"runs": runs["live"].run_id})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert statuses(as_user(client, charlie), runs["live"]).status_code == 404
    reader = statuses(as_user(client, bob), runs["live"], elsewhere)  # a Reader reads
    assertContains(reader, f'id="status-{runs["live"].pk}"')
    assertNotContains(reader, f'id="status-{elsewhere.pk}"')  # another workspace's run is never answered
    assert statuses(as_user(client, alice), elsewhere).status_code == 286  # nothing of hers is alive there


def test_it_takes_the_same_number_of_queries_for_few_runs_or_many(client: Client, workspace: Any, alice: Any) -> None:
    as_user(client, alice)

    def queries(runs: list[Run]) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert statuses(client, *runs).status_code == 200
        return len(captured)

    few = [make_run(workspace, alice, "e") for _ in range(2)]
    queries(few)
    many = few + [make_run(workspace, alice, "e") for _ in range(40)]
    assert queries(few) == queries(many)


def test_live_child_rows_join_the_poll(client: Client, runs: dict[str, Run], alice: Any) -> None:
    parent = runs["done"]
    (child,) = parent.experiment.create_runs([RunSpec(display_name="trial")], by=alice, parent=parent)
    rows = as_user(client, alice).get(
        f"/w/default/runs/{parent.run_id}/child-rows/", {"cols": "name,status"}, headers={"HX-Request": "true"}
    )
    body = rows.content.decode()
    assert f'<input type="hidden" name="runs" value="{child.run_id}" form="badge-poll">' in body
    # The poller comes again, out of band (in a <template>: a <form> among table rows would be dropped by the
    # HTML parser), which starts the table's poll if it had stopped.
    assert re.search(
        r'<template><form id="badge-poll" hx-get="/w/default/statuses/\?cells=status"[^>]*hx-swap-oob="true">', body
    )
    child.transition(Run.Status.COMPLETED)
    rows = client.get(f"/w/default/runs/{parent.run_id}/child-rows/", {"cols": "name,status"})
    assertNotContains(rows, "badge-poll")


def test_the_tables_badges_are_the_run_status_partial(client: Client, runs: dict[str, Run], alice: Any) -> None:
    # The table draws its cells in Python (studio/tables.py); its badge must stay the partial's.
    page = as_user(client, alice).get("/w/default/runs/").content.decode()
    for run in runs.values():
        badge = render_to_string("studio/run_detail.html#run-status", {"run": run, "in_table": True})
        assert badge in page


def test_a_duration_is_polled_and_sent_once_its_run_has_ended(client: Client, runs: dict[str, Run], alice: Any) -> None:
    live = runs["live"]
    as_user(client, alice)
    page = client.get("/w/default/runs/", {"cols": "name,duration"}).content.decode()  # no status column
    assert 'hx-get="/w/default/statuses/?cells=duration"' in page
    assert f'<input type="hidden" name="runs" value="{live.run_id}" form="badge-poll">' in page
    asked = {"runs": live.run_id, "cells": "duration"}
    alive = client.get("/w/default/statuses/", asked, headers={"HX-Request": "true"})
    assert alive.status_code == 200
    assert alive.content.decode().strip() == ""  # still running: the page ticks it, and there is no badge to send
    live.transition(Run.Status.COMPLETED)
    ended = client.get("/w/default/statuses/", asked, headers={"HX-Request": "true"})
    assert ended.status_code == 286  # stop polling
    body = ended.content.decode()
    assert re.search(rf'<span id="duration-{live.pk}" hx-swap-oob="true">0:00:0\d</span>', body)
    assert "badge" not in body  # the page has no status column to swap into
