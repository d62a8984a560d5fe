"""The colour theme each user chooses (studio.models.Preference), applied to every page as Bootstrap's
data-bs-theme, and the favicon's old address."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from django.test import Client
from pytest_django.asserts import assertContains

from studio.models import Preference

pytestmark = pytest.mark.django_db


def logged_in(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def test_a_chosen_theme_is_remembered_and_applied_to_the_next_page(client: Client, alice: Any, workspace: Any) -> None:
    client = logged_in(client, alice)
    page = client.get("/w/default/runs/")
    # nothing chosen: the server says light, and base.html's inline script switches to dark if the OS is dark
    assertContains(page, '<html lang="en" data-bs-theme="light" data-theme-choice="auto">')

    response = client.post("/preferences/theme/", {"theme": "dark", "next": "/w/default/experiments/?x=1"})

    assert response.status_code == 302 and response["Location"] == "/w/default/experiments/?x=1"
    assert Preference.objects.get(user=alice).theme == "dark"
    page = client.get("/w/default/experiments/")
    assertContains(page, '<html lang="en" data-bs-theme="dark" data-theme-choice="dark">')
    assertContains(page, 'value="dark" class="btn" aria-pressed="true"')

    client.post("/preferences/theme/", {"theme": "auto", "next": "/w/default/runs/"})
    assertContains(client.get("/w/default/runs/"), 'data-bs-theme="light" data-theme-choice="auto"')
    assert Preference.objects.filter(user=alice).count() == 1  # changed, not added


def test_the_theme_is_each_users_own(client: Client, alice: Any, bob: Any, workspace: Any) -> None:
    Preference.set_theme(alice, "dark")
    assertContains(logged_in(client, bob).get("/w/default/runs/"), 'data-bs-theme="light" data-theme-choice="auto"')


def test_htmx_gets_the_choice_in_a_header_and_no_page(client: Client, alice: Any, workspace: Any) -> None:
    response = logged_in(client, alice).post(
        "/preferences/theme/", {"theme": "light", "next": "/w/default/runs/"}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 204
    assert json.loads(response["HX-Trigger"]) == {"studio:theme": {"value": "light"}}  # static/theme.js applies it
    assert Preference.objects.get(user=alice).theme == "light"


def test_changing_the_theme_needs_the_csrf_token(alice: Any, workspace: Any) -> None:
    client = logged_in(Client(enforce_csrf_checks=True), alice)
    client.get("/w/default/runs/")  # sets the CSRF cookie: only the token in the form is missing

    response = client.post("/preferences/theme/", {"theme": "dark", "next": "/w/default/runs/"})

    assert response.status_code == 403
    assert not Preference.objects.filter(user=alice).exists()


def test_an_unknown_theme_is_refused_with_a_message(client: Client, alice: Any, workspace: Any) -> None:
    Preference.set_theme(alice, "dark")
    client = logged_in(client, alice)

    response = client.post("/preferences/theme/", {"theme": "purple", "next": "/w/default/experiments/"}, follow=True)

    assert response.redirect_chain == [("/w/default/experiments/", 302)]
    # the experiments page shows no messages itself: base.html shows it as a toast
    assertContains(response, "Unknown theme &#x27;purple&#x27;: choose one of auto, light, dark.")
    assertContains(response, 'class="toast show toast-error" role="alert"')
    assert Preference.objects.get(user=alice).theme == "dark"

    response = client.post(
        "/preferences/theme/", {"theme": "", "next": "/w/default/runs/"}, headers={"HX-Request": "true"}
    )
    assert response["HX-Redirect"] == "/w/default/runs/"  # a full page load, which shows the message
    assert Preference.objects.get(user=alice).theme == "dark"


def test_the_way_back_stays_on_this_site(client: Client, alice: Any, workspace: Any) -> None:
    response = logged_in(client, alice).post("/preferences/theme/", {"theme": "dark", "next": "https://evil.example/"})

    assert response.status_code == 302 and response["Location"] == "/"


def test_anonymous_visitors_follow_the_os_and_cannot_save_a_theme(client: Client) -> None:
    assertContains(client.get("/accounts/login/"), 'data-bs-theme="light" data-theme-choice="auto"')

    response = client.post("/preferences/theme/", {"theme": "dark"})

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not Preference.objects.exists()


def test_only_post_changes_the_theme(client: Client, alice: Any) -> None:
    assert logged_in(client, alice).get("/preferences/theme/?theme=dark").status_code == 405


def test_every_page_links_the_svg_favicon_and_favicon_ico_leads_to_it(live_server: Any) -> None:
    with urllib.request.urlopen(live_server.url + "/accounts/login/", timeout=10) as answer:
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in answer.read().decode()

    # browsers ask for /favicon.ico whatever the page links; urllib follows the redirect over real TCP
    with urllib.request.urlopen(live_server.url + "/favicon.ico", timeout=10) as answer:
        assert answer.status == 200 and answer.url == live_server.url + "/static/favicon.svg"
        assert answer.headers["Content-Type"].startswith("image/svg+xml")
        assert answer.read().startswith(b"<svg")
