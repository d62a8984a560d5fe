"""The All runs grid's cells as the server draws them (studio/tables.py, Rows): numbers rounded for
reading with the exact value kept, times relative with the absolute time in the title, a running
run's Duration ready to tick, and the density a view keeps."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.utils import timezone

from runs.models import Run
from studio.models import SavedView
from studio.tables import plain_text, readable_number, relative_time
from tests.conftest import make_run


def logged_in(client: Any, user: Any) -> Any:
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        (0.123456789, "0.1235"),
        (12.3456, "12.35"),
        (1234.5678, "1235"),
        (12345.678, "12346"),  # whole, not 1.235e+04
        (123456.7, "123457"),
        (1.2345e9, "1.234e+09"),
        (1.2345e-5, "1.234e-05"),
        (-3.14159, "-3.142"),
        (0.0, "0"),
        (0.2, "0.2"),
        (float("inf"), "∞"),
    ],
)
def test_numbers_are_rounded_for_reading(number: float, shown: str) -> None:
    assert readable_number(number) == shown


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0, "just now"), (-30, "just now"), (12, "12 s ago"), (300, "5 min ago"), (3 * 3600 + 59, "3 h ago"),
     (2 * 86400, "2 d ago"), (95 * 86400, "3 mo ago"), (800 * 86400, "2 y ago")],
)  # fmt: skip
def test_times_are_said_relative_in_one_unit(seconds: int, said: str) -> None:
    now = timezone.now()
    assert relative_time(now - dt.timedelta(seconds=seconds), now) == said


def test_cells_keep_the_exact_value_and_the_absolute_time(client: Any, workspace: Any, alice: Any) -> None:
    run = make_run(workspace, alice, "mnist", display_name="long <run>", tags={"team": "vision & co"})
    run.log_metrics([{"name": "loss", "value": 0.123456789012}])
    created = timezone.now() - dt.timedelta(hours=3, minutes=5)
    Run.objects.filter(pk=run.pk).update(created_at=created, started_at=created)
    cols = "name,run_id,created,duration,metrics.loss,tags.team"
    body = logged_in(client, alice).get("/w/default/runs/", {"cols": cols}).content.decode()
    assert '<td class="col-metricsloss" title="0.123456789012" data-exact="0.123456789012">0.1235</td>' in body
    assert f'title="{created:%Y-%m-%d %H:%M:%S} UTC">3 h ago</time>' in body
    assert f'<time datetime="{created.isoformat()}"' in body
    assert re.search(rf'<span id="duration-\d+" data-started="{re.escape(created.isoformat())}">3:05:', body)  # ticked
    assert f'<td class="col-run_id" title="{run.run_id}">{run.run_id}</td>' in body
    assert '<td class="col-name" title="long &lt;run&gt;">' in body
    assert '<td class="col-tagsteam" title="vision &amp; co">vision &amp; co</td>' in body
    run.transition(Run.Status.COMPLETED)
    body = client.get("/w/default/runs/", {"cols": cols}).content.decode()
    assert "data-started" not in body  # an ended run's Duration stands still


def test_a_view_keeps_the_density_and_the_page_shows_it(client: Any, workspace: Any, alice: Any) -> None:
    make_run(workspace, alice, "mnist", display_name="one")
    logged_in(client, alice).post("/w/default/views/", {"cols": "name,status", "density": "compact", "name": "Dense"})
    view = SavedView.objects.get(name="Dense")
    assert view.params == {"cols": "name,status", "density": "compact"}
    body = client.get(f"/w/default/runs/?view={view.pk}").content.decode()
    assert '<table class="grid runs density-compact">' in body
    assert re.search(r'<a href="[^"]*density=compact[^"]*"[^>]*aria-current="true">Compact</a>', body, re.S)
    assert '<input type="hidden" name="density" value="compact">' in body  # the state form keeps it
    body = client.get(f"/w/default/runs/?view={view.pk}&density=comfortable").content.decode()
    assert '<table class="grid runs">' in body  # the URL's word wins over the view's
    assert client.get("/w/default/runs/", {"density": "cosy"}).status_code == 400


def test_dragged_widths_become_one_css_rule_a_column(client: Any, workspace: Any, alice: Any) -> None:
    make_run(workspace, alice, "mnist", display_name="one")
    widths = "name:240,tags.<b>x</b>:90"
    body = logged_in(client, alice).get("/w/default/runs/", {"cols": "name,tags.<b>x</b>", "widths": widths}).content
    body = body.decode()
    assert (
        '<style id="grid-widths">#runs-table .col-name{width:240px;min-width:240px;max-width:240px}'
        "#runs-table .col-tagsbxb{width:90px;min-width:90px;max-width:90px}#runs-table .col-name{position:sticky"
    ) in body  # a slug, not the key as typed (then the pinned name's rules)
    assert '<input type="hidden" name="widths" value="name:240,tags.&lt;b&gt;x&lt;/b&gt;:90">' in body
    refused = client.get("/w/default/runs/", {"widths": "name:1;}body{color:red"})
    assert refused.status_code == 400
    assert b"body{color:red}" not in refused.content


@pytest.mark.parametrize(
    ("markdown", "line"),
    [
        (
            "## ResNet-18 on MNIST\n\nA **ResNet-18** for _28×28_ digits.",
            "ResNet-18 on MNIST · A ResNet-18 for 28×28 digits.",
        ),
        ("See [the paper](https://example.com) and `train.py`", "See the paper and train.py"),
        ("- one\n- two\n> quoted", "one · two · quoted"),
        ("snake_case_name stays, as does 2*3*4", "snake_case_name stays, as does 2*3*4"),
    ],
)
def test_a_description_is_one_line_of_plain_text_in_the_grid(markdown: str, line: str) -> None:
    assert plain_text(markdown) == line
