"""The Notifications page and the "Tell me when this run ends" button in a real browser (Debian's
Chromium, driven by Playwright), against a live server."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from runs.models import AlertRule, Delivery, Run
from tests.conftest import make_run


def test_an_owner_makes_a_rule_and_sees_its_delivery(
    login_as: Any, live_server: Any, workspace: Any, alice: Any
) -> None:
    run = make_run(workspace, alice, "mnist", display_name="mnist baseline")
    make_run(workspace, alice, "cifar", display_name="cifar baseline")
    page = login_as(alice)
    page.goto(f"{live_server.url}/w/default/runs/")
    page.get_by_role("link", name="Notifications").click()
    expect(page.locator("h1")).to_have_text("Notifications in default")

    page.get_by_label("Name").fill("mnist failures")
    page.get_by_label("Experiments").select_option("mnist")
    page.get_by_label("Failed", exact=True).check()
    page.get_by_label("Mail addresses").fill("ops@example.org")
    page.get_by_role("button", name="Create rule").click()
    expect(page.get_by_role("status").first).to_contain_text("Created the rule “mnist failures”.")
    row = page.locator("#rules tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("mnist failures")
    expect(row).to_contain_text("ops@example.org")
    expect(row.locator(".badge")).to_have_text(["Failed"])
    rule = AlertRule.objects.get()
    assert [e.name for e in rule.experiments.all()] == ["mnist"]
    expect(page.locator("#deliveries")).to_contain_text("Nothing delivered yet.")

    run.fail(by=alice, message="out of memory")
    page.reload()
    delivery = page.locator("#deliveries tbody tr")
    expect(delivery).to_have_count(1)
    expect(delivery).to_contain_text("mnist baseline")
    expect(delivery).to_contain_text("Running → Failed")
    expect(delivery.locator(".badge")).to_have_text(re.compile("Pending|Sent"))
    assert Delivery.objects.get().event.run == run

    # Deleting asks first (hx-confirm); htmx swaps the rules and the deliveries in place.
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Delete mnist failures").click()
    expect(page.locator("#rules")).to_contain_text("No rules yet.")
    expect(page.locator("#deliveries")).to_contain_text("Nothing delivered yet.")
    assert dialogs == ["Delete the rule “mnist failures”? Its deliveries are deleted with it."]
    assert not AlertRule.objects.exists()


def test_a_reader_asks_to_be_told_when_a_run_ends(login_as: Any, live_server: Any, workspace: Any, alice: Any,
                                                   bob: Any) -> None:  # fmt: skip
    run = make_run(workspace, alice, "mnist", display_name="long run")
    page = login_as(bob)
    page.goto(f"{live_server.url}/w/default/runs/{run.run_id}/")
    # The page shows the plain button, then htmx swaps in the user's own state as it loads.
    expect(page.locator("#watch-run")).not_to_have_attribute("hx-trigger", "load")
    page.get_by_role("button", name="Tell me when this run ends").click()
    expect(page.locator("#watch-run")).to_contain_text("You will be mailed at bob@example.org")
    assert AlertRule.objects.get().created_by == bob
    page.reload()  # the page asks for the button's state when it loads
    stop = page.get_by_role("button", name="Stop telling me")
    expect(stop).to_be_visible()
    stop.click()
    expect(page.get_by_role("button", name="Tell me when this run ends")).to_be_visible()
    assert not AlertRule.objects.exists()

    run.transition(Run.Status.COMPLETED, by=alice)
    page.reload()
    expect(page.locator("#run-status")).to_have_text("Completed")
    expect(page.locator("#watch-run")).to_have_count(0)
