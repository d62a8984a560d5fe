"""`manage.py backup` while SDK clients log and upload, then `manage.py restore` into an empty data folder
and database: every run, metric point, log byte and file the backup holds is there and equal, and nothing
written before the backup began is missing. Real processes throughout: gunicorn, SDK clients, the commands."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from runs import backups
from tests.faults.server import ROOT, StudioServer, database_configurations

WRITERS = 2

# An SDK client: runs one after another, each with metric points (flushed in batches of 40), log lines
# appended through the API and a 64 KiB file. Every write the server has acknowledged goes to the journal.
WRITER = """
import hashlib, io, json, os, sys, time
from pathlib import Path

import requests
from runs.sdk import Experiment, Workspace

tag, journal_path, stop = sys.argv[1], sys.argv[2], Path(sys.argv[3])
experiment = Experiment(Workspace.from_config(), f"backup-{tag}")
logs = requests.Session()
logs.headers["Authorization"] = "Bearer " + os.environ["STUDIO_TOKEN"]
journal = open(journal_path, "a", buffering=1)

def note(**entry):
    journal.write(json.dumps({**entry, "at": time.time()}) + "\\n")

round_ = 0
while not stop.exists():
    run = experiment.start_logging(display_name=f"{tag}-{round_}")
    log_size = 0
    for batch in range(5):
        for step in range(batch * 40, (batch + 1) * 40):
            run.log("loss", 1 / (step + 1) + round_)
        run.flush()
        note(kind="points", run=run.id, count=(batch + 1) * 40)
        line = f"{tag} round {round_} batch {batch}\\n".encode()
        url = f"{os.environ['STUDIO_URL']}/api/v1/runs/{run.id}/logs/logs/std_log.txt"
        logs.post(url, params={"offset": log_size}, data=line, timeout=60).raise_for_status()
        log_size += len(line)
        note(kind="log", run=run.id, size=log_size)
    content = hashlib.sha256(f"{tag}-{round_}".encode()).digest() * 2048
    run.upload_file(f"outputs/data-{round_}.bin", io.BytesIO(content))
    note(kind="file", run=run.id, path=f"outputs/data-{round_}.bin", sha=hashlib.sha256(content).hexdigest())
    run.complete()
    note(kind="completed", run=run.id)
    round_ += 1
"""

# Everything the studio holds of each run, read through the models (files through storage, as served).
DUMP = """
import hashlib, json
from runs.models import MetricPoint, Run

out = {}
for run in Run.objects.order_by("run_id"):
    points = MetricPoint.objects.filter(metric__run=run).order_by("metric__name", "step")
    files = {}
    for f in run.files.all():
        with f.open() as handle:
            data = handle.read()
        assert len(data) == f.size, (f.path, len(data), f.size)
        files[f.path] = hashlib.sha256(data).hexdigest()
    out[run.run_id] = {
        "status": run.status,
        "points": [[p.metric.name, p.step, p.number, p.value] for p in points.select_related("metric")],
        "logs": {log.path: b"".join(log.iter_bytes()).decode() for log in run.logs.all()},
        "files": files,
    }
print(json.dumps(out))
"""


class Studio:
    """A data folder and database of its own, configured through the environment as a server's are."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=180
        )
        assert not check or done.returncode == 0, f"manage.py {' '.join(args)}: {done.stdout}{done.stderr}"
        return done

    def dump(self) -> dict[str, Any]:
        setup = "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'studio.settings'; django.setup()\n"
        done = subprocess.run(
            [sys.executable, "-c", setup + DUMP], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def _postgres(sql: str) -> None:
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
        connection.execute(sql)


@pytest.fixture
def empty_studio(request: Any, tmp_path: Path) -> Iterator[Any]:
    """make(configuration, base_env): an empty studio (no database tables, no files) configured like
    ``base_env``'s server, in a new data folder; on PostgreSQL, a new database, dropped afterwards."""
    databases: list[str] = []

    def make(configuration: str, base_env: dict[str, str]) -> Studio:
        data_dir = tmp_path / "restored"
        env = {k: v for k, v in base_env.items() if k != "DATABASE_URL"} | {"STUDIO_DATA_DIR": str(data_dir)}
        if configuration == "sqlite-url":
            env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'restored-elsewhere' / 'studio.sqlite3'}"
        elif configuration == "postgresql":
            name = f"studio_restored_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            _postgres(f'CREATE DATABASE "{name}"')
            databases.append(name)
            env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{name}"
        return Studio(env)

    yield make
    for name in databases:
        _postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def journal_entries(paths: list[Path]) -> list[dict[str, Any]]:
    return [json.loads(line) for path in paths if path.exists() for line in path.read_text().splitlines()]


