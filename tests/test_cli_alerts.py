"""`studio alert create/list/delete` against a live server, in-process through `main()` (the
`attached` folder and the `studio()` helper are tests/test_cli.py's)."""

from __future__ import annotations

from typing import Any

import pytest

from runs.cli import main
from runs.models import AlertRule, Workspace
from tests.conftest import make_run, token_for
from tests.test_cli import studio

pytestmark = pytest.mark.usefixtures("attached")  # every test runs in a folder attached as alice


@pytest.fixture
def experiments(workspace: Workspace, alice: Any) -> None:
    """Experiments mnist and cifar, each with a run."""
    make_run(workspace, alice, "mnist")
    make_run(workspace, alice, "cifar")


def test_it_creates_lists_and_deletes_a_rule(experiments: None, capsys: Any) -> None:
    created = studio(
        capsys, "alert", "create", "-e", "mnist", "-e", "cifar", "--status", "Failed,Canceled",
        "--email", "ops@example.org", "--email", "ml@example.org,oncall@example.org",
        "--member", "bob", "--name", "vision failures",
    )  # fmt: skip
    rule = created["rule"]
    assert created["webhookSecret"] == ""  # no webhook, no secret
    assert rule["name"] == "vision failures"
    assert sorted(rule["experiments"]) == ["cifar", "mnist"]
    assert rule["statuses"] == ["Failed", "Canceled"]
    assert rule["emails"] == ["ops@example.org", "ml@example.org", "oncall@example.org"]
    assert (rule["members"], rule["createdBy"]) == (["bob"], "alice")

    assert [r["id"] for r in studio(capsys, "alert", "list")] == [rule["id"]]
    assert studio(capsys, "alert", "list", "--query", "[?contains(statuses, 'Failed')].name") == ["vision failures"]
    assert studio(capsys, "alert", "list", "--query", "[?contains(statuses, 'Completed')]") == []

    assert main(["alert", "list", "-o", "table", "--query", "[].{id: id, name: name, by: createdBy}"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["id", "name", "by"]
    assert table[2].split() == [str(rule["id"]), "vision", "failures", "alice"]

    assert main(["alert", "delete", str(rule["id"])]) == 0
    assert studio(capsys, "alert", "list") == []
    assert not AlertRule.objects.exists()
    assert main(["alert", "delete", str(rule["id"])]) == 1
    err = capsys.readouterr().err
    assert err.startswith("studio: error: ") and err.count("\n") == 1


def test_a_webhook_rules_secret_is_printed_once(experiments: None, capsys: Any) -> None:
    # .invalid never resolves (RFC 6761): making the rule sends no DNS query off the machine.
    created = studio(capsys, "alert", "create", "--status", "Completed", "--webhook", "https://hooks.invalid/x")
    secret = created["webhookSecret"]
    assert len(secret) == 64 and created["rule"]["experiments"] == []  # every experiment
    assert AlertRule.objects.get().webhook_secret == secret
    assert main(["alert", "list"]) == 0
    assert secret not in capsys.readouterr().out
    assert studio(capsys, "alert", "create", "--status", "Failed", "--webhook", "https://x.invalid/",
                  "--query", "rule.webhookUrl") == "https://x.invalid/"  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--status", "Bogus", "--email", "ops@example.org"], "unknown status 'Bogus'"),
        (["--status", "Failed", "--email", "not-an-address"], "is not an email address"),
        (["--status", "Failed", "-e", "missing", "--email", "ops@example.org"], "no experiment 'missing'"),
        (["--status", "Failed", "--member", "charlie", "--email", "ops@example.org"], "is not a member"),
        (["--status", "Failed", "--webhook", "ftp://example.org/x"], "is not an http(s) URL"),
        (["--status", "Failed", "--webhook", "http://localhost:8000/x"], "resolves to a loopback address"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_stores_nothing(
    experiments: None, charlie: Any, capsys: Any, argv: list[str], message: str
) -> None:
    assert main(["alert", "create", *argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("studio: error: ") and captured.err.count("\n") == 1
    assert message in captured.err
    assert not AlertRule.objects.exists()


def test_missing_recipients_is_a_usage_error(experiments: None, capsys: Any) -> None:
    assert main(["alert", "create", "-e", "mnist", "--status", "Failed"]) == 2
    err = capsys.readouterr().err
    assert err == "studio: error: say who hears about it: --email, --member or --webhook\n"
    with pytest.raises(SystemExit) as exited:  # argparse's own usage error: --status is required
        main(["alert", "create", "--email", "ops@example.org"])
    assert exited.value.code == 2
    assert "--status" in capsys.readouterr().err
    assert not AlertRule.objects.exists()


def test_a_reader_can_list_but_not_create_or_delete(
    experiments: None, bob: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule = studio(capsys, "alert", "create", "--status", "Failed", "--email", "ops@example.org")["rule"]
    monkeypatch.setenv("STUDIO_TOKEN", token_for(bob))
    assert [r["id"] for r in studio(capsys, "alert", "list")] == [rule["id"]]
    assert main(["alert", "create", "--status", "Failed", "--email", "ops@example.org"]) == 1
    assert "Contributor or Owner" in capsys.readouterr().err
    assert main(["alert", "delete", str(rule["id"])]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert AlertRule.objects.count() == 1
