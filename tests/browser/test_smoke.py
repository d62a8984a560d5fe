"""The browser tests' plumbing: Chromium renders the live server's pages, and login_as works."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from playwright.sync_api import Page, expect


def test_admin_login_page_renders(page: Page, live_server: Any) -> None:
    page.goto(live_server.url + "/admin/login/")

    expect(page).to_have_title(re.compile("Log in"))
    expect(page.locator("#id_username")).to_be_visible()


def test_login_as_gives_the_browser_a_session(page: Page, live_server: Any, login_as: Callable[[User], Page]) -> None:
    alice = User.objects.create_superuser("alice", "alice@example.org", "password")

    login_as(alice).goto(live_server.url + "/admin/")

    assert page.url == live_server.url + "/admin/"  # not redirected to the login page
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
