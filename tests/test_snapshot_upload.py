"""A snapshot is unpacked where a script runs: entries that could land outside that folder are refused at
upload, with a 400 naming the entry, and nothing is stored."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from runs.models import Run, Snapshot
from tests.conftest import make_run

pytestmark = pytest.mark.django_db


def zip_of(*entries: tuple[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries:
            archive.writestr(name, content)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


@pytest.fixture
def script_run(workspace: Any, alice: Any) -> Run:
    return make_run(workspace, alice, type=Run.Type.SCRIPT, script="train.py", status=Run.Status.NOT_STARTED)


def put(api: Any, run: Run, body: bytes) -> Any:
    return api.put(f"/api/v1/runs/{run.run_id}/snapshot/", body, content_type="application/zip")


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (zip_of(("train.py", b""), ("../outside.py", b"")), "'../outside.py'"),
        (zip_of(("train.py", b""), ("lib/../../outside.py", b"")), "'lib/../../outside.py'"),
        (zip_of(("train.py", b""), ("/etc/cron.d/job", b"")), "'/etc/cron.d/job'"),
        (zip_of(("train.py", b""), ("./train2.py", b"")), "'./train2.py'"),
        (zip_of(("train.py", b""), ("lib\\..\\..\\outside.py", b"")), "'lib\\\\..\\\\..\\\\outside.py'"),
        (zip_of(("train.py", b""), symlink="data/passwd"), "a symbolic link, 'data/passwd'"),
    ],
    ids=["dot-dot", "dot-dot-inside", "absolute", "dot", "backslashes", "symlink"],
)
def test_entries_that_could_land_outside_the_folder_are_refused(
    alice_api: Any, script_run: Run, content: bytes, named: str
) -> None:
    response = put(alice_api, script_run, content)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["target"] == "snapshot"
    assert named in error["message"]
    assert not Snapshot.objects.filter(run=script_run).exists()
    assert not (Path(settings.MEDIA_ROOT) / f"runs/{script_run.pk}").exists() or not any(
        (Path(settings.MEDIA_ROOT) / f"runs/{script_run.pk}").iterdir()
    )
    assert alice_api.get(f"/api/v1/runs/{script_run.run_id}/snapshot/files/").status_code == 404


def test_a_refused_snapshot_can_be_sent_again_fixed(alice_api: Any, script_run: Run) -> None:
    assert put(alice_api, script_run, zip_of(("../x.py", b""))).status_code == 400
    response = put(alice_api, script_run, zip_of(("train.py", b"print(1)"), ("lib/util.py", b"")))
    assert response.status_code == 201, response.content
    listed = alice_api.get(f"/api/v1/runs/{script_run.run_id}/snapshot/files/").json()
    assert sorted(entry["path"] for entry in listed["files"]) == ["lib/util.py", "train.py"]
