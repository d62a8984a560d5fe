"""The web studio in a real browser (Debian's Chromium, driven by Playwright), against a live
server, with real runs: some of them real scripts under a real runner."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from runs import sdk
from runs.models import Run
from studio.models import SavedView
from tests.conftest import make_run


def test_typing_in_the_search_bar_narrows_the_table(
    login_as: Any, live_server: Any, workspace: Any, alice: Any
) -> None:
    for name in ("resnet baseline", "resnet wide", "transformer small"):
        make_run(workspace, alice, "vision", display_name=name)
    page = login_as(alice)
    page.goto(live_server.url + "/w/default/runs/")
    rows = page.locator("#runs-table tbody tr")
    expect(rows).to_have_count(3)
    page.locator("#search").press_sequentially("resnet", delay=30)
    expect(page).to_have_url(re.compile(r"q=resnet(&|$)"))  # the URL holds the state: shareable, back button works
    expect(rows).to_have_count(2)  # ("re", had a pause in the typing sent it, matches these two as well)
    expect(page.locator("#runs-table")).not_to_contain_text("transformer small")
    page.locator("#search").fill("status = Failed")
    expect(page.locator("#runs-table")).to_contain_text("No runs match.")


def test_a_shared_view_saved_by_one_user_is_opened_by_another(
    browser: Browser, login_as: Any, live_server: Any, workspace: Any, alice: Any, carol: Any
) -> None:
    make_run(workspace, alice, "nlp", display_name="bert run", tags={"team": "nlp"})
    make_run(workspace, alice, "vision", display_name="vit run", tags={"team": "vision"})
    page = login_as(alice)
    page.goto(live_server.url + "/w/default/runs/?q=tags.team+%3D+nlp")
    expect(page.locator("#runs-table tbody tr")).to_have_count(1)
    page.get_by_text("Save as a new view…").click()
    page.get_by_label("View name").fill("NLP runs")
    page.get_by_label("Share with the workspace").check()
    page.get_by_role("button", name="Save as a new view").click()
    expect(page.locator("h1")).to_contain_text("NLP runs")
    page.get_by_label("More actions for this view").click()
    link = page.get_by_label("Share link").input_value()
    assert SavedView.objects.get(name="NLP runs").shared

    # Carol, in a browser of her own, opens the link alice shared.
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(carol)
    context = browser.new_context()
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    other = context.new_page()
    other.goto(link)
    expect(other.locator("h1")).to_contain_text("NLP runs")
    expect(other.locator("#runs-table tbody tr")).to_have_count(1)
    expect(other.locator("#runs-table")).to_contain_text("bert run")
    context.close()


def test_the_display_name_is_edited_in_place(login_as: Any, live_server: Any, workspace: Any, alice: Any) -> None:
    run = make_run(workspace, alice, "vision", display_name="first try")
    page = login_as(alice)
    page.goto(f"{live_server.url}/w/default/runs/{run.run_id}/")
    page.get_by_label("Edit the display name").click()
    field = page.get_by_label("Display name")
    field.fill("the good one")
    field.press("Enter")
    expect(page.locator("#run-name .name")).to_have_text("the good one")
    run.refresh_from_db()
    assert run.display_name == "the good one"


def test_a_hostile_description_renders_inert(login_as: Any, live_server: Any, workspace: Any, alice: Any) -> None:
    run = make_run(
        workspace,
        alice,
        "vision",
        description=(
            "Results **below**.\n\n<script>window.pwned = 'script'</script>\n\n"
            "<img src=x onerror=\"window.pwned = 'onerror'\">\n\n[a link](javascript:window.pwned='link')"
        ),
    )
    page = login_as(alice)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{live_server.url}/w/default/runs/{run.run_id}/")
    expect(page.locator(".description strong")).to_have_text("below")
    page.get_by_text("a link").click()
    page.wait_for_timeout(300)
    assert page.evaluate("window.pwned") is None
    assert dialogs == []
    assert page.locator(".description script").count() == 0
    assert page.locator(".description [onerror]").count() == 0
    assert "javascript:" not in (page.get_by_text("a link").get_attribute("href") or "")


def _submit(ws: sdk.Workspace, folder: Path, code: str) -> sdk.Run:
    (folder / "train.py").write_text(textwrap.dedent(code))
    return sdk.Experiment(ws, "browser").submit(sdk.ScriptRunConfig(source_directory=str(folder), script="train.py"))


def test_the_logs_tab_shows_new_output_from_a_running_script(
    login_as: Any, live_server: Any, ws: sdk.Workspace, alice: Any, tmp_path: Path
) -> None:
    run = _submit(
        ws,
        tmp_path,
        """
        import time
        for step in range(200):
            print(f"epoch {step} done", flush=True)
            time.sleep(0.1)
        """,
    )
    page = login_as(alice)
    page.set_viewport_size({"width": 1200, "height": 600})
    page.goto(f"{live_server.url}/w/default/runs/{run.id}/outputs/")  # the tab opens on the log
    text = page.locator("#file-text")
    expect(text).to_contain_text("epoch 1 done", timeout=15_000)
    first = text.inner_text()
    expect(text).to_contain_text("epoch 40 done", timeout=15_000)  # arrived while the page stayed open
    assert len(text.inner_text()) > len(first)
    at_end = "el => el.scrollHeight - el.scrollTop - el.clientHeight < 30"
    assert text.evaluate("el => el.scrollHeight > el.clientHeight")  # it scrolls, in its own pane
    page.wait_for_function(f"({at_end})(document.getElementById('file-text'))")  # following the tail
    # Scrolling up stops following; "Jump to end" comes back to the tail.
    text.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
    expect(page.get_by_label("Follow")).not_to_be_checked()
    expect(page.get_by_role("button", name="Jump to end")).to_be_visible()
    page.wait_for_timeout(2500)  # more lines arrive, and the view stays where the reader is
    assert text.evaluate("el => el.scrollTop") == 0
    page.get_by_role("button", name="Jump to end").click()
    expect(page.get_by_label("Follow")).to_be_checked()
    # Search: matches marked, then the next one.
    page.get_by_label("Search the log").fill("epoch 3")
    expect(page.locator("#log-matches")).to_contain_text("1 of ")
    assert text.locator("mark").count() >= 11  # epoch 3, 30..39
    page.get_by_role("button", name="Next match").click()
    expect(page.locator("#log-matches")).to_contain_text("2 of ")
    assert text.locator(".ln").first.evaluate("el => getComputedStyle(el, '::before').content") == "counter(line)"
    assert Run.objects.get(run_id=run.id).status == Run.Status.RUNNING
    run.cancel()
    assert run.wait_for_completion()["status"] == "Canceled"  # no runner outlives the test


def test_the_cancel_button_stops_a_running_script(
    login_as: Any, live_server: Any, ws: sdk.Workspace, alice: Any, tmp_path: Path
) -> None:
    run = _submit(
        ws,
        tmp_path,
        """
        import os, time
        print("pid", os.getpid(), flush=True)
        time.sleep(300)
        """,
    )
    page = login_as(alice)
    page.goto(f"{live_server.url}/w/default/runs/{run.id}/")
    badge = page.locator("#run-status")
    expect(badge).to_have_text("Running", timeout=20_000)  # the badge updates itself
    log = Run.objects.get(run_id=run.id).read_log("logs/std_log.txt")[0].decode()
    pid = int(re.search(r"pid (\d+)", log).group(1)) if "pid" in log else None
    page.on("dialog", lambda dialog: dialog.accept())  # "Cancel run ...?"
    page.get_by_role("button", name="Cancel run").click()
    expect(badge).to_have_text("Canceled", timeout=20_000)
    assert Run.objects.get(run_id=run.id).status == Run.Status.CANCELED
    if pid is not None:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    # The whole page follows, without a reload: the facts, the actions, the "tell me" button.
    facts = page.locator("#run-facts")
    expect(facts.locator("dt:text-is('Status') + dd")).to_have_text("Canceled")
    expect(facts.locator("dt:text-is('Ended') + dd")).not_to_have_text("—")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    expect(page.get_by_role("button", name="Tell me when this run ends")).to_have_count(0)
    expect(page.get_by_role("button", name="Archive")).to_be_visible()
    duration = page.locator("#run-live .run-duration").inner_text()
    page.wait_for_timeout(1500)
    assert page.locator("#run-live .run-duration").inner_text() == duration  # it stopped ticking
    page.reload()
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    assert os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE") == "true"
