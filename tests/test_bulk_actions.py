"""Acting on many runs at once (runs/bulk.py) through the REST API's runs/bulk/ and the CLI: each
action's rules (roles, skipped runs, one transaction), and the record each run keeps of who did it."""

from __future__ import annotations

from typing import Any

import pytest

from runs.models import Experiment, Run, RunChange, RunSpec
from tests.conftest import make_run

pytestmark = pytest.mark.django_db
BULK = "/api/v1/workspaces/default/runs/bulk/"


@pytest.fixture
def runs(workspace: Any, other_workspace: Any, alice: Any, charlie: Any) -> dict[str, Run]:
    made = {
        "a": make_run(workspace, alice, "sweep", display_name="a", tags={"sweep": "lr"}),
        "b": make_run(workspace, alice, "sweep", display_name="b", tags={"sweep": "lr"}),
        "c": make_run(workspace, alice, "other", display_name="c"),
        "theirs": make_run(other_workspace, charlie, "secret", display_name="theirs", tags={"sweep": "lr"}),
    }
    made["b"].transition(Run.Status.COMPLETED)
    Experiment.ensure(workspace, "archive-2026")
    return made


def test_tag_the_runs_a_query_matches_and_each_records_who(alice_api: Any, runs: dict[str, Run], alice: Any) -> None:
    response = alice_api.post(
        BULK, {"action": "tag", "q": "tags.sweep = lr", "tags": {"reviewed": "yes"}}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"changed": 2, "skipped": []}
    for name in ("a", "b"):
        assert runs[name].get_tags()["reviewed"] == "yes"
        change = RunChange.objects.get(run=runs[name])
        assert (change.action, change.by, change.said) == ("tag", alice, "Tags set: reviewed=yes")
    assert "reviewed" not in runs["theirs"].get_tags()  # another workspace's run is never touched
    assert "reviewed" not in runs["c"].get_tags()


def test_cancel_skips_the_runs_that_have_ended_and_says_why(alice_api: Any, runs: dict[str, Run]) -> None:
    ids = [runs["a"].run_id, runs["b"].run_id, runs["theirs"].run_id, "nope"]
    response = alice_api.post(BULK, {"action": "cancel", "runIds": ids}, format="json")
    assert response.json() == {
        "changed": 1,
        "skipped": [
            {"runId": runs["theirs"].run_id, "reason": f"no run {runs['theirs'].run_id!r} in workspace 'default'"},
            {"runId": "nope", "reason": "no run 'nope' in workspace 'default'"},
            {"runId": runs["b"].run_id, "reason": "cannot be canceled: it is Completed"},
        ],
    }
    runs["a"].refresh_from_db()
    assert runs["a"].status == Run.Status.CANCELED
    assert runs["a"].events.last().by is not None


def test_untag_and_move_with_their_children(alice_api: Any, runs: dict[str, Run], workspace: Any) -> None:
    (child,) = runs["a"].experiment.create_runs([RunSpec()], parent=runs["a"], by=None)
    response = alice_api.post(BULK, {"action": "untag", "runIds": [runs["a"].run_id, runs["c"].run_id],
                                     "keys": ["sweep"]}, format="json")  # fmt: skip
    assert response.json() == {
        "changed": 1,
        "skipped": [{"runId": runs["c"].run_id, "reason": "has none of the tags sweep"}],
    }
    assert runs["a"].get_tags() == {}
    moved = alice_api.post(BULK, {"action": "move", "runIds": [runs["a"].run_id], "experiment": "archive-2026"},
                           format="json")  # fmt: skip
    assert moved.json() == {"changed": 1, "skipped": []}
    target = Experiment.objects.get(workspace=workspace, name="archive-2026")
    assert set(target.runs.values_list("run_id", flat=True)) == {runs["a"].run_id, child.run_id}  # with its child
    assert sorted(target.runs.values_list("number", flat=True)) == [1, 2]  # numbered as the experiment's own
    assert RunChange.objects.get(run=child).said == "Moved from experiment sweep to archive-2026"
    again = alice_api.post(BULK, {"action": "move", "runIds": [runs["a"].run_id], "experiment": "archive-2026"},
                           format="json")  # fmt: skip
    assert again.json()["skipped"] == [{"runId": runs["a"].run_id, "reason": "is already in experiment 'archive-2026'"}]


@pytest.mark.parametrize(
    ("body", "target", "words"),
    [
        ({"action": "explode", "q": ""}, "action", "archive, restore, purge, not 'explode'"),
        ({"action": "tag", "q": "x", "colour": "red"}, "colour", "not a field of a bulk action"),
        ({"action": "tag", "q": "x"}, "tags", "the tags to add"),
        ({"action": "untag", "q": "x", "keys": "sweep"}, "keys", "as a list"),
        ({"action": "move", "q": "x", "experiment": "nowhere"}, "experiment", "has no experiment 'nowhere'"),
        ({"action": "cancel"}, "runIds", "one of the two"),
        ({"action": "cancel", "q": "x", "runIds": ["a"]}, "runIds", "one of the two"),
        ({"action": "cancel", "q": "status = ("}, "q", ""),
        ({"action": "cancel", "runIds": "abc"}, "runIds", "a list of run ids"),
    ],
)
def test_a_bad_bulk_request_is_a_400_naming_the_field_and_changes_nothing(
    alice_api: Any, runs: dict[str, Run], body: dict[str, Any], target: str, words: str
) -> None:
    response = alice_api.post(BULK, body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["target"] == target
    assert words in response.json()["error"]["message"]
    assert not RunChange.objects.exists()
    assert not Run.objects.filter(status=Run.Status.CANCELED).exists()


def test_a_reader_may_not_act_and_an_outsider_sees_no_workspace(
    bob_api: Any, charlie_api: Any, runs: dict[str, Run]
) -> None:
    refused = bob_api.post(BULK, {"action": "cancel", "q": ""}, format="json")  # bob reads the workspace
    assert refused.status_code == 403
    assert "lets you read runs, not change them" in refused.json()["error"]["message"]
    assert charlie_api.post(BULK, {"action": "cancel", "q": ""}, format="json").status_code == 404
    assert not Run.objects.filter(status=Run.Status.CANCELED).exists()


def test_one_action_is_one_transaction(alice_api: Any, runs: dict[str, Run], monkeypatch: Any) -> None:
    calls = []

    def fail_on_second(self: Run, tags: Any) -> None:
        calls.append(self.run_id)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        original(self, tags)

    original = Run.set_tags
    monkeypatch.setattr(Run, "set_tags", fail_on_second)
    with pytest.raises(RuntimeError):
        alice_api.post(BULK, {"action": "tag", "q": "tags.sweep = lr", "tags": {"x": "1"}}, format="json")
    assert not RunChange.objects.exists()
    assert all("x" not in run.get_tags() for run in Run.objects.all())  # the first run's tag was rolled back


def test_the_activity_tab_shows_who_changed_a_run(
    client: Any, alice_api: Any, runs: dict[str, Run], alice: Any
) -> None:
    alice_api.post(BULK, {"action": "tag", "runIds": [runs["a"].run_id], "tags": {"reviewed": None}}, format="json")
    client.force_login(alice)
    page = client.get(f"/w/default/runs/{runs['a'].run_id}/activity/").content.decode()
    assert '<td colspan="2">Tags set: reviewed</td><td>alice</td>' in page
