"""Named actors, as in healthchecks: alice owns the workspace, carol contributes, bob reads, and
charlie is a stranger to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from runs import sdk
from runs.cli import main
from runs.models import ApiToken, Experiment, Membership, Run, RunSpec, Workspace
from tests.proxy import TCPProxy

# The live server answers each keep-alive connection in a thread of its own; a persistent database
# connection there would outlive the test run and keep PostgreSQL from dropping the test database.
settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


@pytest.fixture(autouse=True)
def _no_system_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs made by tests are not sampled (a test that outlives the 10 s interval would find system/*
    metrics among those it checks); tests/test_system_metrics.py turns sampling on for its own."""
    monkeypatch.setenv("STUDIO_SYSTEM_METRICS", "0")


@pytest.fixture(autouse=True)
def _forget_open_runs() -> Any:
    """Runs a test leaves open are not the SDK's to end at exit: their server is gone by then."""
    yield
    from runs.sdk import _sender

    if _sender._sender is not None:
        for run_id in _sender._sender.watched():
            _sender._sender.unwatch(run_id)


@pytest.fixture
def monitor(settings: Any) -> Any:
    """The heartbeat monitor, sweeping every 0.1 s, with timeouts of a second."""
    from runs import monitor

    settings.RUNS_HEARTBEAT_TIMEOUT = 1
    settings.RUNS_LOST_CONTACT_AFTER = 1
    monitor.start_in_background(0.1)
    yield monitor
    monitor.stop()


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _storage(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    # Pages find static files without a collectstatic manifest (production keeps the manifest).
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def alice(django_db_blocker: Any, db: Any) -> User:
    return User.objects.create_user("alice", "alice@example.org", "password")


@pytest.fixture
def bob(db: Any) -> User:
    return User.objects.create_user("bob", "bob@example.org", "password")


@pytest.fixture
def carol(db: Any) -> User:
    return User.objects.create_user("carol", "carol@example.org", "password")


@pytest.fixture
def charlie(db: Any) -> User:
    return User.objects.create_user("charlie", "charlie@example.org", "password")


@pytest.fixture
def workspace(alice: User, bob: User, carol: User) -> Workspace:
    ws = Workspace.objects.create(name="default")
    ws.add_member(alice, Membership.Role.OWNER)
    ws.add_member(carol, Membership.Role.CONTRIBUTOR)
    ws.add_member(bob, Membership.Role.READER)
    return ws


@pytest.fixture
def other_workspace(charlie: User) -> Workspace:
    ws = Workspace.objects.create(name="elsewhere")
    ws.add_member(charlie, Membership.Role.OWNER)
    return ws


def token_for(user: User) -> str:
    return ApiToken.objects.create_token(user, "test")[1]


def api_client(user: User) -> Any:
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return client


@pytest.fixture
def alice_api(alice: User, workspace: Workspace) -> Any:
    return api_client(alice)


@pytest.fixture
def bob_api(bob: User, workspace: Workspace) -> Any:
    return api_client(bob)


@pytest.fixture
def charlie_api(charlie: User, other_workspace: Workspace) -> Any:
    return api_client(charlie)


def make_run(workspace: Workspace, user: User, experiment: str = "exp", **spec: Any) -> Run:
    """A Running interactive run, made the way the API makes one."""
    exp, _ = Experiment.ensure(workspace, experiment)
    (run,) = exp.create_runs([RunSpec(**spec)], by=user)
    return run


@pytest.fixture
def ws(live_server: Any, alice: User, workspace: Workspace) -> sdk.Workspace:
    """The SDK's workspace object, talking to a live server over HTTP as alice."""
    return sdk.Workspace("default", url=live_server.url, token=token_for(alice))


@pytest.fixture
def reader_ws(live_server: Any, bob: User, workspace: Workspace) -> sdk.Workspace:
    return sdk.Workspace("default", url=live_server.url, token=token_for(bob))


@pytest.fixture
def proxy(live_server: Any) -> Iterator[TCPProxy]:
    """A real TCP proxy in front of the live server, to cut, slow or break its connections."""
    address = urlsplit(live_server.url)
    proxy = TCPProxy(address.hostname, address.port)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxied_ws(proxy: TCPProxy, alice: User, workspace: Workspace) -> sdk.Workspace:
    return sdk.Workspace("default", url=proxy.url, token=token_for(alice))


@pytest.fixture
def attached(live_server: Any, alice: Any, workspace: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder attached to the default workspace with `studio folder attach`."""
    for name in ("STUDIO_URL", "STUDIO_TOKEN", "STUDIO_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["folder", "attach", "-w", "default", "--url", live_server.url, "--token", token_for(alice)]) == 0
    return tmp_path
