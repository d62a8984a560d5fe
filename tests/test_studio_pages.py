"""The web studio's pages: access, the runs table's URL state, htmx fragments, query counts,
and descriptions rendered safely."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pytest_django.asserts import assertContains, assertNotContains

from runs.models import Run
from tests.conftest import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(workspace: Any, alice: Any) -> dict[str, Run]:
    good = make_run(workspace, alice, "mnist", display_name="good one", tags={"team": "vision"})
    good.log_metrics([{"name": "loss", "value": v} for v in (0.9, 0.2, 0.4)])
    good.transition(Run.Status.COMPLETED)
    bad = make_run(workspace, alice, "mnist", display_name="bad one", description="diverged at **step 3**")
    bad.log_metrics([{"name": "loss", "value": 3.0}])
    bad.fail(message="exploded")
    other = make_run(workspace, alice, "cifar", display_name="cifar run", tags={"team": "nlp"})
    child = make_run(workspace, alice, "mnist", display_name="trial child")
    Run.objects.filter(pk=child.pk).update(parent=good)
    return {"good": good, "bad": bad, "other": other, "child": child}


def logged_in(client: Any, user: Any) -> Any:
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "url", ["/w/default/runs/", "/w/default/experiments/", "/w/default/experiments/mnist/", "/w/default/runs/{run}/"]
)
def test_pages_are_for_members_only(client: Any, runs: dict[str, Run], alice: Any, bob: Any, charlie: Any,
                                    other_workspace: Any, url: str) -> None:  # fmt: skip
    url = url.format(run=runs["good"].run_id)
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert logged_in(client, charlie).get(url).status_code == 404
    assert logged_in(client, bob).get(url).status_code == 200  # a Reader reads
    assert logged_in(client, alice).get(url).status_code == 200


@pytest.mark.parametrize("htmx", [False, True])
def test_no_template_comment_shows_on_a_page(client: Any, runs: dict[str, Run], alice: Any, htmx: bool) -> None:
    """Django's {# #} comments are one line; one spread over two lines is printed as text."""
    run = runs["good"].run_id
    pages = [
        "/w/default/runs/?q=status%20%3D%20Bogus",
        "/w/default/runs/?cols=name,tags,metrics.loss",
        "/w/default/experiments/",
        "/w/default/compare/",
        "/w/default/notifications/",
        "/accounts/login/",
        "/w/default/members/",
        "/tokens/",
    ]
    pages += [
        f"/w/default/runs/{run}/{tab}" for tab in ("", "metrics/", "children/", "outputs/", "snapshot/", "activity/")
    ]
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    for page in pages:
        body = logged_in(client, alice).get(page, **headers).content.decode()
        assert "{#" not in body and "#}" not in body and "{% comment" not in body, page


def test_home_opens_the_default_workspace(client: Any, alice: Any, workspace: Any, charlie: Any) -> None:
    assert logged_in(client, alice).get("/")["Location"] == "/w/default/runs/"
    assertContains(logged_in(client, charlie).get("/"), "No workspace yet")


def test_login_page_logs_in(client: Any, alice: Any, workspace: Any) -> None:
    assertContains(client.get("/accounts/login/"), "Log in")
    response = client.post("/accounts/login/", {"username": "alice", "password": "password"})
    assert response.status_code == 302 and response["Location"] == "/"
    assertContains(client.get("/w/default/runs/"), "All runs")


def test_the_runs_table_lists_top_level_runs_newest_first(client: Any, runs: dict[str, Run], alice: Any) -> None:
    response = logged_in(client, alice).get("/w/default/runs/")
    body = response.content.decode()
    assert body.index("cifar run") < body.index("bad one") < body.index("good one")
    assertNotContains(response, "trial child")
    assertContains(response, '<span class="badge bad">Failed</span>', html=True)
    # With child runs included, a parent shows how many it has and loads them under itself.
    with_children = client.get("/w/default/runs/", {"children": "1", "cols": "name,status"})
    assertNotContains(with_children, "trial child")
    assertContains(with_children, 'aria-label="Show the 1 child runs"')
    rows = client.get(
        f"/w/default/runs/{runs['good'].run_id}/child-rows/", {"cols": "name,status"}, headers={"HX-Request": "true"}
    )
    assert rows.content.decode().lstrip().startswith('<tr class="child-row depth-1">')
    assertContains(rows, "trial child")
    assert client.get(f"/w/default/runs/{runs['good'].run_id}/child-rows/", {"cols": "bogus"}).status_code == 400


