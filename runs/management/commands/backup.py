"""Back up the studio while it serves: the database (one consistent snapshot: SQLite's online backup
API, or pg_dump) and every run file, in one archive. PATH is a .tar.gz (.tgz, .tar) to write, or a
folder to write a new timestamped studio-backup-*.tar.gz in. Restore with `manage.py restore`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from runs import backups


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "path", help="a folder (made if the path ends with /), or an archive name ending in .tar.gz, .tgz or .tar"
        )

    def handle(self, *args: Any, path: str, **options: Any) -> None:
        try:
            written, manifest = backups.backup(path)
        except backups.BackupError as error:
            raise CommandError(str(error)) from error
        size = written.stat().st_size
        self.stdout.write(f"Backed up {manifest.describe()} to {written} ({size / 2**20:,.1f} MiB).")
