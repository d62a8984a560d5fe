"""Saved views made before the move to the studio app keep working: their tables stay, and their
query, sort, columns, child runs and compared runs become the URL parameters a view now keeps."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from studio.run_list_state import RunListState

BEFORE = [("runs", "0010_idempotency_keys"), ("studio", "0001_preferences")]
AFTER = [("runs", "0011_move_saved_views_to_studio"), ("studio", "0003_saved_view_params")]


@pytest.fixture
def back_to_the_latest_schema() -> Any:
    """Whatever the test leaves, the database ends at the latest migrations: the tests after it (the
    same database, on this worker) read every column the models have."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_old_views_move_to_the_studio_app_with_their_state(
    alice: Any, carol: Any, back_to_the_latest_schema: None
) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    workspace = old.get_model("runs", "Workspace").objects.create(name="old")
    view = old.get_model("runs", "SavedView").objects.create(
        workspace=workspace,
        owner_id=alice.pk,
        name="Sweep",
        shared=True,
        query='(lr) and status = "Failed"',
        columns=["name", "metrics.loss.min"],
        sort="-metrics.loss.min",
        include_children=True,
        compare=["a_1", "b_2"],
    )
    plain = old.get_model("runs", "SavedView").objects.create(workspace=workspace, owner_id=carol.pk, name="Plain")
    old.get_model("runs", "DefaultView").objects.create(user_id=carol.pk, workspace=workspace, view=view)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    SavedView = new.get_model("studio", "SavedView")
    moved = SavedView.objects.get(pk=view.pk)
    assert moved.params == {
        "q": '(lr) and status = "Failed"',
        "sort": "-metrics.loss.min",
        "cols": "name,metrics.loss.min",
        "children": "1",
        "compare": "a_1,b_2",
    }
    assert (moved.name, moved.shared, moved.owner_id, moved.changed_by_id) == ("Sweep", True, alice.pk, alice.pk)
    assert SavedView.objects.get(pk=plain.pk).params == {}
    assert new.get_model("studio", "DefaultView").objects.get(user_id=carol.pk).view_id == view.pk
    assert RunListState.from_params(moved.params).to_params() == moved.params  # a state that holds
    assert SavedView._meta.db_table == "runs_savedview"
