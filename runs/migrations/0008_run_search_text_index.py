"""On SQLite, an index holding each run's search_text beside (workspace, parent): counting the
runs a search word matches then reads that index instead of every run's whole row (100,000 runs:
82 -> 35 ms). Not on PostgreSQL, where a description can make the text too long for a B-tree
entry; there a trigram index serves the word (0009). SQLite's only, so written here rather than
declared on the model (as in 0007)."""

from __future__ import annotations

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(
            "CREATE INDEX runs_run_ws_parent_search ON runs_run (workspace_id, parent_id, search_text)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP INDEX IF EXISTS runs_run_ws_parent_search")


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0007_key_value_lookups"),
    ]

    operations = [
        migrations.RunPython(create, drop),
    ]
