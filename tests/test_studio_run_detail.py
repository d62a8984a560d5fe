"""A run's page in the studio: its tabs, the edits it offers, the cancel button, live logs."""

from __future__ import annotations

import io
import json
import math
import re
from typing import Any

import pytest
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from runs.models import Run, RunSpec
from tests.conftest import make_run

pytestmark = pytest.mark.django_db
TABS = ["", "metrics/", "children/", "outputs/", "snapshot/", "activity/"]


@pytest.fixture
def run(workspace: Any, alice: Any) -> Run:
    run = make_run(
        workspace, alice, "mnist", display_name="baseline", tags={"team": "vision"}, properties={"git": "abc"}
    )
    run.log_metrics([{"name": "loss", "value": 1 / (i + 1)} for i in range(5000)])
    run.log_metrics([{"name": "loss", "value": math.nan}])
    run.add_file("outputs/plot.png", io.BytesIO(b"\x89PNG\r\n\x1a\n"))
    run.add_file("outputs/notes.txt", io.BytesIO(b"<b>not html</b>"))
    run.append_log("logs/std_log.txt", 0, b"epoch 1\n")
    return run


def url(run: Run, tail: str = "") -> str:
    return f"/w/default/runs/{run.run_id}/{tail}"


def as_user(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_is_for_members_only(client: Client, run: Run, alice: Any, bob: Any, charlie: Any,
                                       other_workspace: Any, tab: str) -> None:  # fmt: skip
    assert client.get(url(run, tab)).status_code == 302
    assert as_user(client, charlie).get(url(run, tab)).status_code == 404
    assert as_user(client, bob).get(url(run, tab)).status_code == 200
    response = as_user(client, alice).get(url(run, tab))
    assert response.status_code == 200 and b"<html" in response.content
    fragment = client.get(url(run, tab), headers={"HX-Request": "true"})
    assert b"<html" not in fragment.content and b'id="tab"' in fragment.content


def test_a_reader_sees_no_edit_controls_and_cannot_post(client: Client, run: Run, bob: Any) -> None:
    response = as_user(client, bob).get(url(run))
    for control in ("Cancel run", "Edit the description", "Add or change tag", 'aria-label="Edit the display name"'):
        assertNotContains(response, control)
    for action, data in [("update/", {"display_name": "x"}), ("tags/", {"key": "k"}), ("cancel/", {})]:
        assert client.post(url(run, action), data).status_code == 403
    run.refresh_from_db()
    assert (run.display_name, run.status, run.get_tags()) == ("baseline", "Running", {"team": "vision"})


def test_the_display_name_is_edited(client: Client, run: Run, carol: Any) -> None:
    response = as_user(client, carol).get(url(run) + "?edit=name")
    assertContains(response, 'name="display_name" value="baseline"')
    assert client.post(url(run, "update/"), {"display_name": "improved"})["Location"] == url(run)
    run.refresh_from_db()
    assert run.display_name == "improved"
    too_long = client.post(url(run, "update/"), {"display_name": "x" * 256}, headers={"HX-Request": "true"})
    assertContains(too_long, "displayName is 256 characters long", status_code=400)
    run.refresh_from_db()
    assert run.display_name == "improved"


def test_the_description_is_edited_with_a_safe_preview(client: Client, run: Run, alice: Any) -> None:
    as_user(client, alice)
    assertContains(client.get(url(run) + "?edit=description"), "Preview")
    preview = client.post(url(run, "preview/"), {"description": "**bold** <img src=x onerror=alert(1)>"})
    assertContains(preview, "<strong>bold</strong>")
    assertNotContains(preview, "onerror")
    client.post(url(run, "update/"), {"description": "# Findings\n\nIt *works*."})
    run.refresh_from_db()
    assert run.description == "# Findings\n\nIt *works*."
    assertContains(client.get(url(run)), "<em>works</em>")


def test_tags_are_added_changed_and_removed(client: Client, run: Run, alice: Any) -> None:
    as_user(client, alice)
    client.post(url(run, "tags/"), {"key": "quality", "value": "great"})
    client.post(url(run, "tags/"), {"key": "team", "value": "nlp"})
    client.post(url(run, "tags/"), {"key": "reviewed", "value": ""})
    assert run.get_tags() == {"team": "nlp", "quality": "great", "reviewed": None}
    response = client.post(url(run, "tags/"), {"remove": "team"}, headers={"HX-Request": "true"})
    assert b"<html" not in response.content and b"quality: great" in response.content
    assert "team" not in run.get_tags()
    refused = client.post(url(run, "tags/"), {"key": "bad\x07key"}, headers={"HX-Request": "true"})
    assertContains(refused, "tag key must not contain control characters", status_code=400)
    plain = client.post(url(run, "tags/"), {"key": "bad\x07key"}, follow=True)  # a form post without htmx
    assertContains(plain, "tag key must not contain control characters")
    assert "bad\x07key" not in run.get_tags()


def test_cancel_updates_the_whole_page_through_one_poll_that_then_stops(client: Client, run: Run, alice: Any) -> None:
    as_user(client, alice)
    page = client.get(url(run)).content.decode()
    assert page.count('hx-trigger="every 2s"') == 1  # one poller for the page: the live block
    live = client.get(url(run, "live/"), {"tab": "overview"}, headers={"HX-Request": "true"})
    assert b'hx-trigger="every 2s"' in live.content and b">Running<" in live.content
    assert b'id="cancel-run"' in live.content
    response = client.post(url(run, "cancel/"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELED
    live = client.get(url(run, "live/"), {"tab": "overview"}, headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in live and ">Canceled<" in live  # the last answer: no poller
    assert 'id="cancel-run"' not in live and 'value="archive"' in live  # the actions an ended run has
    facts = live.split('<dl class="facts" id="run-facts" hx-swap-oob="true">')[1]
    assert "<dt>Status</dt><dd>Canceled</dd>" in facts and "<dt>Ended</dt><dd>—</dd>" not in facts
    assert '<div id="watch-run" hx-swap-oob="true"></div>' in live  # "tell me when it ends" goes
    elsewhere = client.get(url(run, "live/"), {"tab": "outputs"}, headers={"HX-Request": "true"}).content.decode()
    assert "run-facts" not in elsewhere  # only the tab shown gets its facts
    again = client.post(url(run, "cancel/"), headers={"HX-Request": "true"})
    assertContains(again, "has already ended", status_code=409)
    assertNotContains(client.get(url(run)), "Cancel run")


def test_an_error_is_said_once_with_its_traceback_folded(client: Client, run: Run, alice: Any) -> None:
    as_user(client, alice)
    run.fail(code="RuntimeError", message="RuntimeError: out of memory", details="Traceback (most recent call last):")
    page = client.get(url(run)).content.decode()
    assert "RuntimeError: out of memory" in page and "RuntimeError: RuntimeError" not in page
    assert '<details class="traceback"><summary>Traceback</summary><pre>Traceback (most recent call last):' in page


def test_forms_need_the_csrf_token(run: Run, alice: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(url(run, "cancel/")).status_code == 403
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING


def test_the_log_tail_follows_with_a_cursor_until_the_run_ends(client: Client, run: Run, alice: Any) -> None:
    as_user(client, alice)
    page = client.get(url(run, "outputs/") + "?file=logs/std_log.txt")
    assertContains(page, "epoch 1")
    assertContains(page, "after=8")  # the poller asks for what comes after the first 8 bytes
    run.append_log("logs/std_log.txt", 8, b"epoch 2 <script>x</script>\n")
    tail = client.get(url(run, "logs/"), {"path": "logs/std_log.txt", "after": 8})
    body = tail.content.decode()
    assert body.startswith('<span class="ln">epoch 2 &lt;script&gt;x&lt;/script&gt;</span>\n')  # a line, escaped
    assert "after=35" in body and 'hx-trigger="load delay:500ms"' in body  # lines came: the next poll soon
    run.append_log("logs/std_log.txt", 35, b"epoch 3 half")
    half = client.get(url(run, "logs/"), {"path": "logs/std_log.txt", "after": 35}).content.decode()
    assert "epoch 3" not in half and "after=35" in half  # a line still being written waits until it is whole
    assert 'hx-trigger="load delay:2s"' in half  # nothing new: the next poll in 2 s
    run.transition(Run.Status.COMPLETED)
    last = client.get(url(run, "logs/"), {"path": "logs/std_log.txt", "after": 35}).content.decode()
    assert '<span class="ln">epoch 3 half</span>' in last and "hx-trigger" not in last  # the end, whole
    done = client.get(url(run, "logs/"), {"path": "logs/std_log.txt", "after": 47}).content.decode()
    assert "ln" not in done and "hx-trigger" not in done  # nothing new, and no poller: polling stops
    assert client.get(url(run, "logs/"), {"path": "logs/std_log.txt", "after": "x"}).status_code == 400


def test_outputs_list_files_and_logs_and_show_them(client: Client, run: Run, alice: Any) -> None:
    as_user(client, alice)
    page = client.get(url(run, "outputs/"))
    for path in ("logs/std_log.txt", "outputs/notes.txt", "outputs/plot.png"):
        assertContains(page, path)
    text = client.get(url(run, "outputs/") + "?file=outputs/notes.txt")
    assertContains(text, "&lt;b&gt;not html&lt;/b&gt;")
    image = client.get(url(run, "outputs/") + "?file=outputs/plot.png")
    assertContains(image, f'<img src="/api/v1/runs/{run.run_id}/files/outputs/plot.png"')


def test_metrics_are_charted_downsampled_with_gaps_for_nan(client: Client, run: Run, alice: Any) -> None:
    page = as_user(client, alice).get(url(run, "metrics/"))
    data = re.search(rb'<script[^>]*type="application/json">(.*?)</script>', page.content, re.S)
    chart = json.loads(data.group(1))
    (series,) = chart["series"]
    assert chart["title"] == "loss" and len(series["x"]) <= 1000
    assert series["x"][0] == 0 and series["x"][-1] == 5000 and series["y"][-1] is None  # NaN: a gap
    assert max(v for v in series["y"] if v is not None) == 1.0  # the first, highest point survives


def test_the_activity_and_children_tabs(client: Client, run: Run, workspace: Any, alice: Any) -> None:
    child = run.experiment.create_runs(
        [__import__("runs.models").models.RunSpec(display_name="trial")], by=alice, parent=run
    )[0]
    child.transition(Run.Status.COMPLETED)
    as_user(client, alice)
    children = client.get(url(run, "children/"))
    assertContains(children, "trial")
    assertContains(children, '<span class="badge ok">Completed 1</span>', html=True)
    activity = client.get(url(child, "activity/"))
    assertContains(activity, "<td>NotStarted</td><td>Running</td><td>alice</td>")
    assertContains(activity, "<td>Running</td><td>Completed</td><td>the studio</td>")


def test_the_children_tab_shows_their_metrics_as_columns_and_compares_them(
    client: Client, run: Run, alice: Any
) -> None:
    as_user(client, alice)
    batch = run.experiment.create_runs([RunSpec(), RunSpec()], by=alice, parent=run)
    for index, child in enumerate(batch):
        child.log_metrics([{"name": "loss", "value": 0.5 + index}, {"name": "acc", "value": 0.9}])
    page = client.get(url(run, "children/")).content.decode()
    assert '<th class="col-metricsloss">loss</th>' in page and '<th class="col-metricsacc">acc</th>' in page
    assert page.count('type="checkbox" name="runs"') == 2  # ticked to compare
    assert 'action="/w/default/compare/"' in page
    table = page.split('href="/w/default/runs/?')[1].split('"')[0].replace("&amp;", "&")
    assertContains(client.get(f"/w/default/runs/?{table}"), '<span id="run-count">2</span>')  # the same two
    chosen = client.get(url(run, "children/"), {"cols": "name,metrics.acc"}).content.decode()
    assert "col-metricsloss" not in chosen and "col-metricsacc" in chosen


def test_the_file_list_follows_while_the_run_is_alive(client: Client, run: Run, alice: Any) -> None:
    as_user(client, alice)
    page = client.get(url(run, "outputs/")).content.decode()
    assert 'hx-include="#tab-state"' in page  # the poll says which tab and file are shown, whichever htmx swapped in
    assert (
        '<input type="hidden" name="tab" value="outputs"><input type="hidden" name="file" value="logs/std_log.txt">'
        in page
    )
    run.add_file("outputs/checkpoint.pt", io.BytesIO(b"weights"))
    live = client.get(url(run, "live/"), {"tab": "outputs", "file": "logs/std_log.txt"}, headers={"HX-Request": "true"})
    body = live.content.decode()
    files = body.split('<ul class="files" id="file-list" hx-swap-oob="true">')[1].split("</ul>")[0]
    assert "outputs/checkpoint.pt" in files  # a file written since the page opened
    assert '<li class="current"><a href="?file=logs/std_log.txt"' in files  # the one shown stays marked
