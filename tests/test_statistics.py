"""SQLite's planner statistics are refreshed by the server (runs/statistics.py)."""

from __future__ import annotations

from typing import Any

from django.db import connection

from runs import statistics
from runs.models import Workspace
from tests.conftest import make_run


def test_refresh_gives_sqlite_statistics_and_leaves_postgresql_alone(workspace: Workspace, alice: Any) -> None:
    for _ in range(3):
        make_run(workspace, alice).set_tags({"team": "vision"})
    statistics.refresh()
    if connection.vendor != "sqlite":  # autovacuum's job there; nothing to check but that it did no harm
        assert statistics.start_in_background() is None
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT tbl FROM sqlite_stat1")
        analyzed = {row[0] for row in cursor.fetchall()}
    assert {"runs_run", "runs_runtag"} <= analyzed  # (empty tables get no statistics)
