"""On PostgreSQL, a trigram index (pg_trgm) on search_text: a search word's runs are found through
it instead of testing every run's text (100,000 runs: counting a word's 16,577 matches 156 -> 39
ms). SQLite has its own way (0008). If the extension cannot be created (it needs the CREATE right on
the database), the migration says so and goes on: search works without the index, only slower."""

from __future__ import annotations

import warnings

from django.db import DatabaseError, migrations, transaction


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):  # a savepoint, so a refusal is survivable
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as error:
        warnings.warn(f"pg_trgm could not be created, so free-text search reads every run: {error}", stacklevel=1)
        return
    schema_editor.execute("CREATE INDEX runs_run_search_trgm ON runs_run USING gin (search_text gin_trgm_ops)")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS runs_run_search_trgm")


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0008_run_search_text_index"),
    ]

    operations = [
        migrations.RunPython(create, drop),
    ]
