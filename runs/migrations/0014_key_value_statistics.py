"""PostgreSQL's planner takes a tag's (or property's) key, value hash and value as independent, so
it expects a filter such as ``tags.team = vision`` to match a few hundred runs when it matches
thousands, and picks a plan for a few hundred (bench/RESULTS.md, "PostgreSQL, the 17-column case's
page query"). Extended statistics tell it how the three go together. SQLite has none: nothing to do."""

from __future__ import annotations

from typing import Any

from django.db import migrations

TABLES = ("runs_runtag", "runs_runproperty")


def create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(
            f"CREATE STATISTICS IF NOT EXISTS {table}_key_value_stats (dependencies, mcv) "
            f"ON key, value_hash, value FROM {table}"
        )
        schema_editor.execute(f"ANALYZE {table}")


def drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP STATISTICS IF EXISTS {table}_key_value_stats")


class Migration(migrations.Migration):
    dependencies = [("runs", "0013_run_archive")]

    operations = [migrations.RunPython(create, drop)]
