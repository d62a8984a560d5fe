"""How API resources look. Field names follow Azure ML's run details (camelCase), so that the
SDK's get_details() and the CLI's JSON read like Azure's."""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from typing import Any

from django.urls import reverse
from rest_framework import serializers

from runs import wire
from runs.models import (
    AlertRule,
    ComputeTarget,
    Delivery,
    Experiment,
    ListedExtras,
    Membership,
    Metric,
    Run,
    RunFile,
    RunLog,
    RunStatusEvent,
    Snapshot,
    Workspace,
)


class _OmitNullsSerializer(serializers.Serializer):
    def to_representation(self, instance: Any) -> dict[str, Any]:
        return {key: value for key, value in super().to_representation(instance).items() if value is not None}


class RunSerializer(_OmitNullsSerializer):
    """A run's details; keys whose value is null are left out (the schema makes them optional)."""

    runId = serializers.CharField(source="run_id")
    runNumber = serializers.IntegerField(source="number")
    experiment = serializers.CharField(source="experiment.name")
    displayName = serializers.CharField(source="display_name")
    description = serializers.CharField()
    status = serializers.CharField()
    type = serializers.CharField()
    target = serializers.CharField()
    parentRunId = serializers.CharField(source="parent.run_id", default=None, allow_null=True)
    submittedBy = serializers.CharField(source="submitted_by.username", default=None, allow_null=True)
    createdUtc = serializers.DateTimeField(source="created_at")
    startTimeUtc = serializers.DateTimeField(source="started_at", allow_null=True)
    endTimeUtc = serializers.DateTimeField(source="ended_at", allow_null=True)
    lastHeartbeatUtc = serializers.DateTimeField(source="last_heartbeat_at", allow_null=True)
    archivedUtc = serializers.DateTimeField(source="archived_at", allow_null=True)  # only on archived runs
    script = serializers.SerializerMethodField()
    arguments = serializers.SerializerMethodField()
    cancelGraceSeconds = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    properties = serializers.SerializerMethodField()
    logFiles = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    def to_representation(self, run: Run) -> dict[str, Any]:
        """The fields above, written directly: DRF's machinery for each field of each run cost more
        than loading a page of 100 runs. tests/test_api_run_list.py holds it to DRF's own reading
        of the fields."""
        details = {
            "runId": run.run_id,
            "runNumber": run.number,
            "experiment": run.experiment.name,
            "displayName": run.display_name,
            "description": run.description,
            "status": str(run.status),
            "type": str(run.type),
            "target": run.target,
            "parentRunId": run.parent.run_id if run.parent_id else None,
            "submittedBy": run.submitted_by.username if run.submitted_by_id else None,
            "createdUtc": _utc(run.created_at),
            "startTimeUtc": _utc(run.started_at),
            "endTimeUtc": _utc(run.ended_at),
            "lastHeartbeatUtc": _utc(run.last_heartbeat_at),
            "archivedUtc": _utc(run.archived_at),
            "script": self.get_script(run),
            "arguments": self.get_arguments(run),
            "cancelGraceSeconds": self.get_cancelGraceSeconds(run),
            "tags": self.get_tags(run),
            "properties": self.get_properties(run),
            "logFiles": self.get_logFiles(run),
            "error": self.get_error(run),
        }
        return {key: value for key, value in details.items() if value is not None}

    # What a script run executes; interactive runs leave these out.
    def get_script(self, run: Run) -> str | None:
        return run.script or None

    def get_arguments(self, run: Run) -> list[str] | None:
        return run.arguments if run.type == Run.Type.SCRIPT else None

    def get_cancelGraceSeconds(self, run: Run) -> int | None:  # noqa: N802 (the name is the API's key)
        return run.cancel_grace_seconds if run.type == Run.Type.SCRIPT else None

    def get_tags(self, run: Run) -> dict[str, str | None]:
        return dict(ListedExtras.of(run).tags)

    def get_properties(self, run: Run) -> dict[str, str]:
        return dict(ListedExtras.of(run).properties)

    def get_logFiles(self, run: Run) -> dict[str, str]:  # noqa: N802 (the name is the API's key)
        """Files under logs/ and the run's live logs, each with its download URL."""
        request = self.context.get("request")
        files = {}
        for path in ListedExtras.of(run).log_paths:
            url = reverse("api-run-file", args=[run.run_id, path])
            files[path] = request.build_absolute_uri(url) if request else url
        return files

    def get_error(self, run: Run) -> dict[str, Any] | None:
        if run.status != Run.Status.FAILED and not run.error_code:
            return None
        error = {"code": run.error_code or "UserError", "message": run.error_message}
        if run.error_details:
            error["details"] = run.error_details
        result: dict[str, Any] = {"error": error}
        if run.ended_at:
            result["time"] = _utc(run.ended_at)
        return result


