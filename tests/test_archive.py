"""Archive, restore and purge (runs/bulk.py): archived runs leave every list, search, count, group and
export (``RunQuerySet.listed``, the one rule) until restored; purge deletes archived runs for good,
with their files, and is the Owners' alone. Through the REST API, the studio, the SDK and the CLI."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from runs import sdk
from runs.cli import main
from runs.models import Experiment, Metric, Run, RunChange, RunFile, RunSpec, Snapshot
from tests.conftest import api_client, make_run

pytestmark = pytest.mark.django_db
API = "/api/v1/workspaces/default"
BULK = f"{API}/runs/bulk/"


@pytest.fixture
def family(workspace: Any, alice: Any) -> dict[str, Run]:
    """Two ended runs of the sweep, one with a child; a run still going; all with a loss."""
    made = {
        "old": make_run(workspace, alice, "sweep", display_name="old", tags={"lr": "0.1"}),
        "kept": make_run(workspace, alice, "sweep", display_name="kept", tags={"lr": "0.1"}),
        "going": make_run(workspace, alice, "sweep", display_name="going", tags={"lr": "0.1"}),
    }
    (made["child"],) = made["old"].experiment.create_runs([RunSpec(display_name="child")], by=alice, parent=made["old"])
    for name, run in made.items():
        run.log_metrics([{"name": "loss", "value": 1.0 + len(name), "step": 0}])
        if name != "going":
            run.transition(Run.Status.COMPLETED)
    return made


def archive(api: Any, *run_ids: str) -> dict[str, Any]:
    response = api.post(BULK, {"action": "archive", "runIds": list(run_ids)}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def listed(api: Any, path: str = f"{API}/runs/", **params: str) -> list[str]:
    response = api.get(path, params)
    assert response.status_code == 200, response.content
    return sorted(run["displayName"] for run in response.json()["results"])


def test_archived_runs_leave_every_list_search_count_group_and_export(
    alice_api: Any, family: dict[str, Run], alice: Any, client: Client, workspace: Any
) -> None:
    said = archive(alice_api, family["old"].run_id, family["going"].run_id)
    assert said == {
        "changed": 1,
        "skipped": [
            {"runId": family["going"].run_id, "reason": "is Running: cancel it or let it end, then archive it"}
        ],
    }
    for run in (family["old"], family["child"]):  # with its child, each recording who did it
        run.refresh_from_db()
        assert run.archived_at is not None
        assert RunChange.objects.get(run=run, action="archive").by == alice
    # The API's lists, searches, counts, groups and exports
    assert listed(alice_api) == ["going", "kept"]
    assert listed(alice_api, include_children="true") == ["going", "kept"]
    assert listed(alice_api, q="old or child", include_children="true") == []
    assert alice_api.get(f"{API}/runs/", {"q": "tags.lr = 0.1"}).json()["count"] == 2
    groups = alice_api.get(f"{API}/runs/groups/", {"by": "tags.lr", "metrics": "loss"}).json()["groups"]
    assert [(g["key"], g["count"]) for g in groups] == [("0.1", 2)]
    exported = alice_api.get(f"{API}/runs/export/", {"cols": "name"}).getvalue().decode()
    assert exported.split() == ["name", "going", "kept"]  # newest first
    points = alice_api.get(f"{API}/runs/export/metrics/", {"include_children": "true"}).getvalue().decode()
    assert family["old"].run_id not in points and family["child"].run_id not in points
    # ...unless asked for: archived=true lists the archived ones
    assert listed(alice_api, archived="true", include_children="true") == ["child", "old"]
    assert listed(alice_api, f"/api/v1/runs/{family['old'].run_id}/children/") == ["child"]  # an archived run's family
    assert alice_api.get(f"/api/v1/runs/{family['old'].run_id}/").json()["archivedUtc"]  # found by its id
    assert "archivedUtc" not in alice_api.get(f"/api/v1/runs/{family['kept'].run_id}/").json()
    # The studio's table, its count, the experiments page's counts
    client.force_login(alice)
    page = client.get("/w/default/runs/", {"children": "1"})
    assertNotContains(page, ">old<")
    assertContains(page, '<span id="run-count">2</span>')
    assert [e.run_count for e in Experiment.objects.filter(name="sweep").with_run_summary()] == [2]
    shown = client.get("/w/default/runs/", {"archived": "1"})
    assertContains(shown, '<span id="run-count">1</span>')
    assertContains(shown, "Showing <strong>archived runs</strong>")
    assertContains(shown, 'value="restore"')
    assertContains(shown, 'value="purge"')  # alice is an Owner
    assertNotContains(shown, 'value="archive"')


def test_a_run_with_a_child_still_going_is_not_archived(alice_api: Any, family: dict[str, Run], alice: Any) -> None:
    (late,) = family["kept"].experiment.create_runs([RunSpec()], by=alice, parent=family["kept"])
    said = archive(alice_api, family["kept"].run_id)
    assert said["changed"] == 0
    assert said["skipped"][0]["reason"].startswith("has a child run that has not ended")
    late.refresh_from_db()
    family["kept"].refresh_from_db()
    assert (late.archived_at, family["kept"].archived_at) == (None, None)


def test_restore_by_query_finds_the_archived_runs(alice_api: Any, family: dict[str, Run]) -> None:
    archive(alice_api, family["old"].run_id, family["kept"].run_id)
    assert archive(alice_api, family["old"].run_id)["skipped"] == [
        {"runId": family["old"].run_id, "reason": "is already archived"}
    ]
    response = alice_api.post(BULK, {"action": "restore", "q": "name = old"}, format="json")
    assert response.json() == {"changed": 1, "skipped": []}
    assert listed(alice_api, include_children="true") == ["child", "going", "old"]
    assert RunChange.objects.get(run=family["child"], action="restore").said == "Restored from the archive"
    again = alice_api.post(BULK, {"action": "restore", "runIds": [family["going"].run_id]}, format="json")
    assert again.json()["skipped"] == [{"runId": family["going"].run_id, "reason": "is not archived"}]


def test_purge_is_for_owners_and_only_of_archived_runs_with_their_files(
    alice_api: Any, bob_api: Any, family: dict[str, Run], carol: Any, django_capture_on_commit_callbacks: Any
) -> None:
    old, child = family["old"], family["child"]
    stored = child.add_file("outputs/model.bin", io.BytesIO(b"weights"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("train.py", "print('hi')\n")
    buffer.seek(0)
    snapshot = Snapshot.store(old, buffer)
    names = [stored.storage_name, snapshot.storage_name]
    assert all(default_storage.exists(name) for name in names)
    archive(alice_api, old.run_id)

    assert bob_api.post(BULK, {"action": "purge", "runIds": [old.run_id]}, format="json").status_code == 403  # Reader
    refused = api_client(carol).post(BULK, {"action": "purge", "runIds": [old.run_id]}, format="json")
    assert refused.status_code == 403
    assert "only the Owners" in refused.json()["error"]["message"]
    assert Run.objects.filter(pk=old.pk).exists()

    with django_capture_on_commit_callbacks(execute=True):  # the files go once the purge has committed
        response = alice_api.post(
            BULK, {"action": "purge", "runIds": [old.run_id, family["kept"].run_id]}, format="json"
        )
    assert response.json() == {
        "changed": 1,
        "skipped": [{"runId": family["kept"].run_id, "reason": "is not archived: archive it first, then purge it"}],
    }
    assert not Run.objects.filter(pk__in=[old.pk, child.pk]).exists()
    assert not Metric.objects.filter(run_id__in=[old.pk, child.pk]).exists()
    assert not RunFile.objects.filter(pk=stored.pk).exists()
    assert not any(default_storage.exists(name) for name in names)  # the files too
    assert listed(alice_api, archived="true") == []


def test_the_studio_archives_from_a_runs_page_and_restores_it(
    client: Client, family: dict[str, Run], alice: Any, carol: Any
) -> None:
    client.force_login(carol)  # a Contributor
    page = client.get(f"/w/default/runs/{family['kept'].run_id}/")
    assertContains(page, '<input type="hidden" name="action" value="archive">')
    assertNotContains(client.get(f"/w/default/runs/{family['going'].run_id}/"), 'value="archive"')  # still going
    done = client.post(
        "/w/default/runs/bulk/",
        {"action": "archive", "runs": family["kept"].run_id, "next": f"/w/default/runs/{family['kept'].run_id}/"},
        follow=True,
    )
    assertContains(done, "Archived 1 run.")
    assertContains(done, "This run is <strong>archived</strong>")
    assertNotContains(client.get("/w/default/runs/", {"archived": "1"}), 'value="purge"')  # not an Owner
    assert client.get("/w/default/runs/bulk/", {"action": "purge", "runs": family["kept"].run_id}).status_code == 403
    confirm = client.get("/w/default/runs/bulk/", {"action": "restore", "all_matching": ""})
    assertContains(confirm, "Restore 1 run?")  # the archived ones: here, kept
    done = client.post("/w/default/runs/bulk/", {"action": "restore", "runs": family["kept"].run_id}, follow=True)
    assertContains(done, "Restored 1 run.")
    family["kept"].refresh_from_db()
    assert family["kept"].archived_at is None
    client.force_login(alice)
    archive_all = client.get("/w/default/runs/bulk/", {"action": "purge", "all_matching": ""})
    assertContains(archive_all, "Purge 0 runs?")  # nothing archived now


def test_the_sdk_and_cli_list_and_act_on_archived_runs(attached: Path, capsys: Any) -> None:
    capsys.readouterr()
    ws = sdk.Workspace.from_config()
    exp = sdk.Experiment(ws, "cli-archive")
    done = [exp.start_logging(display_name=f"r{i}") for i in range(3)]
    for run in done[:2]:
        run.complete()
    assert main(["run", "bulk", "archive", "--filter", "experiment = cli-archive"]) == 0
    captured = capsys.readouterr()
    assert "1 run changed, 1 skipped" not in captured.err
    assert '"changed": 2' in captured.out
    assert [run.id for run in exp.get_runs()] == [done[2].id]
    assert {run.id for run in exp.get_runs(archived=True)} == {done[0].id, done[1].id}
    assert main(["run", "list", "-e", "cli-archive", "--archived", "--query", "length(@)"]) == 0
    assert capsys.readouterr().out.strip() == "2"
    assert main(["run", "bulk", "purge", "--filter", "name = r0"]) == 0
    capsys.readouterr()
    assert [run.id for run in exp.get_runs(archived=True)] == [done[1].id]
    done[2].complete()