@pytest.mark.parametrize(
    ("q", "shown", "hidden"),
    [
        ("status = failed", ["bad one"], ["good one", "cifar run"]),
        ("tags.team = vision", ["good one"], ["bad one", "cifar run"]),
        ("diverged", ["bad one"], ["good one"]),
        ("experiment = cifar", ["cifar run"], ["good one"]),
        ("metrics.loss < 1", ["good one"], ["bad one", "cifar run"]),
    ],
)
def test_search_and_filters_use_the_query_language(client: Any, runs: dict[str, Run], alice: Any, q: str,
                                                   shown: list[str], hidden: list[str]) -> None:  # fmt: skip
    response = logged_in(client, alice).get("/w/default/runs/", {"q": q})
    for name in shown:
        assertContains(response, name)
    for name in hidden:
        assertNotContains(response, name)


def test_a_query_that_matches_nothing_says_so(client: Any, runs: dict[str, Run], alice: Any) -> None:
    response = logged_in(client, alice).get("/w/default/runs/", {"q": "status = Canceled"})
    assertContains(response, "No runs match.")
    assertContains(response, '<span id="run-count">0</span>', html=True)


def test_a_bad_query_says_what_is_wrong(client: Any, runs: dict[str, Run], alice: Any) -> None:
    response = logged_in(client, alice).get("/w/default/runs/", {"q": "status = done"})
    assert response.status_code == 400
    assertContains(response, "&#x27;done&#x27; is not a status", status_code=400)
    bad_column = client.get("/w/default/runs/", {"cols": "name,shoe_size"})
    assertContains(bad_column, "unknown column &#x27;shoe_size&#x27;", status_code=400)


def test_sorting_by_a_metric_and_choosing_columns(client: Any, runs: dict[str, Run], alice: Any) -> None:
    response = logged_in(client, alice).get(
        "/w/default/runs/", {"sort": "metrics.loss.min", "cols": "name,metrics.loss,metrics.loss.min,tags.team"}
    )
    body = response.content.decode()
    assert body.index("good one") < body.index("bad one") < body.index("cifar run")  # no metric: last
    assertContains(response, '<td class="col-metricslossmin" title="0.2" data-exact="0.2">0.2</td>', html=True)
    assertContains(response, '<td class="col-metricsloss" title="0.4" data-exact="0.4">0.4</td>', html=True)
    assertContains(response, '<td class="col-tagsteam" title="vision">vision</td>', html=True)
    # The header links keep the rest of the state and flip the direction.
    assertContains(response, "sort=-metrics.loss.min")
    assertContains(response, "cols=name%2Cmetrics.loss%2Cmetrics.loss.min%2Ctags.team")


def test_htmx_gets_only_the_table(client: Any, runs: dict[str, Run], alice: Any) -> None:
    response = logged_in(client, alice).get("/w/default/runs/", {"q": "bad"}, headers={"HX-Request": "true"})
    assert b"<html" not in response.content
    assertContains(response, 'id="runs-table"')
    assertContains(response, "bad one")
    assert "HX-Request" in response["Vary"]


def test_the_experiments_page_counts_runs_by_status(client: Any, runs: dict[str, Run], alice: Any) -> None:
    response = logged_in(client, alice).get("/w/default/experiments/")
    assertContains(response, '<span class="badge ok">Completed 1</span>', html=True)
    assertContains(response, '<span class="badge bad">Failed 1</span>', html=True)
    assertContains(response, 'href="/w/default/experiments/cifar/"')


def test_the_runs_table_takes_a_constant_number_of_queries(client: Any, workspace: Any, alice: Any) -> None:
    logged_in(client, alice)
    params = {"cols": "name,status,tags,metrics.loss,properties.p", "sort": "-metrics.loss"}

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/w/default/runs/", params).status_code == 200
        return len(captured)

    def add(n: int) -> None:
        for i in range(n):
            run = make_run(workspace, alice, f"e{i % 3}", tags={"t": str(i)}, properties={"p": str(i)})
            run.log_metrics([{"name": "loss", "value": i}])

    add(2)
    queries()
    few = queries()
    add(45)
    assert queries() == few


