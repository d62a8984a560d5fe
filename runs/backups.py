"""Backups of a whole studio, taken while it serves: the database and the run files in one tar archive.

The archive holds, in this order::

    manifest.json           what the backup holds: the database engine, row counts, the files the database names
    database.sqlite3        SQLite: a copy made with SQLite's online backup API (one consistent snapshot)
    database.pgdump         PostgreSQL: pg_dump's custom format, restored with pg_restore
    secret_key              the generated SECRET_KEY from STUDIO_DATA_DIR, when the environment does not set one
    files/...               everything under MEDIA_ROOT (run outputs, images, snapshots)

The database is copied first, as one snapshot, and the files after it. A run file is written to storage
before its row is committed, is never changed afterwards, and is never deleted, so every file a row of
the snapshot names is already complete on disk when the files are copied. Files that arrive after the
snapshot may be in the archive too; nothing names them. Logs live in the database (LogChunk), so a log
appended to during the backup is in it up to the snapshot. The archive is checked before it is kept:
every file the snapshot names, at the size the row says, or the backup fails.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.postgresql.client import DatabaseClient

from runs.models import MetricPoint, Run, RunFile, Snapshot

FORMAT = 1
MANIFEST = "manifest.json"
SECRET_KEY = "secret_key"
FILES = "files/"
DATABASE_MEMBER = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
SUFFIXES = {".tar": "", ".tar.gz": "gz", ".tgz": "gz"}
COMPRESSLEVEL = 1  # run files (weights, images) hardly compress; the database does even at level 1
PG_CLIENT_HINT = (
    "install PostgreSQL's client tools, of the server's major version or newer "
    "(Debian: scripts/apt-install.sh postgresql-client)"
)


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


def _file_tables() -> list[str]:
    """The tables whose rows name a file in MEDIA_ROOT, by (storage_name, size)."""
    return [RunFile._meta.db_table, Snapshot._meta.db_table]


def _counted_tables() -> dict[str, str]:
    return {
        "runs": Run._meta.db_table,
        "metric_points": MetricPoint._meta.db_table,
        "run_files": RunFile._meta.db_table,
        "snapshots": Snapshot._meta.db_table,
    }


@dataclass
class Manifest:
    vendor: str
    counts: dict[str, int]
    # storage name -> size: every file a row of the database copy names.
    files: dict[str, int]
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    format: int = FORMAT

    def to_bytes(self) -> bytes:
        return json.dumps(self.__dict__, indent=1, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        fields = json.loads(data)
        if fields.get("format") != FORMAT:
            raise BackupError(f"this backup's format is {fields.get('format')!r}; this studio reads format {FORMAT}")
        return cls(**fields)

    def describe(self) -> str:
        c = self.counts
        return (
            f"{c['runs']:,} runs, {c['metric_points']:,} metric points, {c['run_files']:,} run files "
            f"and {c['snapshots']:,} snapshots"
        )


def _read_rows(query: Callable[[str], list[tuple[Any, ...]]]) -> tuple[dict[str, int], dict[str, int]]:
    """Row counts and the files named, read by ``query`` (one SQL statement -> rows) from one snapshot."""
    counts = {name: query(f'SELECT COUNT(*) FROM "{table}"')[0][0] for name, table in _counted_tables().items()}
    files: dict[str, int] = {}
    for table in _file_tables():
        files.update((name, size) for name, size in query(f'SELECT storage_name, size FROM "{table}"'))
    return counts, files


# --- The database, per engine ---------------------------------------------------------------------------


def _vendor() -> str:
    if connection.vendor not in DATABASE_MEMBER:
        raise BackupError(f"backups support SQLite and PostgreSQL, not {connection.vendor}")
    return connection.vendor


def _sqlite_path() -> Path:
    return Path(settings.DATABASES["default"]["NAME"])


def _copy_sqlite(out: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Copy the database with SQLite's online backup API: all pages in one step, so in one read
    transaction, one snapshot, while writers go on (WAL); then read the copy's counts and files."""
    source_path = _sqlite_path()
    if not source_path.exists():
        raise BackupError(f"there is no database at {source_path}: nothing to back up (run manage.py migrate?)")
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    copy = sqlite3.connect(out)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, without -wal beside it
        return _read_rows(lambda sql: copy.execute(sql).fetchall())
    finally:
        copy.close()
        source.close()


