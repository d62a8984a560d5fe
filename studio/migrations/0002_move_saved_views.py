"""SavedView and DefaultView join the studio app's state, on the tables the runs app made for them
(runs/migrations/0003; runs/migrations/0011 removed them from the runs app's state). Nothing changes
in the database."""

from __future__ import annotations

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("studio", "0001_preferences"),
        ("runs", "0011_move_saved_views_to_studio"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SavedView",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("name", models.CharField(max_length=100)),
                        ("shared", models.BooleanField(default=False)),
                        ("query", models.TextField(blank=True)),
                        ("columns", models.JSONField(blank=True, default=list)),
                        ("sort", models.CharField(blank=True, max_length=500)),
                        ("include_children", models.BooleanField(default=False)),
                        ("compare", models.JSONField(blank=True, default=list)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "owner",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="saved_views",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "workspace",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="saved_views",
                                to="runs.workspace",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "runs_savedview",
                        "ordering": ["name"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("workspace", "owner", "name"), name="runs_savedview_unique_name"
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="DefaultView",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "workspace",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="runs.workspace"
                            ),
                        ),
                        (
                            "view",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="studio.savedview"
                            ),
                        ),
                    ],
                    options={
                        "db_table": "runs_defaultview",
                        "constraints": [
                            models.UniqueConstraint(fields=("user", "workspace"), name="runs_defaultview_unique_user")
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
