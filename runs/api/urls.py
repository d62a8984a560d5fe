from __future__ import annotations

from django.urls import path

from runs.api import views

urlpatterns = [
    path("workspaces/", views.workspace_list, name="api-workspace-list"),
    path("workspaces/<str:workspace>/members/", views.member_list, name="api-member-list"),
    path("workspaces/<str:workspace>/members/<str:username>/", views.member_detail, name="api-member-detail"),
    path("workspaces/<str:workspace>/experiments/", views.experiment_list, name="api-experiment-list"),
    path("workspaces/<str:workspace>/experiments/<str:name>/", views.experiment_detail, name="api-experiment"),
    path("workspaces/<str:workspace>/experiments/<str:name>/runs/", views.experiment_runs, name="api-start-run"),
    path("workspaces/<str:workspace>/compute/", views.compute_list, name="api-compute-list"),
    path("workspaces/<str:workspace>/compute/<str:name>/", views.compute_detail, name="api-compute-detail"),
    path("workspaces/<str:workspace>/alerts/", views.alert_list, name="api-alert-list"),
    path("workspaces/<str:workspace>/alerts/<int:rule_id>/", views.alert_detail, name="api-alert-detail"),
    path("workspaces/<str:workspace>/deliveries/", views.delivery_list, name="api-delivery-list"),
    path("workspaces/<str:workspace>/runs/", views.workspace_runs, name="api-workspace-runs"),
    path("workspaces/<str:workspace>/runs/bulk/", views.workspace_runs_bulk, name="api-runs-bulk"),
    path("workspaces/<str:workspace>/runs/groups/", views.workspace_run_groups, name="api-run-groups"),
    path("workspaces/<str:workspace>/runs/export/", views.workspace_runs_export, name="api-runs-export"),
    path("workspaces/<str:workspace>/runs/export/metrics/", views.workspace_metrics_export, name="api-metrics-export"),
    path("runs/<str:run_id>/", views.run_detail, name="api-run"),
    path("runs/<str:run_id>/status/", views.run_status, name="api-run-status"),
    path("runs/<str:run_id>/watch/", views.run_watch, name="api-run-watch"),
    path("runs/<str:run_id>/cancel/", views.run_cancel, name="api-run-cancel"),
    path("runs/<str:run_id>/heartbeat/", views.run_heartbeat, name="api-run-heartbeat"),
    path("runs/<str:run_id>/tags/", views.run_tags, name="api-run-tags"),
    path("runs/<str:run_id>/properties/", views.run_properties, name="api-run-properties"),
    path("runs/<str:run_id>/children/", views.run_children, name="api-run-children"),
    path("runs/<str:run_id>/metrics/", views.run_metrics, name="api-run-metrics"),
    path("runs/<str:run_id>/metrics/summary/", views.run_metric_summaries, name="api-run-metric-summaries"),
    path("runs/<str:run_id>/images/", views.run_images, name="api-run-images"),
    path("runs/<str:run_id>/files/", views.run_files, name="api-run-files"),
    path("runs/<str:run_id>/files/<path:path>", views.run_file, name="api-run-file"),
    path("runs/<str:run_id>/events/", views.run_events, name="api-run-events"),
    path("runs/<str:run_id>/logs/<path:path>", views.run_log, name="api-run-log"),
    path("runs/<str:run_id>/snapshot/", views.run_snapshot, name="api-run-snapshot"),
    path("runs/<str:run_id>/snapshot/files/", views.run_snapshot_files, name="api-run-snapshot-files"),
]
