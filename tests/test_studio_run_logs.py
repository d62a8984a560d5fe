"""Large logs in the outputs tab: shown from their end (the last MiB), with "Show earlier output"
loading the part before, the live tail following the end while the run is active, and a download
of the whole log."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from runs.models import Run
from studio.views import LOG_VIEW_BYTES
from tests.conftest import make_run

pytestmark = pytest.mark.django_db
LOG = "logs/std_log.txt"


def write_log(run: Run, lines: int, *, start: int = 0, offset: int = 0) -> tuple[bytes, int]:
    """Numbered lines of about 100 bytes, appended in chunks of at most 1 MiB (the model's limit)."""
    data = b"".join(f"line {i:07d} {'é' * 44}\n".encode() for i in range(start, start + lines))
    for at in range(0, len(data), 1024 * 1024):
        offset = run.append_log(LOG, offset, data[at : at + 1024 * 1024])
    return data, offset


@pytest.fixture
def run(workspace: Any, alice: Any) -> Run:
    return make_run(workspace, alice, "mnist", display_name="chatty")


def url(run: Run, tail: str) -> str:
    return f"/w/default/runs/{run.run_id}/{tail}"


def as_user(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def shown_text(response: Any) -> str:
    """The log text of a page or fragment, without the controls around it or the line elements
    (one ``<span class="ln">`` a line), unescaped."""
    body = response.content.decode()
    if found := re.search(r'<pre id="file-text"[^>]*>(.*?)</pre>', body, flags=re.S):
        body = found.group(1)
    body = re.sub(r'<span class="earlier">.*?</span>', "", body, flags=re.S)
    body = re.sub(r'<span class="tail".*?></span>', "", body, flags=re.S)
    body = re.sub(r'<span id="log-size".*?</span>', "", body, flags=re.S)
    body = re.sub(r'<span class="log-part[^"]*"[^>]*>', "", body)
    body = re.sub(r'<span class="ln[^"]*">', "", body).replace("</span>", "")
    return body.replace("&#x27;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def earlier_offset(response: Any) -> int | None:
    found = re.search(r"&amp;before=(\d+)\"\s+hx-target=\"closest .earlier\"", response.content.decode())
    return int(found.group(1)) if found else None


def test_a_small_log_is_shown_whole_with_no_earlier_part(client: Client, run: Run, alice: Any) -> None:
    data, size = write_log(run, 100)
    page = as_user(client, alice).get(url(run, "outputs/"), {"file": LOG})
    assert shown_text(page) == data.decode()
    assertNotContains(page, "Show earlier output")
    assertContains(page, f"after={size}")  # the live tail goes on from the end


def test_a_large_log_shows_its_end_and_loads_earlier_parts_on_demand(client: Client, run: Run, alice: Any) -> None:
    data, size = write_log(run, 35_000)  # about 3.6 MB
    assert size > 3 * LOG_VIEW_BYTES
    page = as_user(client, alice).get(url(run, "outputs/"), {"file": LOG})
    text = shown_text(page)
    assert len(text.encode()) <= LOG_VIEW_BYTES and data.decode().endswith(text)
    assert text.startswith("line ")  # from the start of a line, not cut in one (nor in a character)
    assertContains(page, "Show earlier output")
    assertContains(page, f'href="/api/v1/runs/{run.run_id}/files/{LOG}" download>Download the whole log</a>')
    assertContains(page, f"after={size}")  # still the live tail: the run is active
    # "Show earlier output" again and again: the parts join up into the whole log.
    parts, before = [text], earlier_offset(page)
    assert before == size - len(text.encode())
    page_link = f'href="/w/default/runs/{run.run_id}/outputs/?file=logs/std_log.txt&amp;before={before}"'
    assertContains(page, page_link)  # without JavaScript, the same part as a page
    while before is not None:
        part = client.get(url(run, "logs/"), {"path": LOG, "before": before}, headers={"HX-Request": "true"})
        assert b"<html" not in part.content
        parts.insert(0, shown_text(part))
        assert len(parts[0].encode()) <= LOG_VIEW_BYTES
        next_before = earlier_offset(part)
        assert next_before is None or next_before < before
        before = next_before
    assert len(parts) == 4 and "".join(parts) == data.decode()


def test_the_live_tail_follows_a_large_log_of_an_active_run(client: Client, run: Run, alice: Any) -> None:
    data, size = write_log(run, 15_000)
    as_user(client, alice).get(url(run, "outputs/"), {"file": LOG})
    more, size = write_log(run, 3, start=15_000, offset=size)
    tail = client.get(url(run, "logs/"), {"path": LOG, "after": size - len(more)}, headers={"HX-Request": "true"})
    assert shown_text(tail) == more.decode()
    assertContains(tail, f"after={size}")
    run.transition(Run.Status.COMPLETED)
    page = client.get(url(run, "outputs/"), {"file": LOG})
    assertNotContains(page, "after=")  # the run has ended and the page shows the end: nothing to follow
    assertContains(page, "Show earlier output")


def test_without_javascript_an_earlier_part_is_a_page_of_its_own(client: Client, run: Run, alice: Any) -> None:
    data, size = write_log(run, 25_000)
    page = as_user(client, alice).get(url(run, "outputs/"), {"file": LOG})
    before = earlier_offset(page)
    earlier = client.get(url(run, "outputs/"), {"file": LOG, "before": before})
    text = shown_text(earlier)
    assert data[:before].decode().endswith(text) and len(text.encode()) <= LOG_VIEW_BYTES
    assertContains(earlier, "Part of a ")
    assertContains(earlier, "Go to the end")
    assertNotContains(earlier, "after=")  # no live tail in the middle of a log


def test_logs_are_for_members_only_and_checked(
    client: Client, run: Run, alice: Any, bob: Any, charlie: Any, other_workspace: Any
) -> None:
    write_log(run, 20_000)
    params = {"path": LOG, "before": 2_000_000}
    anonymous = client.get(url(run, "logs/"), params)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert as_user(client, charlie).get(url(run, "logs/"), params).status_code == 404
    assert as_user(client, charlie).get(url(run, "outputs/"), {"file": LOG}).status_code == 404
    assertContains(as_user(client, bob).get(url(run, "logs/"), params), "Show earlier output")  # a Reader reads
    assert client.get(url(run, "logs/"), {"path": LOG, "before": "-5"}).status_code == 400
    assert client.get(url(run, "logs/"), {"path": LOG, "before": "x"}).status_code == 400
    assert client.get(url(run, "logs/"), {"before": "10"}).status_code == 400  # which log?
    # A part that starts at the beginning has nothing before it.
    first = client.get(url(run, "logs/"), {"path": LOG, "before": 500})
    assertNotContains(first, "Show earlier output")
    assert shown_text(first).startswith("line 0000000")


def test_the_tab_opens_on_the_log_numbered_from_the_lines_before_it(client: Client, run: Run, alice: Any) -> None:
    data, size = write_log(run, 25_000)
    page = as_user(client, alice).get(url(run, "outputs/"))  # no file asked for: the log
    assertContains(page, '<pre id="file-text" class="log">')
    first = int(re.search(r'<span class="log-part" style="counter-reset: line (\d+)">', page.content.decode())[1])
    assert shown_text(page).startswith(f"line {first:07d} ")  # line n+1 of the log is "line n"
    before = earlier_offset(page)
    part = client.get(url(run, "logs/"), {"path": LOG, "before": before}, headers={"HX-Request": "true"})
    earlier = int(re.search(r'counter-reset: line (\d+)"', part.content.decode())[1])
    assert shown_text(part).startswith(f"line {earlier:07d} ")
    assertContains(page, 'id="log-search"')
    assertContains(page, 'id="log-follow"')  # the run is active: its log is followed


def test_a_progress_bar_shows_as_a_terminal_leaves_it(client: Client, run: Run, alice: Any) -> None:
    run.append_log(LOG, 0, b"epoch 1\n 10%\r 50%\r100%\nok\r\n")
    page = as_user(client, alice).get(url(run, "outputs/"), {"file": LOG}).content.decode()
    assert '<span class="ln">100%</span>' in page and '<span class="ln">ok</span>' in page and " 50%" not in page


def test_stderr_lines_are_marked(client: Client, run: Run, alice: Any, alice_api: Any) -> None:
    data = b"epoch 1\nWarning: slow\nepoch 2 \xe2\x9c\x93\n"
    run.append_log(LOG, 0, data[:8])
    run.append_log(LOG, 8, data[8:], stderr=[(8, 22)])
    run.append_log(LOG, len(data), b"  raise\n", stderr=[(len(data), len(data) + 8)])
    page = as_user(client, alice).get(url(run, "outputs/"), {"file": LOG}).content.decode()
    assert '<span class="ln">epoch 1</span>' in page and '<span class="ln err">Warning: slow</span>' in page
    assert '<span class="ln">epoch 2 ✓</span>' in page and '<span class="ln err">  raise</span>' in page
    refused = alice_api.post(
        f"/api/v1/runs/{run.run_id}/logs/{LOG}?offset={len(data) + 8}&stderr=5-3", b"x",
        content_type="application/octet-stream",
    )  # fmt: skip
    assert refused.status_code == 400 and refused.json()["error"]["target"] == "stderr"
