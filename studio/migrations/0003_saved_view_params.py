"""A saved view keeps the runs table's URL parameters as they were (``params``, one JSON object)
instead of five columns that held part of them, and who changed it last (``changed_by``, with
``updated_at``). Existing views' query, sort, columns, child runs and compared runs are written
into ``params`` as the URL said them (their filter controls had been folded into the query)."""

from __future__ import annotations

from typing import Any

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def fill_params(apps: Any, schema_editor: Any) -> None:
    SavedView = apps.get_model("studio", "SavedView")
    for view in SavedView.objects.all():
        params = {
            "q": view.query,
            "sort": view.sort,
            "cols": ",".join(view.columns or []),
            "children": "1" if view.include_children else "",
            "compare": ",".join(view.compare or []),
        }
        view.params = {key: value for key, value in params.items() if value}
        view.changed_by_id = view.owner_id
        view.save(update_fields=["params", "changed_by"])


def fill_columns(apps: Any, schema_editor: Any) -> None:
    SavedView = apps.get_model("studio", "SavedView")
    for view in SavedView.objects.all():
        params = view.params or {}
        view.query = params.get("q", "")
        view.sort = params.get("sort", "")
        view.columns = [c for c in params.get("cols", "").split(",") if c]
        view.include_children = bool(params.get("children"))
        view.compare = [r for r in params.get("compare", "").split(",") if r]
        view.save(update_fields=["query", "sort", "columns", "include_children", "compare"])


class Migration(migrations.Migration):
    dependencies = [
        ("studio", "0002_move_saved_views"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="savedview",
            name="params",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="savedview",
            name="changed_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(fill_params, fill_columns),
        migrations.RemoveField(model_name="savedview", name="query"),
        migrations.RemoveField(model_name="savedview", name="columns"),
        migrations.RemoveField(model_name="savedview", name="sort"),
        migrations.RemoveField(model_name="savedview", name="include_children"),
        migrations.RemoveField(model_name="savedview", name="compare"),
    ]
