"""manage.py bootstrap and Workspace.from_config: a newcomer's first minutes."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from runs import sdk
from runs.models import ApiToken, Membership, Workspace


def bootstrap(*args: str) -> str:
    out = io.StringIO()
    call_command("bootstrap", *args, stdout=out)
    return out.getvalue()


def test_it_sets_up_a_studio_once(db: Any, tmp_path: Path) -> None:
    config = tmp_path / ".studio" / "config.json"
    first = bootstrap("--config", str(config), "--url", "http://127.0.0.1:8000")
    assert "Log in as 'admin' with the password:" in first
    password = first.rsplit("password:", 1)[1].split()[0].replace("\x1b[0m", "")
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert Workspace.objects.get(name="default").role_of(admin) == Membership.Role.OWNER
    written = json.loads(config.read_text())
    assert written["url"] == "http://127.0.0.1:8000" and written["workspace"] == "default"
    assert ApiToken.objects.authenticate(written["token"]).user == admin
    assert stat.S_IMODE(config.stat().st_mode) == 0o600  # it holds a secret

    second = bootstrap("--config", str(config), "--url", "http://127.0.0.1:8000")
    assert "Kept the SDK config" in second and "password" not in second
    assert json.loads(config.read_text())["token"] == written["token"]
    assert (User.objects.count(), Workspace.objects.count(), ApiToken.objects.count()) == (1, 1, 1)
    assert admin.memberships.count() == 1


def test_a_config_deep_in_the_file_system_names_its_token_in_what_fits(db: Any, tmp_path: Path) -> None:
    """The token's name holds the config's path; a long one (PostgreSQL refused it past 100 characters
    with a 500-like traceback) keeps its end."""
    config = tmp_path / ("a-long-folder-name-" * 6) / ".studio" / "config.json"
    bootstrap("--config", str(config), "--url", "http://127.0.0.1:8000")
    (token,) = ApiToken.objects.all()
    assert len(token.name) == 100
    assert token.name.startswith("bootstrap (…") and token.name.endswith("a-long-folder-name-/.studio/config.json)")
    assert ApiToken.objects.authenticate(json.loads(config.read_text())["token"]) == token


def test_it_sets_a_given_password_and_replaces_a_stale_config(db: Any, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"url": "http://127.0.0.1:8000", "workspace": "default", "token": "rs_revoked"}))
    bootstrap("--config", str(config), "--username", "ada", "--password", "correct horse")
    assert User.objects.get(username="ada").check_password("correct horse")
    assert ApiToken.objects.authenticate(json.loads(config.read_text())["token"]) is not None
    bootstrap("--config", str(config), "--username", "ada", "--password", "battery staple")
    assert User.objects.get(username="ada").check_password("battery staple")


def test_from_config_finds_the_file_in_a_parent_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STUDIO_URL", "STUDIO_TOKEN", "STUDIO_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    project = tmp_path / "project"
    (project / "src" / "deep").mkdir(parents=True)
    sdk.workspace.write_config(project / ".studio" / "config.json", url="http://a:1", token="t1", workspace="ws1")
    monkeypatch.chdir(project / "src" / "deep")
    ws = sdk.Workspace.from_config()
    assert (ws.url, ws.name) == ("http://a:1", "ws1")

    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "config.json").write_text(json.dumps({"url": "http://b:2", "token": "t2"}))
    assert sdk.Workspace.from_config(tmp_path / "plain").url == "http://b:2"
    assert sdk.Workspace.from_config(tmp_path / "plain" / "config.json").name == "default"

    monkeypatch.setenv("STUDIO_URL", "http://c:3")
    monkeypatch.setenv("STUDIO_WORKSPACE", "ws3")
    ws = sdk.Workspace.from_config()
    assert (ws.url, ws.name) == ("http://c:3", "ws3")


def test_from_config_says_what_to_do_when_there_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STUDIO_URL", "STUDIO_TOKEN", "STUDIO_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(sdk.UserErrorException, match="bootstrap"):
        sdk.Workspace.from_config()
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(sdk.UserErrorException, match="cannot read the studio config"):
        sdk.Workspace.from_config()
    monkeypatch.setenv("STUDIO_URL", "http://x:1")
    monkeypatch.setenv("STUDIO_TOKEN", "t")
    (tmp_path / "config.json").unlink()
    assert sdk.Workspace.from_config().url == "http://x:1"