def test_a_description_is_rendered_as_markdown_and_made_safe(client: Any, workspace: Any, alice: Any) -> None:
    run = make_run(
        workspace,
        alice,
        description=(
            "**bold** and `code`\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n"
            "[click](javascript:alert(3)) [docs](https://example.org)\n\n![plot](outputs/plot.png)\n\n"
            "```\nprint('hi')\n```"
        ),
    )
    response = logged_in(client, alice).get(f"/w/default/runs/{run.run_id}/")
    body = response.content.decode()
    description = body[body.index('class="description"') :]
    description = description[: description.index("</div>")]
    assert "<strong>bold</strong>" in description and "<code>code</code>" in description
    assert "<script>" not in description and "onerror" not in description and "javascript:" not in description
    assert 'href="https://example.org"' in description and 'rel="noopener noreferrer nofollow"' in description
    assert f'src="/api/v1/runs/{run.run_id}/files/outputs/plot.png"' in description
    assert "<pre><code>print('hi')" in description


@pytest.mark.parametrize(
    ("filters", "shown", "hidden"),
    [
        ({"status": "Failed"}, ["bad one"], ["good one", "cifar run"]),
        ({"experiment": "cifar"}, ["cifar run"], ["good one", "bad one"]),
        ({"tag": "team=vision"}, ["good one"], ["cifar run", "bad one"]),
        ({"tag": "team"}, ["good one", "cifar run"], ["bad one"]),
        ({"metric": "loss", "metric_max": "1"}, ["good one"], ["bad one", "cifar run"]),
        ({"metric": "loss", "metric_min": "1"}, ["bad one"], ["good one"]),
        ({"user": "alice", "q": "cifar"}, ["cifar run"], ["good one"]),
        ({"created_from": "2000-01-01", "created_to": "2000-12-31"}, [], ["good one", "bad one", "cifar run"]),
    ],
)
def test_filters_narrow_the_table_as_the_query_language_does(client: Any, runs: dict[str, Run], alice: Any,
                                                             filters: dict[str, str], shown: list[str],
                                                             hidden: list[str]) -> None:  # fmt: skip
    response = logged_in(client, alice).get("/w/default/runs/", filters)
    for name in shown:
        assertContains(response, name)
    for name in hidden:
        assertNotContains(response, name)


def test_a_saved_view_keeps_the_filters(client: Any, runs: dict[str, Run], alice: Any) -> None:
    from studio.models import SavedView

    logged_in(client, alice).post("/w/default/views/", {"name": "Broken ones", "q": "one status = Failed"})
    view = SavedView.objects.get(name="Broken ones")
    assert view.params == {"q": "one status = Failed"}  # the query, as typed
    page = client.get(f"/w/default/runs/?view={view.pk}")
    assertContains(page, "bad one")
    assertNotContains(page, "good one")


def test_a_bad_filter_value_is_refused(client: Any, runs: dict[str, Run], alice: Any) -> None:
    response = logged_in(client, alice).get("/w/default/runs/", {"status": "Exploded", "created_from": "yesterday"})
    assert response.status_code == 400
    assertContains(response, "Select a valid choice", status_code=400)


def test_the_runs_tables_cells_are_escaped(client: Any, workspace: Any, alice: Any) -> None:
    # The table's rows are drawn in Python (studio/tables.py, _escape), not by the template's autoescaping.
    make_run(
        workspace,
        alice,
        "mnist",
        display_name="<b>bold</b>",
        description="<script>alert(1)</script>",
        tags={"<i>k</i>": '"quoted" & <v>'},
    )
    cols = "name,description,tags,tags.<i>k</i>"
    body = logged_in(client, alice).get("/w/default/runs/", {"cols": cols}).content.decode()
    assert "<b>bold</b>" not in body and "<script>alert" not in body and "<i>k</i>" not in body
    assert 'aria-label="Compare &lt;b&gt;bold&lt;/b&gt;"' in body
    assert ">&lt;b&gt;bold&lt;/b&gt;</a>" in body
    # A cell's full text is its title (the cell itself is one line, cut with an ellipsis): escaped too.
    assert (
        '<td class="col-description" title="&lt;script&gt;alert(1)&lt;/script&gt;">'
        "&lt;script&gt;alert(1)&lt;/script&gt;</td>" in body
    )
    assert '<span class="chip">&lt;i&gt;k&lt;/i&gt;: &quot;quoted&quot; &amp; &lt;v&gt;</span>' in body
    assert (
        '<td class="col-tagsiki" title="&quot;quoted&quot; &amp; &lt;v&gt;">&quot;quoted&quot; &amp; &lt;v&gt;</td>'
        in body
    )
    assert 'title="&lt;i&gt;k&lt;/i&gt;: &quot;quoted&quot; &amp; &lt;v&gt;"' in body  # the tags cell's title
    assert 'title="&lt;b&gt;bold&lt;/b&gt;"' in body  # the name's
