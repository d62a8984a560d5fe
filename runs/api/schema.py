"""What the OpenAPI schema says about requests the views read by hand.

These serializers only document; the rules themselves live in ``runs/validation.py`` and the
models, which every request goes through.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers

from runs.api.serializers import AlertRuleSerializer, DeliverySerializer, RunSerializer
from runs.models import Membership, Run
from runs.validation import METRIC_KINDS


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "runs.api.auth.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "An API token: `Authorization: Bearer rs_...`"}


_ErrorDetail = inline_serializer(
    "ErrorDetail",
    {
        "code": serializers.CharField(),
        "message": serializers.CharField(),
        "target": serializers.CharField(required=False, help_text="the field at fault"),
        "details": serializers.DictField(required=False),
    },
)
Error = inline_serializer("Error", {"error": _ErrorDetail})


def errors(*codes: int) -> dict[int, Any]:
    return dict.fromkeys(codes, Error)


_COMMON_ERRORS = {
    "401": "no API token, or one that is invalid or revoked",
    "404": "nothing by that name, or nothing you can see",
    "400": "a parameter or the body is not what the operation reads (a NUL character, malformed JSON, a bad field)",
    "413": "the body is larger than the operation's limit, named in the message",
}


def add_common_errors(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A postprocessing hook: the errors any operation may answer, whatever its view. Every one needs a
    token (401); one with path parameters looks them up (404); one with parameters or a body reads them
    (400, runs/api/middleware.py and parsers.py); one with a body has a size limit (413)."""
    for operations in result["paths"].values():
        for operation in operations.values():
            codes = ["401"]
            locations = {parameter["in"] for parameter in operation.get("parameters", [])}
            if "path" in locations:
                codes.append("404")
            if locations or "requestBody" in operation:
                codes.append("400")
            if "requestBody" in operation:
                codes.append("413")
            responses = operation["responses"]
            for code in codes:
                responses.setdefault(
                    code,
                    {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                        "description": _COMMON_ERRORS[code],
                    },
                )
            operation["responses"] = dict(sorted(responses.items()))
    return result


class OmitNullsScheme(OpenApiSerializerExtension):
    """Serializers that leave null values out (a run's details): a field that may be null is an optional
    key instead, and never null."""

    target_class = "runs.api.serializers._OmitNullsSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        optional = {name for name, field in schema["properties"].items() if field.pop("nullable", False)}
        required = [name for name in schema.get("required", []) if name not in optional]
        if required:
            schema["required"] = required
        else:
            schema.pop("required", None)
        return schema


_STRING_MAP = OpenApiTypes.OBJECT

