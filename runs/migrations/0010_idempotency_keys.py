"""Idempotency keys: the key of the request that made a run, and of the request that made a status
change, each unique where set, so a request the SDK sends again after its answer was lost makes no
second run or change. Nullable columns and partial unique indexes: adding them rewrites no rows, on
SQLite too (a plain unique constraint would copy the whole runs table there)."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0009_run_search_text_trigrams'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='run',
            name='request_key',
            field=models.CharField(blank=True, editable=False, max_length=80, null=True),
        ),
        migrations.AddField(
            model_name='runstatusevent',
            name='request_key',
            field=models.CharField(blank=True, editable=False, max_length=64, null=True),
        ),
        migrations.AddConstraint(
            model_name='run',
            constraint=models.UniqueConstraint(condition=models.Q(('request_key__isnull', False)), fields=('workspace', 'request_key'), name='runs_run_unique_request_key'),
        ),
        migrations.AddConstraint(
            model_name='runstatusevent',
            constraint=models.UniqueConstraint(condition=models.Q(('request_key__isnull', False)), fields=('run', 'request_key'), name='runs_runstatusevent_unique_request_key'),
        ),
    ]
