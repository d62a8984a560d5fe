"""Pages for managing a workspace's members and one's API tokens (studio/account_views.py)."""

from __future__ import annotations

urlpatterns: list = []