@pytest.mark.parametrize("configuration", database_configurations())
def test_a_backup_taken_while_clients_write_restores_everything_it_holds(
    configuration: str, tmp_path: Path, empty_studio: Any
) -> None:
    (tmp_path / "source").mkdir()
    with StudioServer(tmp_path / "source", configuration) as server:
        server.start()
        env = server.env | {"STUDIO_URL": server.url, "STUDIO_TOKEN": server.token, "STUDIO_WORKSPACE": "default"}
        stop = tmp_path / "stop"
        journals = [tmp_path / f"journal-{i}.jsonl" for i in range(WRITERS)]
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, f"w{i}", str(journals[i]), str(stop)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for i in range(WRITERS)
        ]
        try:
            deadline = time.monotonic() + 60
            while len([e for e in journal_entries(journals) if e["kind"] == "completed"]) < 2 * WRITERS:
                assert time.monotonic() < deadline, "the writers did not get going"
                assert all(w.poll() is None for w in writers), [w.communicate()[0] for w in writers]
                time.sleep(0.1)
            backup_started = time.time()
            backup = Studio(server.env).manage("backup", str(tmp_path))
            backup_ended = time.time()
            time.sleep(0.5)  # more writes after the backup, which it must not be confused by
        finally:
            stop.touch()
            outputs = [w.communicate(timeout=120)[0].decode() for w in writers]
        assert [w.returncode for w in writers] == [0] * WRITERS, outputs
        source = Studio(server.env).dump()

    archives = list(tmp_path.glob("studio-backup-*.tar.gz"))
    assert len(archives) == 1, backup.stdout
    assert archives[0].stat().st_mode & 0o777 == 0o600
    entries = journal_entries(journals)
    during = [e for e in entries if backup_started < e["at"] < backup_ended]
    after = [e for e in entries if e["at"] > backup_ended]
    assert during and after, "the writers must write while the backup runs and after it"

    restored_studio = empty_studio(configuration, server.env)
    answer = restored_studio.manage("restore", str(archives[0]))
    assert "Restored" in answer.stdout
    restored = restored_studio.dump()

    # Everything the backup holds is the source's, equal: a run's points, log and files as they were
    # at the snapshot (the points and log then, a prefix of what the source has now).
    assert restored and set(restored) <= set(source)
    for run_id, run in restored.items():
        now = source[run_id]
        assert run["points"] == now["points"][: len(run["points"])], run_id
        for path, text in run["logs"].items():
            assert now["logs"][path].startswith(text), run_id
        assert run["files"] == {path: now["files"][path] for path in run["files"]}, run_id
    # Nothing acknowledged before the backup began is missing from it.
    for entry in entries:
        if entry["at"] >= backup_started:
            continue
        run = restored[entry["run"]]
        if entry["kind"] == "points":
            assert len(run["points"]) >= entry["count"], entry
        elif entry["kind"] == "log":
            assert len(run["logs"]["logs/std_log.txt"].encode()) >= entry["size"], entry
        elif entry["kind"] == "file":
            assert run["files"][entry["path"]] == entry["sha"], entry
        elif entry["kind"] == "completed":
            assert run["status"] == "Completed", entry
    # The backup is a snapshot: writes after it are in the source, not in the backup.
    assert sum(len(r["points"]) for r in restored.values()) < sum(len(r["points"]) for r in source.values())

    # A second restore over the now non-empty studio is refused, and --force replaces it.
    refused = restored_studio.manage("restore", str(archives[0]), check=False)
    assert refused.returncode == 1
    assert "is not empty" in refused.stderr and "--force" in refused.stderr
    restored_studio.manage("restore", "--force", str(archives[0]))
    assert restored_studio.dump() == restored


# --- What the commands refuse, and say why (in this process: nothing is written) ------------------------


def test_backup_refuses_a_name_that_is_not_an_archive(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"ending in \.tar\.gz, \.tgz or \.tar"):
        call_command("backup", str(tmp_path / "studio.zip"))


def test_backup_makes_a_folder_named_with_a_trailing_slash(transactional_db: Any, tmp_path: Path) -> None:
    call_command("backup", f"{tmp_path / 'nightly'}/", stdout=io.StringIO())
    (archive,) = (tmp_path / "nightly").iterdir()
    assert archive.name.startswith("studio-backup-") and archive.name.endswith(".tar.gz")
    assert tarfile.is_tarfile(archive)


def test_backup_never_overwrites_a_file(tmp_path: Path) -> None:
    (tmp_path / "studio.tar.gz").write_bytes(b"an earlier backup")
    with pytest.raises(CommandError, match="exists; give a new name"):
        call_command("backup", str(tmp_path / "studio.tar.gz"))
    assert (tmp_path / "studio.tar.gz").read_bytes() == b"an earlier backup"


def _archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_restore_refuses_an_archive_that_is_not_a_backup(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "other.tar.gz", {"notes.txt": b"hello"})
    with pytest.raises(CommandError, match="not a backup made by manage.py backup"):
        call_command("restore", str(archive))


def test_restore_refuses_a_backup_of_the_other_engine(tmp_path: Path) -> None:
    other = "postgresql" if connection.vendor == "sqlite" else "sqlite"
    manifest = json.dumps({"format": 1, "vendor": other, "counts": {}, "files": {}, "created_at": "2026-01-01"})
    archive = _archive(tmp_path / "backup.tar.gz", {"manifest.json": manifest.encode()})
    with pytest.raises(CommandError, match=f"a backup of a {other} database and this studio's database is"):
        call_command("restore", str(archive))


@pytest.mark.parametrize("name", ["files/../secret_key", "files//etc/passwd", "files/runs/../../x", "files/"])
def test_restore_never_writes_outside_media_root(tmp_path: Path, name: str) -> None:
    with pytest.raises(backups.BackupError, match="unsafe file name"):
        backups._media_destination(tmp_path, name)
