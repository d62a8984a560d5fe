"""The login page in Chromium when logins are refused for too many failures (studio/login_throttle.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

LIMIT = 3


@pytest.fixture(autouse=True)
def _throttle(settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    settings.LOGIN_FAILURE_DELAY = 0


def submit(page: Page, username: str, password: str) -> None:
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()


@pytest.mark.parametrize("width", [1400, 800])
def test_the_lockout_is_explained_on_the_login_page(page: Page, live_server: Any, width: int) -> None:
    User.objects.create_user("alice", "alice@example.org", "password")
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(live_server.url + "/accounts/login/")
    for _ in range(LIMIT - 1):
        submit(page, "alice", "wrong password")
        expect(page.get_by_role("alert")).to_have_text("Your username and password didn't match. Please try again.")
    submit(page, "alice", "wrong password")
    submit(page, "alice", "password")  # the right one: refused all the same

    notice = page.get_by_role("alert")
    expect(notice).to_contain_text("Too many failed logins: try again in 15 minutes")
    expect(notice).to_contain_text("Logins to alice and from your address are refused until")
    expect(notice).to_contain_text("manage.py axes_reset_username alice")
    expect(page.locator("#id_username")).to_have_value("alice")
    assert page.url == live_server.url + "/accounts/login/"
    # Nothing wider than the window: the notice wraps.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.goto(live_server.url + "/accounts/login/")  # a GET from the locked address says so before anyone types
    expect(page.get_by_role("alert")).to_contain_text("Logins from your address are refused")
