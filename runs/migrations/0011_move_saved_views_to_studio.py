"""SavedView and DefaultView move to the studio app (studio/migrations/0002): here they leave the runs
app's state only; their tables stay as they are, under the same names."""

from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0010_idempotency_keys"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="DefaultView"),
                migrations.DeleteModel(name="SavedView"),
            ],
            database_operations=[],
        ),
    ]
