"""Pages for managing a workspace's members and one's API tokens (studio/account_views.py)."""

from __future__ import annotations

from django.urls import URLPattern, path

from studio import account_views

urlpatterns: list[URLPattern] = [
    path("w/<str:workspace>/members/", account_views.member_list, name="member_list"),
    path("w/<str:workspace>/members/add/", account_views.member_add, name="member_add"),
    path("w/<str:workspace>/members/<path:username>/role/", account_views.member_role, name="member_role"),
    path("w/<str:workspace>/members/<path:username>/remove/", account_views.member_remove, name="member_remove"),
    path("tokens/", account_views.token_list, name="token_list"),
    path("tokens/new/", account_views.token_create, name="token_create"),
    path("tokens/<int:token_id>/revoke/", account_views.token_revoke, name="token_revoke"),
    path("preferences/theme/", account_views.theme_set, name="theme_set"),
]
