from __future__ import annotations

from django.contrib import admin

from runs.models import ApiToken, Experiment, Membership, Run, Workspace


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "created_at", "last_run_number"]
    list_filter = ["workspace"]
    search_fields = ["name"]


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["run_id", "display_name", "experiment", "status", "submitted_by", "created_at"]
    list_filter = ["status", "type", "workspace"]
    search_fields = ["run_id", "display_name"]
    list_select_related = ["experiment", "submitted_by"]
    raw_id_fields = ["parent", "experiment", "workspace", "submitted_by"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "user", "created_at", "last_used_at"]
    readonly_fields = ["prefix", "key_hash"]
