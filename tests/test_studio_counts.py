"""A filtered table shows its page first and its count after (its own request), as W&B's and
MLflow's tables page without a total: counting every match was most of a filtered page's time at
100,000 runs. A page that is the last one knows its count; an unfiltered table counts as before."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from tests.conftest import make_run

pytestmark = pytest.mark.django_db
RUNS = "/w/default/runs/"


@pytest.fixture
def five(workspace: Any, alice: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from studio import views

    monkeypatch.setattr(views, "RUNS_PER_PAGE", 2)
    for i in range(5):
        run = make_run(workspace, alice, "sweep", display_name=f"seed {i}", tags={"sweep": "lr"})
        run.log_metrics([{"name": "loss", "value": float(i)}])
    make_run(workspace, alice, "other", display_name="other")


@pytest.mark.parametrize("sort", ["-created", "metrics.loss", "tags.sweep"])
def test_a_filtered_page_comes_first_and_its_count_after(client: Client, alice: Any, five: None, sort: str) -> None:
    client.force_login(alice)
    page = client.get(RUNS, {"q": "tags.sweep = lr", "sort": sort})
    html = page.content.decode()
    assert 'id="run-count" class="counting"' in html  # not counted yet
    count_url = html.split('id="run-count" class="counting" hx-get="')[1].split('"')[0].replace("&amp;", "&")
    assertContains(page, 'Page 1<span id="page-count"></span>')
    assertContains(page, "Next →")
    counted = client.get(count_url, headers={"HX-Request": "true"})
    assert counted.content.decode().strip() == (
        '<span id="run-count">5</span><span id="page-count" hx-swap-oob="true"> of 3</span>'
    )
    last = client.get(RUNS, {"q": "tags.sweep = lr", "sort": sort, "page": "3"})
    assertContains(last, '<span id="run-count">5</span>')  # the last page knows where the matches end
    assertContains(last, "Page 3 of 3")
    assertNotContains(last, "Next →")
    if sort == "metrics.loss":
        assertContains(client.get(RUNS, {"q": "tags.sweep = lr", "sort": sort, "page": "2"}), ">seed 2<")


def test_an_unfiltered_table_and_a_short_one_count_at_once(client: Client, alice: Any, five: None) -> None:
    client.force_login(alice)
    assertContains(client.get(RUNS), '<span id="run-count">6</span>')
    assertContains(client.get(RUNS, {"q": "other"}), '<span id="run-count">1</span>')
    assertContains(client.get(RUNS, {"q": "nothing-like-it"}), '<span id="run-count">0</span>')
    assertContains(client.get(RUNS, {"q": "tags.sweep = lr", "page": "9"}), "Page 3 of 3")  # past the end