ComputeTargetCreate = inline_serializer(
    "ComputeTargetCreate",
    {"name": serializers.CharField(max_length=64), "description": serializers.CharField(required=False)},
)
AlertRuleCreate = inline_serializer(
    "AlertRuleCreate",
    {
        "name": serializers.CharField(required=False, max_length=100),
        "experiments": serializers.ListField(
            child=serializers.CharField(), required=False, help_text="experiment names; none or empty: all"
        ),
        "statuses": serializers.ListField(
            child=serializers.ChoiceField(Run.Status.choices), help_text="the new statuses that fire the rule"
        ),
        "members": serializers.ListField(
            child=serializers.CharField(), required=False, help_text="usernames of members to mail"
        ),
        "emails": serializers.ListField(child=serializers.EmailField(), required=False),
        "webhookUrl": serializers.URLField(required=False, help_text="POSTed a signed JSON body"),
    },
)
AlertRuleCreated = inline_serializer(
    "AlertRuleCreated",
    {
        "rule": AlertRuleSerializer(),
        "webhookSecret": serializers.CharField(
            help_text="shown this once: the key of the HMAC-SHA256 in X-Studio-Signature-256 (empty: no webhook)"
        ),
    },
)
WorkspaceCreate = inline_serializer("WorkspaceCreate", {"name": serializers.CharField(max_length=64)})
MemberAdd = inline_serializer(
    "MemberAdd",
    {"username": serializers.CharField(), "role": serializers.ChoiceField(Membership.Role.values, default="Reader")},
)
RunStart = inline_serializer(
    "RunStart",
    {
        "runId": serializers.CharField(required=False, help_text="default: <experiment>_<unix time>_<8 hex>"),
        "displayName": serializers.CharField(required=False, max_length=255),
        "description": serializers.CharField(required=False, help_text="Markdown"),
        "tags": serializers.DictField(child=serializers.CharField(allow_null=True), required=False),
        "properties": serializers.DictField(child=serializers.CharField(), required=False),
        "target": serializers.CharField(required=False, default="local"),
        "type": serializers.ChoiceField(Run.Type.values, default="interactive"),
        "script": serializers.CharField(required=False, help_text="script runs: the path in the snapshot"),
        "arguments": serializers.ListField(child=serializers.CharField(), required=False),
        "cancelGraceSeconds": serializers.IntegerField(required=False, default=10),
        "parentRunId": serializers.CharField(required=False),
    },
)
_Stats = inline_serializer(
    "MetricStats",
    {
        "mean": serializers.FloatField(allow_null=True),
        "std": serializers.FloatField(allow_null=True, help_text="sample (n - 1); null under two values"),
        "min": serializers.FloatField(allow_null=True),
        "max": serializers.FloatField(allow_null=True),
        "count": serializers.IntegerField(help_text="the group's runs with a value"),
    },
)
RunGroups = inline_serializer(
    "RunGroups",
    {
        "groups": serializers.ListField(
            child=inline_serializer(
                "RunGroup",
                {
                    "key": serializers.JSONField(help_text="the key's value (null: runs without it); a list for two"),
                    "count": serializers.IntegerField(),
                    "metrics": serializers.DictField(child=_Stats),
                },
            )
        )
    },
)
BulkAction = inline_serializer(
    "BulkAction",
    {
        "action": serializers.ChoiceField(
            ["tag", "untag", "cancel", "move", "archive", "restore", "purge"],
            help_text="restore and purge find archived runs; purge is for Owners",
        ),
        "runIds": serializers.ListField(child=serializers.CharField(), required=False, help_text="or q, not both"),
        "q": serializers.CharField(required=False, help_text="the run query language: every run it matches"),
        "includeChildren": serializers.BooleanField(required=False, help_text="q finds child runs too"),
        "tags": serializers.DictField(child=serializers.CharField(allow_null=True), required=False, help_text="tag"),
        "keys": serializers.ListField(child=serializers.CharField(), required=False, help_text="untag"),
        "experiment": serializers.CharField(required=False, help_text="move: the experiment to move the runs to"),
    },
)
BulkResult = inline_serializer(
    "BulkResult",
    {
        "changed": serializers.IntegerField(),
        "skipped": serializers.ListField(
            child=inline_serializer("Skipped", {"runId": serializers.CharField(), "reason": serializers.CharField()})
        ),
    },
)
RunUpdate = inline_serializer(
    "RunUpdate",
    {"displayName": serializers.CharField(required=False), "description": serializers.CharField(required=False)},
)
StatusChange = inline_serializer(
    "StatusChange",
    {
        "status": serializers.ChoiceField(Run.Status.values),
        "error": inline_serializer(
            "RunError",
            {
                "code": serializers.CharField(required=False),
                "message": serializers.CharField(required=False),
                "details": serializers.CharField(required=False),
            },
            required=False,
        ),
    },
)
TagsChange = inline_serializer(
    "TagsChange",
    {
        "set": serializers.DictField(child=serializers.CharField(allow_null=True), required=False),
        "remove": serializers.ListField(child=serializers.CharField(), required=False),
    },
)
ChildrenCreate = inline_serializer(
    "ChildrenCreate",
    {
        "count": serializers.IntegerField(required=False, min_value=1, max_value=1000),
        "tagKey": serializers.CharField(required=False),
        "tagValues": serializers.ListField(child=serializers.CharField(), required=False),
        "runs": serializers.ListField(
            child=inline_serializer(
                "ChildSpec",
                {
                    "runId": serializers.CharField(required=False),
                    "displayName": serializers.CharField(required=False),
                    "tags": serializers.DictField(required=False),
                },
            ),
            required=False,
        ),
    },
)
MetricsBatch = inline_serializer(
    "MetricsBatch",
    {
        "batchId": serializers.CharField(required=False, max_length=64, help_text="idempotency key"),
        "points": serializers.ListField(
            child=inline_serializer(
                "MetricPointIn",
                {
                    "name": serializers.CharField(),
                    "value": serializers.JSONField(help_text='non-finite floats as {"$float": "NaN"}'),
                    "kind": serializers.ChoiceField(METRIC_KINDS, default="scalar"),
                    "step": serializers.IntegerField(required=False),
                    "time": serializers.DateTimeField(required=False),
                    "description": serializers.CharField(required=False),
                },
            ),
            max_length=10_000,
        ),
    },
)
HeartbeatAnswer = inline_serializer("HeartbeatAnswer", {"status": serializers.ChoiceField(Run.Status.values)})
LogSize = inline_serializer("LogSize", {"size": serializers.IntegerField()})
MetricsStored = inline_serializer("MetricsStored", {"stored": serializers.IntegerField()})
MetricValues = inline_serializer(
    "MetricValues",
    {
        "metrics": serializers.DictField(required=False, help_text="name: value (or list of values)"),
        "runs": serializers.DictField(required=False, help_text="with recursive=true: run id: {name: value}"),
    },
)


def _page(name: str, item: serializers.Serializer, *, counted: bool = True) -> Any:
    count_help = "" if counted else "how many match; null when filtered, unless the page is the last or ?count=true"
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(allow_null=not counted, help_text=count_help),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )


RunPage = _page("RunPage", RunSerializer(many=True), counted=False)
DeliveryPage = _page("DeliveryPage", DeliverySerializer(many=True))

RUN_LIST_PARAMETERS = [
    OpenApiParameter("q", str, description="the run query language, e.g. `status = Failed and tags.team = vision`"),
    OpenApiParameter("sort", str, description="comma-separated keys, e.g. `-created` or `metrics.loss.min`"),
    OpenApiParameter("page", int),
    OpenApiParameter("page_size", int, description="up to 1000"),
    OpenApiParameter("count", bool, description="true: count a filtered list's matches (which reads every one)"),
    OpenApiParameter("archived", bool, description="true: the archived runs (which no list shows otherwise)"),
]
BINARY = {"application/octet-stream": OpenApiTypes.BINARY}
