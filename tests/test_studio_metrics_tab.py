"""The Metrics tab shows each metric as what it is: a number logged once as a value, numbers over
steps as charts, lists charted, rows and tables as sortable tables, images as images with a step
slider (thumbnails that are links without JavaScript); numbers rounded with the exact value on hover."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from django.test import Client

from runs.models import Run
from tests.conftest import make_run

pytestmark = pytest.mark.django_db
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def run(workspace: Any, alice: Any) -> Run:
    run = make_run(workspace, alice, "metrics", display_name="all kinds")
    run.log_metrics([{"name": "final_accuracy", "value": 0.821720453292698}])
    run.log_metrics([{"name": "loss", "value": 1.0 / (step + 1), "step": step} for step in range(5)])
    run.log_metrics([{"name": "curve", "kind": "list", "value": [0.1, 0.4, 0.9]}])
    run.log_metrics([{"name": "epochs", "kind": "row", "value": {"epoch": e, "loss": 0.5 / (e + 1)}} for e in range(3)])
    run.log_metrics([{"name": "confusion", "kind": "table", "value": {"label": ["cat", "dog"], "count": [3, 5]}}])
    for _step in range(3):
        run.log_image("roc", io.BytesIO(PNG))
    return run


def test_each_metric_is_shown_as_what_it_is(client: Client, run: Run, alice: Any) -> None:
    client.force_login(alice)
    page = client.get(f"/w/default/runs/{run.run_id}/metrics/").content.decode()
    value = page.split('<div class="metric-value"><span class="name">final_accuracy</span>')[1]
    assert '<span class="num" title="0.821720453292698" data-exact="0.821720453292698">0.8217</span>' in value
    specs = [json.loads(part.split(">", 1)[1].split("</script>")[0]) for part in page.split("<script id=")[1:]]
    specs += [json.loads(part.split("</script>")[0]) for part in page.split('<script type="application/json">')[1:]]
    titles = [spec["title"] for spec in specs if isinstance(spec, dict) and "title" in spec]
    assert "loss" in titles and "curve" in titles and "final_accuracy" not in titles  # one value: no chart
    assert '<button type="button" class="sort-column">epoch</button>' in page  # a row metric: a table
    assert '<td data-value="dog">dog</td>' in page and '<td data-value="5">5</td>' in page
    assert page.count(f"/api/v1/runs/{run.run_id}/files/outputs/roc") >= 4  # the image and its 3 thumbnails
    assert 'class="image-slider" hidden' in page  # the slider appears with JavaScript
    assert "outputs/roc_2.png" in page.split('<figure class="metric-image"')[1].split("<img")[1]  # the last step


def test_a_chart_drawn_again_is_read_from_the_cache_until_a_point_is_added(
    client: Client, run: Run, alice: Any
) -> None:
    client.force_login(alice)
    url = f"/w/default/runs/{run.run_id}/metrics/"

    def loss_steps() -> list[int]:
        page = client.get(url).content.decode()
        specs = [json.loads(part.split("</script>")[0]) for part in page.split('<script type="application/json">')[1:]]
        return next(spec for spec in specs if spec.get("title") == "loss")["series"][0]["x"]

    assert loss_steps() == [0, 1, 2, 3, 4]
    run.log_metrics([{"name": "loss", "value": 0.1, "step": 5}])
    assert loss_steps() == [0, 1, 2, 3, 4, 5]  # a new point: a new series, never the cached one
