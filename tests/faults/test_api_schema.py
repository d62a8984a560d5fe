"""Schemathesis against the live server: every operation of /api/schema/, called over TCP with a real
token on a workspace with runs of every kind, answers as the schema says: no 5xx, and documented status
codes, content types and bodies (positive and negative cases, schemathesis' coverage cases besides).

Bounded: a fixed seed, ``MAX_EXAMPLES`` generated cases per operation, and a time budget past which the
remaining cases are not sent (with a warning saying how many)."""

from __future__ import annotations

import io
import time
import warnings
import zipfile
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from hypothesis import HealthCheck, settings

from runs.models import AlertRule, Experiment, Run, RunSpec, Snapshot, Workspace
from tests.conftest import make_run, token_for

MAX_EXAMPLES = 25
TIME_BUDGET_S = 150.0
CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance"]

_budget: dict[str, float] = {}


def _seed(workspace: Workspace, alice: User) -> dict[str, list[Any]]:
    """Runs of every kind (running, child, script with arguments and a snapshot, failed, completed),
    with metrics, a file, a log and an alert rule."""
    running = make_run(workspace, alice, "exp", display_name="running", tags={"team": "vision"}, properties={"p": "1"})
    running.log_metrics([{"name": "loss", "value": 0.5, "step": 1}, {"name": "acc", "value": float("nan")}])
    running.add_file("model.txt", io.BytesIO(b"weights"))
    running.append_log("std_log.txt", 0, b"hello\n")
    (child,) = running.experiment.create_runs([RunSpec(display_name="child")], by=alice, parent=running)
    script = make_run(
        workspace,
        alice,
        "exp",
        type=Run.Type.SCRIPT,
        status=Run.Status.NOT_STARTED,
        script="train.py",
        arguments=["--lr", "0.1"],
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("train.py", "print('hi')\n")
    archive.seek(0)
    Snapshot.store(script, archive)
    AlertRule.create_rule(workspace, by=alice, statuses=["Failed", "Completed"], emails=["ops@example.org"])
    failed = make_run(workspace, alice, "exp", display_name="failed")
    failed.fail(by=alice, code="UserError", message="boom", details="trace")
    completed = make_run(workspace, alice, "other", display_name="completed")
    completed.transition(Run.Status.COMPLETED, by=alice)
    Experiment.ensure(workspace, "empty")
    return {
        "runs": [run.run_id for run in (running, child, script, failed, completed)],
        "rules": list(AlertRule.objects.values_list("pk", flat=True)),
    }


@pytest.fixture
def api_schema(request: Any, live_server: Any, alice: User, workspace: Workspace) -> Any:
    # schemathesis 4.32's from_fixture names each operation's subtest through Node._nodeid, which pytest 9.2
    # no longer has.
    request.node._nodeid = request.node.nodeid
    real = _seed(workspace, alice)
    config = schemathesis.Config.from_dict(
        {
            "seed": 20261130,
            "headers": {"Authorization": f"Bearer {token_for(alice)}"},
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "no-shrink": True, "database": "none"},
            "phases": {"stateful": {"enabled": False}},  # the schema has no links to follow
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            # Path parameters name real things (a path parameter is one segment), so calls reach data;
            # schemathesis' coverage cases still try others.
            "dictionaries": {
                "runs": {"values": real["runs"]},
                "rules": {"values": real["rules"]},
                "paths": {"values": ["model.txt", "std_log.txt"]},
                "experiments": {"values": ["exp", "other", "empty"]},
                "users": {"values": ["bob", "carol"]},
            },
            "parameters": {
                "path.workspace": "default",
                "path.run_id": {"dictionary": "runs"},
                "path.rule_id": {"dictionary": "rules"},
                "path.path": {"dictionary": "paths"},
                "path.name": {"dictionary": "experiments"},
                "path.username": {"dictionary": "users"},
            },
        }
    )
    _budget.update(deadline=time.monotonic() + TIME_BUDGET_S, unsent=0)
    yield schemathesis.openapi.from_url(f"{live_server.url}/api/schema/", config=config)
    if _budget["unsent"]:
        warnings.warn(f"{_budget['unsent']:.0f} schemathesis cases not sent: the time budget ran out", stacklevel=1)


# Snapshots are zips: sent as the raw bytes schemathesis generates (what is no zip is refused, 400).
schemathesis.serializer.alias("application/zip", "application/octet-stream")
schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_schema_says(case: Any) -> None:
    if time.monotonic() > _budget["deadline"]:
        _budget["unsent"] += 1
        return
    case.call_and_validate()
