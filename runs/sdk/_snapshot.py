"""The snapshot of a script run: its source folder, zipped, as the run will see it."""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import pathspec

from runs.sdk.exceptions import UserErrorException

# Never shipped: version control, and the studio's own config, which holds an API token.
ALWAYS_LEFT_OUT = [".git/", ".studio/", "__pycache__/", "*.pyc"]


def ignore_spec(source: Path) -> tuple[pathspec.GitIgnoreSpec, str | None]:
    """The folder's .studioignore, else its .gitignore (same syntax), plus ALWAYS_LEFT_OUT."""
    for name in (".studioignore", ".gitignore"):
        if (source / name).is_file():
            lines = (source / name).read_text(errors="replace").splitlines()
            return pathspec.GitIgnoreSpec.from_lines([*ALWAYS_LEFT_OUT, *lines]), name
    return pathspec.GitIgnoreSpec.from_lines(ALWAYS_LEFT_OUT), None


def snapshot_files(source: Path, max_bytes: int) -> list[Path]:
    """The files to ship, relative to ``source``; refuses a folder over ``max_bytes``."""
    spec, ignore_file = ignore_spec(source)
    files: list[Path] = []
    total = 0
    for root, folders, names in os.walk(source):
        here = Path(root).relative_to(source)
        folders[:] = sorted(f for f in folders if not spec.match_file(f"{(here / f).as_posix()}/"))
        for name in sorted(names):
            relative = here / name
            if spec.match_file(relative.as_posix()):
                continue
            total += (source / relative).stat().st_size
            if total > max_bytes:
                hint = f"(after {ignore_file})" if ignore_file else "(add a .studioignore to leave files out)"
                raise UserErrorException(
                    f"the source folder {source} holds more than {max_bytes // 2**20} MiB {hint}; "
                    "a snapshot is at most that big"
                )
            files.append(relative)
    return files


def build_snapshot(source: Path, max_bytes: int) -> Path:
    """Zip the source folder into a temporary file (the caller deletes it)."""
    files = snapshot_files(source, max_bytes)
    handle, name = tempfile.mkstemp(prefix="studio-snapshot-", suffix=".zip")
    os.close(handle)
    with zipfile.ZipFile(name, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in files:
            archive.write(source / relative, relative.as_posix())
    return Path(name)


def extract_snapshot(archive_path: Path, target: Path) -> None:
    """Unzip a snapshot, refusing entries that would land outside ``target``."""
    target = target.resolve()
    with zipfile.ZipFile(archive_path) as archive:
        for info in archive.infolist():
            destination = (target / info.filename).resolve()
            if not destination.is_relative_to(target):
                raise UserErrorException(f"the snapshot holds a path outside its folder: {info.filename!r}")
        archive.extractall(target)
