"""On SQLite, tag and property filters read only their index (migration 0007_key_value_lookups)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from runs.models import Experiment, Run, RunSpec, Workspace


def _sqlite_plan_of(queryset: Any) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


@pytest.mark.parametrize(
    ("query", "index"),
    [("tags.team = vision", "runs_runtag_lookup"), ("properties.commit = abc", "runs_runproperty_lookup")],
)
def test_a_key_value_filter_reads_only_the_index(workspace: Workspace, alice: Any, query: str, index: str) -> None:
    experiment = Experiment.objects.create(workspace=workspace, name="exp")
    experiment.create_runs([RunSpec(tags={"team": "vision"}, properties={"commit": "abc"})], by=alice)
    experiment.create_runs([RunSpec(tags={"team": "speech"}, properties={"commit": "def"})], by=alice)
    runs = Run.objects.filter(workspace=workspace).search(query)
    assert runs.count() == 1
    if connection.vendor == "sqlite":  # (PostgreSQL has no such index: see the migration)
        assert f"COVERING INDEX {index}" in _sqlite_plan_of(runs)