def _utc(moment: datetime | None) -> str | None:
    """As DRF's DateTimeField writes a time (ISO 8601, in UTC, ``Z``), without building a field."""
    if moment is None:
        return None
    text = moment.astimezone(dt.UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class RunLogSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = RunLog
        fields = ["path", "size", "url"]

    def get_url(self, log: RunLog) -> str:
        return reverse("api-run-log", args=[log.run.run_id, log.path])


class SnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = Snapshot
        fields = ["size", "files", "created_at"]


class ComputeTargetSerializer(serializers.ModelSerializer):
    queue = serializers.CharField(source="queue_name", read_only=True)

    class Meta:
        model = ComputeTarget
        fields = ["name", "description", "queue", "created_at"]


class WorkspaceSerializer(serializers.ModelSerializer):
    role = serializers.CharField(read_only=True)

    class Meta:
        model = Workspace
        fields = ["name", "created_at", "role"]


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ["username", "role"]


class ExperimentSerializer(serializers.ModelSerializer):
    workspace = serializers.CharField(source="workspace.name")
    # Counted for the list; null for one experiment on its own, and lastRunUtc for one without runs.
    runCount = serializers.IntegerField(source="run_count", default=None, allow_null=True)
    statusCounts = serializers.DictField(
        child=serializers.IntegerField(), source="status_counts", default=None, allow_null=True
    )
    lastRunUtc = serializers.DateTimeField(source="last_run_at", default=None, allow_null=True)

    class Meta:
        model = Experiment
        fields = ["name", "workspace", "created_at", "runCount", "statusCounts", "lastRunUtc"]


class RunStatusEventSerializer(serializers.ModelSerializer):
    by = serializers.CharField(source="by.username", default=None, allow_null=True)

    class Meta:
        model = RunStatusEvent
        fields = ["from_status", "to_status", "at", "by"]


class RunFileSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = RunFile
        fields = ["path", "size", "created_at", "url"]

    def get_url(self, file: RunFile) -> str:
        url = reverse("api-run-file", args=[file.run.run_id, file.path])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class MetricSummarySerializer(serializers.ModelSerializer):
    """A metric's running summary; ``last`` is wire-encoded like every metric value."""

    last = serializers.JSONField(source="last_value")
    min = serializers.SerializerMethodField()
    max = serializers.SerializerMethodField()

    class Meta:
        model = Metric
        fields = ["name", "kind", "description", "count", "last_step", "last", "min", "max"]

    def get_min(self, metric: Metric) -> Any:
        return wire.encode(metric.min_number)  # may be -inf

    def get_max(self, metric: Metric) -> Any:
        return wire.encode(metric.max_number)


class AlertRuleSerializer(serializers.ModelSerializer):
    """A rule, or a watch on one run (``runId`` set). The webhook secret is never shown here: only
    the answer to creating the rule carries it (``webhookSecret``)."""

    experiments = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    members = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)
    webhookUrl = serializers.CharField(source="webhook_url")
    runId = serializers.CharField(source="run.run_id", default=None, allow_null=True)
    createdBy = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    createdUtc = serializers.DateTimeField(source="created_at")

    class Meta:
        model = AlertRule
        fields = ["id", "name", "experiments", "statuses", "members", "emails", "webhookUrl", "runId"]
        fields += ["createdBy", "createdUtc"]


class DeliverySerializer(serializers.ModelSerializer):
    rule = serializers.IntegerField(source="rule_id")
    runId = serializers.CharField(source="event.run.run_id")
    fromStatus = serializers.CharField(source="event.from_status")
    toStatus = serializers.CharField(source="event.to_status")
    createdUtc = serializers.DateTimeField(source="created_at")
    nextAttemptUtc = serializers.DateTimeField(source="next_attempt_at")
    sentUtc = serializers.DateTimeField(source="sent_at", allow_null=True)
    lastError = serializers.CharField(source="last_error")

    class Meta:
        model = Delivery
        fields = ["id", "rule", "channel", "runId", "fromStatus", "toStatus", "state", "attempts"]
        fields += ["createdUtc", "nextAttemptUtc", "sentUtc", "lastError"]