def _postgres_command(program: str, parameters: list[str]) -> tuple[list[str], dict[str, str]]:
    """``program`` (pg_dump, pg_restore) with the connection Django uses: its user, host, port, database
    and password, ssl and service options, as Django's own dbshell passes them to psql."""
    executable = shutil.which(program)
    if executable is None:
        raise BackupError(f"{program} is missing: {PG_CLIENT_HINT}")
    args, env = DatabaseClient.settings_to_cmd_args_env(connection.settings_dict, parameters)
    return [executable, *args[1:]], {**os.environ, **(env or {})}


def _run(args: list[str], env: dict[str, str], **kwargs: Any) -> None:
    done = subprocess.run(args, env=env, capture_output=True, **kwargs)
    if done.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")


def _dump_postgres(out: Path) -> tuple[dict[str, int], dict[str, int]]:
    """pg_dump in a snapshot this transaction exports, so the counts and files read here are of
    exactly the rows dumped."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]

        def query(sql: str) -> list[tuple[Any, ...]]:
            cursor.execute(sql)
            return cursor.fetchall()

        rows = _read_rows(query)
        args, env = _postgres_command("pg_dump", ["--format=custom", f"--snapshot={snapshot}", f"--file={out}"])
        _run(args, env)
        return rows


def _database_name() -> str:
    if connection.vendor == "sqlite":
        return f"the database {_sqlite_path()}"
    database = connection.settings_dict
    return f"the database {database['NAME']!r} on {database['HOST'] or 'localhost'}:{database['PORT'] or 5432}"


def _database_is_empty() -> tuple[bool, str]:
    """Whether the database has no tables, and if not, what it holds (for the refusal)."""
    tables = connection.introspection.table_names()
    if not tables:
        return True, ""
    runs = Run.objects.count() if Run._meta.db_table in tables else 0
    return False, f"{_database_name()} ({len(tables)} tables, {runs:,} runs)"


def _empty_database() -> None:
    """Drop everything in the database (restore --force)."""
    if connection.vendor == "sqlite":
        connection.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{_sqlite_path()}{suffix}").unlink(missing_ok=True)
    else:
        with connection.cursor() as cursor:
            # The tables, sequences and the pg_trgm extension all live in schema public.
            cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")


def _restore_sqlite(member: IO[bytes], staging: Path) -> None:
    copy = staging / "database.sqlite3"
    with copy.open("wb") as out:
        shutil.copyfileobj(member, out, 1 << 20)
    connection.close()
    source, target = sqlite3.connect(copy), sqlite3.connect(_sqlite_path())
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _restore_postgres(member: IO[bytes], staging: Path) -> None:
    # The owner and grants of the backed-up database need not exist here: the tables become the
    # restoring user's. One transaction: a failed restore leaves the database as empty as it was.
    parameters = ["--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error", "--dbname"]
    args, env = _postgres_command("pg_restore", parameters)
    # The dump is streamed to pg_restore; its messages go to a file, so a long one cannot fill a pipe
    # nobody reads while the dump is still being written.
    with (staging / "pg_restore.log").open("w+b") as messages:
        with subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stderr=messages) as process:
            assert process.stdin is not None
            with contextlib.suppress(BrokenPipeError):  # pg_restore stopped early: its message says why
                shutil.copyfileobj(member, process.stdin, 1 << 20)
            process.stdin.close()
        if process.returncode != 0:
            messages.seek(0)
            raise BackupError(f"pg_restore failed ({process.returncode}): {messages.read().decode(errors='replace')}")
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # planner statistics are not in a dump (README: Built for scale)


# --- Archives -------------------------------------------------------------------------------------------


def archive_path(path: str | Path) -> Path:
    """Where ``backup PATH`` writes: PATH itself (.tar, .tar.gz or .tgz), or a new timestamped
    .tar.gz inside PATH when it is a folder (made if PATH ends with a slash, as in ``/backups/``)."""
    if isinstance(path, str) and path.endswith(os.sep):
        Path(path).mkdir(parents=True, exist_ok=True)
    path = Path(path)
    if path.is_dir():
        return path / f"studio-backup-{datetime.now(UTC):%Y%m%d-%H%M%S}.tar.gz"
    if not any(path.name.endswith(suffix) for suffix in SUFFIXES):
        raise BackupError(
            f"{path}: give a folder (end it with / to have it made), or a file name ending in .tar.gz, .tgz or .tar"
        )
    return path


def _compression(path: Path) -> str:
    return next(mode for suffix, mode in SUFFIXES.items() if path.name.endswith(suffix))


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(datetime.now(UTC).timestamp()), 0o600
    archive.addfile(info, io.BytesIO(data))


def _add_media(archive: tarfile.TarFile, media_root: Path) -> dict[str, int]:
    """Add every file under MEDIA_ROOT as files/<its storage name>; returns storage name -> size added.
    A file is opened before it is measured: one still being written (no row names it yet) goes in at
    the size it had, and one that vanished (a refused upload) is left out."""
    added: dict[str, int] = {}
    for directory, subdirectories, names in os.walk(media_root):
        subdirectories.sort()
        for name in sorted(names):
            path = Path(directory) / name
            storage_name = path.relative_to(media_root).as_posix()
            try:
                handle = path.open("rb")
            except FileNotFoundError:
                continue
            with handle:
                info = archive.gettarinfo(arcname=FILES + storage_name, fileobj=handle)
                if not info.isreg():
                    continue
                archive.addfile(info, handle)
                added[storage_name] = info.size
    return added


@contextmanager
def _staging(near: Path) -> Iterator[Path]:
    """A private scratch folder beside ``near`` (the same disk: a database copy can be large)."""
    with tempfile.TemporaryDirectory(prefix=".studio-backup-", dir=near) as folder:
        yield Path(folder)


def _secret_key_file() -> Path | None:
    """The generated key in STUDIO_DATA_DIR that settings use when SECRET_KEY is not in the environment."""
    path = Path(settings.DATA_DIR) / "secret_key"
    return path if not os.environ.get("SECRET_KEY") and path.exists() else None


def backup(path: str | Path) -> tuple[Path, Manifest]:
    """Write a backup archive of the studio at ``path`` (see archive_path); returns where, and what it holds."""
    vendor = _vendor()
    target = archive_path(path).resolve()
    media_root = Path(settings.MEDIA_ROOT).resolve()
    if target.exists():
        raise BackupError(f"{target} exists; give a new name, or a folder to write a timestamped backup in")
    if target.is_relative_to(media_root):
        raise BackupError(f"{target} is inside MEDIA_ROOT ({media_root}), which the backup copies; put it elsewhere")
    if not target.parent.is_dir():
        raise BackupError(f"there is no folder {target.parent}")
    with _staging(target.parent) as staging:
        database = staging / DATABASE_MEMBER[vendor]
        counts, files = _copy_sqlite(database) if vendor == "sqlite" else _dump_postgres(database)
        manifest = Manifest(vendor=vendor, counts=counts, files=files)
        partial = staging / target.name
        with partial.open("xb") as raw:
            os.fchmod(raw.fileno(), 0o600)  # the database holds password hashes and webhook secrets
            mode = _compression(target)
            options = {"compresslevel": COMPRESSLEVEL} if mode else {}
            with tarfile.open(fileobj=raw, mode=f"w:{mode}", **options) as archive:  # type: ignore[call-overload]
                _add_bytes(archive, MANIFEST, manifest.to_bytes())
                archive.add(database, arcname=DATABASE_MEMBER[vendor])
                if key := _secret_key_file():
                    _add_bytes(archive, SECRET_KEY, key.read_bytes())
                added = _add_media(archive, media_root) if media_root.is_dir() else {}
            raw.flush()
            os.fsync(raw.fileno())
        _check_files(manifest.files, added, f"{media_root} lacks files the database names")
        os.replace(partial, target)  # a failed backup never leaves a file that looks like a backup
    return target, manifest


def _check_files(named: dict[str, int], present: dict[str, int], problem: str) -> None:
    wrong = sorted(name for name, size in named.items() if present.get(name) != size)
    if wrong:
        shown = ", ".join(f"{name} ({present.get(name, 'missing')} bytes, not {named[name]})" for name in wrong[:5])
        raise BackupError(f"{problem}: {len(wrong)} of {len(named)}: {shown}")


# --- Restore --------------------------------------------------------------------------------------------


def _media_is_empty(media_root: Path) -> bool:
    return not media_root.exists() or not any(files for _, _, files in os.walk(media_root))


def _empty_media(media_root: Path) -> None:
    if media_root.exists():
        for entry in media_root.iterdir():
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def _media_destination(media_root: Path, name: str) -> Path:
    """Where an archive's files/<name> goes, refusing any name that would leave MEDIA_ROOT."""
    relative = PurePosixPath(name[len(FILES) :])
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise BackupError(f"the archive has an unsafe file name {name!r}; it was not made by manage.py backup")
    return media_root.joinpath(*relative.parts)


