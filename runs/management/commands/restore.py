"""Restore a backup made by `manage.py backup` into this studio: its database (DATABASE_URL, or SQLite
in STUDIO_DATA_DIR) and MEDIA_ROOT, which must be empty; --force deletes what they hold first. Stop the
server while restoring; run `manage.py migrate` afterwards if this studio is newer than the backup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from runs import backups


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="the archive manage.py backup wrote")
        parser.add_argument(
            "--force",
            action="store_true",
            help="replace a database and MEDIA_ROOT that are not empty (what they hold is deleted)",
        )

    def handle(self, *args: Any, path: Path, force: bool, **options: Any) -> None:
        try:
            manifest = backups.restore(path, force=force)
        except backups.BackupError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Restored {manifest.describe()} from {path} (backed up at {manifest.created_at}).")
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            self.stdout.write("The backup is from an older version of the studio: run manage.py migrate.")
