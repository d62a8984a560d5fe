from __future__ import annotations

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from studio import account_views, notification_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", account_views.login, name="login"),  # throttled; the rest is Django's
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("studio.account_urls")),
    path("w/<str:workspace>/experiments/", views.experiment_list, name="experiment_list"),
    path("w/<str:workspace>/experiments/<str:experiment>/", views.run_list, name="experiment_runs"),
    path("w/<str:workspace>/runs/", views.run_list, name="run_list"),
    path("w/<str:workspace>/runs/bulk/", views.run_bulk, name="run_bulk"),
    path("w/<str:workspace>/runs/export.csv", views.run_export, name="run_export"),
    path("w/<str:workspace>/runs/export-metrics.csv", views.run_export, {"what": "metrics"}, name="metrics_export"),
    path("w/<str:workspace>/experiments/<str:experiment>/export.csv", views.run_export, name="experiment_export"),
    path(
        "w/<str:workspace>/experiments/<str:experiment>/export-metrics.csv",
        views.run_export,
        {"what": "metrics"},
        name="experiment_metrics_export",
    ),
    path("w/<str:workspace>/compare/", views.run_compare, name="run_compare"),
    path("w/<str:workspace>/statuses/", views.run_statuses, name="run_statuses"),
    path("w/<str:workspace>/views/", views.view_save, name="view_save"),
    path(
        "w/<str:workspace>/views/<int:view_id>/<str:action>/",
        views.view_change,
        name="view_change",
    ),
    path("w/<str:workspace>/runs/<str:run_id>/", views.run_detail, name="run_detail"),
    path("w/<str:workspace>/runs/<str:run_id>/metrics/", views.run_detail, {"tab": "metrics"}, name="run_metrics"),
    path("w/<str:workspace>/runs/<str:run_id>/children/", views.run_detail, {"tab": "children"}, name="run_children"),
    path("w/<str:workspace>/runs/<str:run_id>/outputs/", views.run_detail, {"tab": "outputs"}, name="run_outputs"),
    path("w/<str:workspace>/runs/<str:run_id>/system/", views.run_detail, {"tab": "system"}, name="run_system"),
    path("w/<str:workspace>/runs/<str:run_id>/snapshot/", views.run_detail, {"tab": "snapshot"}, name="run_snapshot"),
    path("w/<str:workspace>/runs/<str:run_id>/activity/", views.run_detail, {"tab": "activity"}, name="run_activity"),
    path("w/<str:workspace>/runs/<str:run_id>/child-rows/", views.run_child_rows, name="run_child_rows"),
    path("w/<str:workspace>/runs/<str:run_id>/logs/", views.run_log_tail, name="run_log_tail"),
    path("w/<str:workspace>/runs/<str:run_id>/live/", views.run_live, name="run_live"),
    path("w/<str:workspace>/runs/<str:run_id>/update/", views.run_update, name="run_update"),
    path("w/<str:workspace>/runs/<str:run_id>/preview/", views.run_description_preview, name="run_preview"),
    path("w/<str:workspace>/runs/<str:run_id>/tags/", views.run_tags, name="run_tags"),
    path("w/<str:workspace>/runs/<str:run_id>/cancel/", views.run_cancel, name="run_cancel"),
    path("w/<str:workspace>/runs/<str:run_id>/watch/", notification_views.run_watch, name="run_watch"),
    path("w/<str:workspace>/notifications/", notification_views.notification_list, name="notification_list"),
    path("w/<str:workspace>/notifications/rules/", notification_views.rule_create, name="rule_create"),
    path(
        "w/<str:workspace>/notifications/rules/<int:rule_id>/delete/",
        notification_views.rule_delete,
        name="rule_delete",
    ),
    # Browsers ask for /favicon.ico whatever the pages link to; the static file's name is known once the
    # manifest is read (hashed in production), so the address is looked up on each request, not at import.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.svg"))),
    path("admin/", admin.site.urls),
    path("api/v1/", include("runs.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api-auth/", include("rest_framework.urls")),
]

handler404 = "studio.views.not_found"
handler500 = "studio.views.server_failed"
