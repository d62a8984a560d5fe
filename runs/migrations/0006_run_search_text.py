from django.db import migrations, models

from runs.models import search_text_of

BATCH = 5_000


def fill_search_text(apps, schema_editor):
    """Every run's search_text, a batch of runs at a time. search_text_of is the model's own: the
    text must be the one the model methods write (a change to it needs a migration like this one)."""
    Run = apps.get_model("runs", "Run")
    RunTag = apps.get_model("runs", "RunTag")
    quote = schema_editor.connection.ops.quote_name
    table, pk_column = quote(Run._meta.db_table), quote(Run._meta.pk.column)
    last = 0
    while True:
        found = list(
            Run.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "run_id", "display_name", "description")[:BATCH]
        )
        if not found:
            return
        first, last = found[0][0], found[-1][0]
        tags: dict[int, dict[str, str | None]] = {}
        for run_pk, key, value in (
            RunTag.objects.filter(run_id__gte=first, run_id__lte=last).order_by("pk").values_list("run", "key", "value")
        ):
            tags.setdefault(run_pk, {})[key] = value
        rows = [
            (search_text_of(run_id, name, description, tags.get(pk, {})), pk) for pk, run_id, name, description in found
        ]
        with schema_editor.connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {table} SET search_text = %s WHERE {pk_column} = %s", rows)


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0005_alertrule_mails"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="search_text",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.RunPython(fill_search_text, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(fields=["workspace", "parent", "-created_at"], name="runs_run_ws_parent_created"),
        ),
    ]
