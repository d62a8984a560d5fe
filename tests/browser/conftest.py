"""Real-browser tests: Debian's Chromium (/usr/bin/chromium, from scripts/ensure-browser.sh) driven
by Playwright's sync API. Playwright never downloads a browser: `playwright install` is never run,
the tests launch the system's executable (STUDIO_CHROMIUM overrides its path)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in containers has no user namespaces for Chromium's sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no calls home: the machine has no internet
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # a small /dev/shm (Docker's 64 MB) crashes tabs; use /tmp
]
# For actions and for expect(): the suite runs four workers beside Chromium and the live servers, and
# on a two-core machine an htmx answer can take longer than Playwright's default 5 s for expect().
DEFAULT_TIMEOUT_MS = 10_000
expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "test-screenshots"


@pytest.fixture(scope="package", autouse=True)
def _allow_orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API runs an asyncio event loop in this (the main) thread for as long as it
    is started, so Django sees a running loop and raises SynchronousOnlyOperation on every ORM call
    the tests and pytest-django's fixtures make here. The ORM is in fact used synchronously, so
    DJANGO_ALLOW_ASYNC_UNSAFE is the standard fix. It is set for these tests only: the browser is
    package-scoped, so the loop is gone before the rest of the suite runs with Django's check on."""
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if before is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture(scope="package")
def browser(_allow_orm_beside_playwright: None) -> Iterator[Browser]:
    """One headless Chromium for all the browser tests. Package-scoped rather than session-scoped:
    Playwright's event loop must stop when the last browser test ends (see above)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: run scripts/ensure-browser.sh (installs Debian's chromium), "
            "or point STUDIO_CHROMIUM at a Chromium executable. Never `playwright install`.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Keep each phase's report on the test (item.rep_setup, rep_call, rep_teardown) so that `page`
    knows, at teardown, whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (no cookies, no storage) and a page in it; on failure, a screenshot
    goes to var/test-screenshots/<test name>.png."""
    context = browser.new_context()
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^\w.-]+", "_", request.node.name)
            try:
                page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
            except Exception as error:  # a crashed page must not hide the test's own failure
                print(f"no screenshot of {request.node.nodeid}: {error}")
        context.close()


@pytest.fixture
def errors(page: Page) -> Iterator[list[str]]:
    """The page's console errors and uncaught exceptions, checked empty after the test."""
    found: list[str] = []
    page.on("console", lambda message: found.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: found.append(str(error)))
    yield found


@pytest.fixture
def login_as(page: Page, live_server: Any) -> Callable[[User], Page]:
    """login_as(user) logs the page's browser context in as user, without the login form: a session
    made by Django's test client, whose cookie is handed to the browser for the live server."""

    def log_in(user: User) -> Page:
        client = Client()
        client.force_login(user)
        session_id = client.cookies[settings.SESSION_COOKIE_NAME].value
        page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_id, "url": live_server.url}])
        return page

    return log_in


@pytest.fixture
def open_context(browser: Browser, live_server: Any) -> Iterator[Callable[..., BrowserContext]]:
    """open_context(user, **options): a browser context of its own (an OS colour scheme, a window width,
    JavaScript off), logged in as user (None: anonymous)."""
    contexts: list[BrowserContext] = []

    def open_(user: User | None, **options: Any) -> BrowserContext:
        context = browser.new_context(**options)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        if user is not None:
            client = Client()
            client.force_login(user)
            session_id = client.cookies[settings.SESSION_COOKIE_NAME].value
            context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_id, "url": live_server.url}])
        return context

    yield open_
    for context in contexts:
        context.close()