def restore(path: Path, *, force: bool = False) -> Manifest:
    """Restore the backup at ``path`` into this studio's database and MEDIA_ROOT, which must be empty
    unless ``force`` (then what they hold is deleted first)."""
    vendor = _vendor()
    media_root = Path(settings.MEDIA_ROOT)
    if not path.is_file():
        raise BackupError(f"there is no backup file {path}")
    # Scratch space beside the database the backup goes into (the archive's folder may be read-only).
    scratch = _sqlite_path().parent if vendor == "sqlite" else Path(settings.DATA_DIR)
    scratch.mkdir(parents=True, exist_ok=True)  # SQLite on a new disk, say
    with tarfile.open(path, "r:*") as archive, _staging(scratch) as staging:
        first = archive.next()
        if first is None or first.name != MANIFEST:
            raise BackupError(f"{path} is not a backup made by manage.py backup (it has no {MANIFEST} first)")
        manifest = Manifest.from_bytes(_read_member(archive, first).read())
        if manifest.vendor != vendor:
            raise BackupError(
                f"{path} is a backup of a {manifest.vendor} database and this studio's database is {vendor}; "
                f"restore it into a studio on {manifest.vendor} (set or unset DATABASE_URL)"
            )
        empty, holds = _database_is_empty()
        if not force and (not empty or not _media_is_empty(media_root)):
            where = holds if not empty else f"MEDIA_ROOT ({media_root})"
            raise BackupError(
                f"{where} is not empty. Restore into an empty database and data folder, or pass --force to "
                "delete what the database and MEDIA_ROOT hold and put the backup in their place"
            )
        if force:
            _empty_database()
            _empty_media(media_root)
        restored: dict[str, int] = {}
        for member in archive:
            if member.name == DATABASE_MEMBER[vendor]:
                (_restore_sqlite if vendor == "sqlite" else _restore_postgres)(_read_member(archive, member), staging)
            elif member.name == SECRET_KEY:
                _restore_secret_key(_read_member(archive, member).read())
            elif member.name.startswith(FILES) and member.isreg():
                destination = _media_destination(media_root, member.name)
                destination.parent.mkdir(parents=True, exist_ok=True)
                with destination.open("wb") as out:
                    shutil.copyfileobj(_read_member(archive, member), out, 1 << 20)
                restored[member.name[len(FILES) :]] = member.size
    _check_files(manifest.files, restored, "the backup lacks files its database names")
    counts, _ = _read_rows(_query_django)
    if counts != manifest.counts:
        raise BackupError(f"the restored database holds {counts}, the backup {manifest.counts}")
    return manifest


def _read_member(archive: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    handle = archive.extractfile(member)
    if handle is None:
        raise BackupError(f"{member.name} in the archive is not a file")
    return handle


def _restore_secret_key(key: bytes) -> None:
    """Put the backup's generated key in place, so sessions and signed links stay valid; unless the
    environment sets SECRET_KEY, which then wins as it always does."""
    if os.environ.get("SECRET_KEY"):
        return
    path = Path(settings.DATA_DIR) / "secret_key"
    # Made 0600 when created: written first and chmod-ed after, it was readable under the umask meanwhile.
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(key)
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT


def _query_django(sql: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()
