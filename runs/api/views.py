"""REST API views: parse the request, check access, call a model method, serialize.

Access: every lookup goes through ``visible_to(user)`` (another workspace's run is a 404), and
writes need a Contributor or Owner role (a Reader gets a 403).
"""

from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, content_negotiation_class
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from runs import bulk, exports, groups, pages, wire
from runs.api import schema
from runs.api.serializers import (
    AlertRuleSerializer,
    ComputeTargetSerializer,
    DeliverySerializer,
    ExperimentSerializer,
    MembershipSerializer,
    MetricSummarySerializer,
    RunFileSerializer,
    RunLogSerializer,
    RunSerializer,
    RunStatusEventSerializer,
    SnapshotSerializer,
    WorkspaceSerializer,
)
from runs.columns import parse_columns
from runs.models import (
    AlertRule,
    ComputeTarget,
    Conflict,
    Delivery,
    Experiment,
    InvalidValue,
    Membership,
    Run,
    RunSpec,
    Snapshot,
    Workspace,
    normalize_file_path,
    validate_identifier,
    validate_label,
)
from runs.query import QueryError, check_sort
from runs.validation import LOCAL_TARGET

# --- access helpers ----------------------------------------------------------------------------------------


def _get_workspace(request: Request, name: str, *, write: bool = False, manage: bool = False) -> Workspace:
    workspaces = Workspace.objects.visible_to(request.user).filter(name=name)
    if write or manage:
        workspaces = workspaces.with_role_of(request.user)
    workspace = workspaces.first()
    if workspace is None:
        raise NotFound(f"workspace {name!r} not found")
    if not (write or manage):
        return workspace
    role = workspace.role
    if manage and role != Membership.Role.OWNER:
        raise PermissionDenied(f"only an Owner of workspace {name!r} may manage its members")
    if write:
        _check_write(role, name)
    return workspace


def _check_write(role: str | None, workspace: str) -> None:
    if role not in Membership.WRITE_ROLES:
        raise PermissionDenied(f"your role in workspace {workspace!r} is {role}; writing needs Contributor or Owner")


def _get_experiment_to_write(request: Request, workspace: str, name: str) -> Experiment:
    """The experiment ``name`` of ``workspace``, to write in: made if new, as ``Experiment.ensure``
    does. One that exists comes with its workspace and your role in one query."""
    experiment = (
        Experiment.objects.filter(workspace__in=Workspace.objects.visible_to(request.user))
        .filter(workspace__name=workspace, name=name)
        .select_related("workspace")
        .with_role_of(request.user)
        .first()
    )
    if experiment is None:
        return Experiment.ensure(_get_workspace(request, workspace, write=True), name)[0]
    _check_write(experiment.role, workspace)
    return experiment


def _get_run(request: Request, run_id: str, *, write: bool = False) -> Run:
    """The run, with what its details show beside its row (``_run_response``); for a write, your role
    in its workspace comes in the same query."""
    runs = Run.objects.visible_to(request.user).select_related("workspace", "experiment", "submitted_by", "parent")
    if write:
        runs = runs.with_role_of(request.user)
    run = runs.filter(run_id=run_id).first()
    if run is None:
        raise NotFound(f"run {run_id!r} not found")
    if write and run.role not in Membership.WRITE_ROLES:
        raise PermissionDenied("your role in this run's workspace is Reader; writing needs Contributor or Owner")
    return run


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise InvalidValue("the request body must be a JSON object", target="body")
    return request.data


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Makes the request happen once: the same key again (a retry after a lost answer) changes "
    "nothing and is answered as the first was. The SDK sends one with every POST.",
)


def _request_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    return None if key is None else validate_label(key, "Idempotency-Key", max_length=64)


def _run_response(request: Request, run: Run, status_code: int = status.HTTP_200_OK) -> Response:
    """The run's details from the run the view holds, as its write left it (``_get_run`` read it with
    its experiment, submitter and parent; a run just made holds its tags and properties too): only
    what it does not hold is read."""
    return Response(RunSerializer(run, context={"request": request}).data, status=status_code)


def _sort(request: Request, default: str = "-created") -> str:
    """``?sort=``, checked: a key the query language cannot sort by is a 400 naming ``sort``."""
    sort = request.query_params.get("sort") or default
    try:
        check_sort(sort)
    except QueryError as error:
        raise InvalidValue(str(error), target="sort") from None
    return sort


class _FormatIsTheFiles(DefaultContentNegotiation):
    """On the exports, ``?format=`` names the file's format (runs/exports.py checks it), not one of
    DRF's renderers, which would answer 404 to ``format=csv``; errors are JSON as everywhere."""

    def select_renderer(self, request: Request, renderers: list[Any], format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class RunPagination(PageNumberPagination):
    page_size_query_param = "page_size"

    def __init__(self) -> None:  # read per request, so tests (and RUNS_PAGE_SIZE) can change them
        self.page_size = settings.RUNS_PAGE_SIZE
        self.max_page_size = settings.RUNS_MAX_PAGE_SIZE


def _counting_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name) or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidValue(f"{name}: a whole number from 1, not {raw!r}", target=name)
    return int(raw)


def _run_page(request: Request, runs: Any, *, default_sort: str = "-created") -> Response:
    """A page of ``runs`` as ``?q=``, ``?sort=``, ``?page=`` and ``?page_size=`` ask, planned as the
    studio plans its table's (runs/pages.py). ``count`` is how many runs match; for a filtered list
    it is null unless the page is the last or ``?count=true`` asks for it, since counting reads
    every match. ``next`` says whether there is more."""
    query = request.query_params.get("q", "")
    sort = _sort(request, default_sort)
    number = _counting_param(request, "page", 1)
    size = min(_counting_param(request, "page_size", settings.RUNS_PAGE_SIZE), settings.RUNS_MAX_PAGE_SIZE)
    plan = pages.plan_page(runs, query, sort, number, size, count_all=not query.strip() or _flag(request, "count"))
    if not plan.keys and number > 1:
        raise NotFound("Invalid page.")
    url = request.build_absolute_uri()
    previous = None
    if plan.has_previous:
        previous = remove_query_param(url, "page") if number == 2 else replace_query_param(url, "page", number - 1)
    return Response(
        {
            "count": plan.count,
            "next": replace_query_param(url, "page", number + 1) if plan.has_next else None,
            "previous": previous,
            "results": RunSerializer(Run.objects.in_list(plan.keys), many=True, context={"request": request}).data,
        }
    )


# --- workspaces and members --------------------------------------------------------------------------------


@extend_schema(methods=["GET"], responses=WorkspaceSerializer(many=True), summary="Your workspaces")
@extend_schema(
    methods=["POST"], request=schema.WorkspaceCreate, responses={201: WorkspaceSerializer, **schema.errors(400)}
)
@api_view(["GET", "POST"])
def workspace_list(request: Request) -> Response:
    if request.method == "POST":
        workspace = Workspace.create_for(_body(request).get("name"), request.user)
        workspace.role = Membership.Role.OWNER
        return Response(WorkspaceSerializer(workspace).data, status=status.HTTP_201_CREATED)
    roles = dict(Membership.objects.filter(user=request.user).values_list("workspace_id", "role"))
    workspaces = list(Workspace.objects.visible_to(request.user).order_by("name"))
    for workspace in workspaces:
        workspace.role = roles[workspace.pk]
    return Response(WorkspaceSerializer(workspaces, many=True).data)


@extend_schema(methods=["GET"], responses=MembershipSerializer(many=True))
@extend_schema(
    methods=["POST"], request=schema.MemberAdd, responses={201: MembershipSerializer, **schema.errors(400, 403, 404)}
)
@api_view(["GET", "POST"])
def member_list(request: Request, workspace: str) -> Response:
    ws = _get_workspace(request, workspace, manage=request.method == "POST")
    if request.method == "POST":
        body = _body(request)
        user = get_user_model().objects.filter(username=body.get("username")).first()
        if user is None:
            raise InvalidValue(f"no user named {body.get('username')!r}", target="username")
        membership = ws.add_member(user, body.get("role", Membership.Role.READER))
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)
    memberships = ws.memberships.select_related("user").order_by("user__username")
    return Response(MembershipSerializer(memberships, many=True).data)


@extend_schema(responses={204: None, **schema.errors(400, 403, 404)})
@api_view(["DELETE"])
def member_detail(request: Request, workspace: str, username: str) -> Response:
    ws = _get_workspace(request, workspace, manage=True)
    membership = ws.memberships.filter(user__username=username).first()
    if membership is None:
        raise NotFound(f"{username!r} is not a member of {workspace!r}")
    membership.leave()
    return Response(status=status.HTTP_204_NO_CONTENT)


# --- experiments -------------------------------------------------------------------------------------------


@extend_schema(responses=ExperimentSerializer(many=True))
@api_view(["GET"])
def experiment_list(request: Request, workspace: str) -> Response:
    ws = _get_workspace(request, workspace)
    experiments = (
        Experiment.objects.filter(workspace=ws).select_related("workspace").order_by("name").with_run_summary()
    )
    return Response(ExperimentSerializer(experiments, many=True).data)


@extend_schema(methods=["GET"], responses={200: ExperimentSerializer, **schema.errors(404)})
@extend_schema(
    methods=["PUT"],
    request=None,
    responses={200: ExperimentSerializer, 201: ExperimentSerializer, **schema.errors(400, 403)},
)
@api_view(["GET", "PUT"])
def experiment_detail(request: Request, workspace: str, name: str) -> Response:
    """GET an experiment; PUT makes sure it exists (a Reader may PUT one that already exists)."""
    ws = _get_workspace(request, workspace)
    experiment = Experiment.objects.filter(workspace=ws, name=name).first()
    if experiment is None:
        if request.method == "GET":
            raise NotFound(f"experiment {name!r} not found in workspace {workspace!r}")
        _get_workspace(request, workspace, write=True)
        experiment, _ = Experiment.ensure(ws, name)
        return Response(ExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED)
    return Response(ExperimentSerializer(experiment).data)


@extend_schema(
    request=schema.RunStart,
    parameters=[IDEMPOTENCY_KEY],
    responses={201: RunSerializer, **schema.errors(400, 403, 404, 409)},
)
@api_view(["POST"])
def experiment_runs(request: Request, workspace: str, name: str) -> Response:
    """Start a run in the experiment, creating the experiment if needed."""
    experiment = _get_experiment_to_write(request, workspace, name)
    body = _body(request)
    script_run = body.get("type") == Run.Type.SCRIPT
    spec = RunSpec(
        run_id=body.get("runId"),
        display_name=body.get("displayName") or "",
        description=body.get("description") or "",
        tags=body.get("tags"),
        properties=body.get("properties"),
        type=Run.Type.SCRIPT if script_run else Run.Type.INTERACTIVE,
        # A script run waits for its snapshot, then is queued (POST .../status/ Queued).
        status=Run.Status.NOT_STARTED if script_run else Run.Status.RUNNING,
        target=body.get("target") or LOCAL_TARGET,
        script=body.get("script") or "",
        arguments=body.get("arguments"),
        cancel_grace_seconds=body.get("cancelGraceSeconds", 10),
    )
    parent = None
    if parent_id := body.get("parentRunId"):
        parent = _get_run(request, parent_id, write=True)
        if parent.experiment_id != experiment.pk:
            raise InvalidValue("a child run belongs to its parent's experiment", target="parentRunId")
    (run,) = experiment.create_runs([spec], by=request.user, parent=parent, request_key=_request_key(request))
    return _run_response(request, run, status.HTTP_201_CREATED)


# --- compute targets ---------------------------------------------------------------------------------------


@extend_schema(methods=["GET"], responses=ComputeTargetSerializer(many=True))
@extend_schema(
    methods=["POST"],
    request=schema.ComputeTargetCreate,
    responses={201: ComputeTargetSerializer, **schema.errors(400, 403)},
)
@api_view(["GET", "POST"])
def compute_list(request: Request, workspace: str) -> Response:
    """The workspace's compute targets (``local`` is always there besides). Creating one needs a
    broker (``CELERY_BROKER_URL``): its runs are queued there for ``studio worker`` processes."""
    ws = _get_workspace(request, workspace, write=request.method == "POST")
    if request.method == "POST":
        body = _body(request)
        name = validate_identifier(body.get("name"), "name", max_length=64)
        if name == LOCAL_TARGET:
            raise InvalidValue("'local' is built in: it runs scripts on the submitting machine", target="name")
        if not settings.CELERY_BROKER_URL:
            raise InvalidValue(
                "this studio has no CELERY_BROKER_URL: compute targets queue their runs on a broker", target="name"
            )
        target, created = ComputeTarget.objects.get_or_create(
            workspace=ws,
            name=name,
            defaults={"description": validate_label(body.get("description") or "", "description", allow_empty=True)},
        )
        if not created:
            raise Conflict(f"compute target {name!r} already exists", target="name")
        return Response(ComputeTargetSerializer(target).data, status=status.HTTP_201_CREATED)
    return Response(ComputeTargetSerializer(ws.compute_targets.select_related("workspace"), many=True).data)


@extend_schema(responses={200: ComputeTargetSerializer, **schema.errors(404)})
@api_view(["GET"])
def compute_detail(request: Request, workspace: str, name: str) -> Response:
    target = _get_workspace(request, workspace).compute_targets.filter(name=name).first()
    if target is None:
        raise NotFound(f"no compute target {name!r} in workspace {workspace!r}")
    return Response(ComputeTargetSerializer(target).data)


# --- runs --------------------------------------------------------------------------------------------------


@extend_schema(
    parameters=[*schema.RUN_LIST_PARAMETERS, OpenApiParameter("include_children", bool)],
    responses={200: schema.RunPage, **schema.errors(400, 404)},
)
@api_view(["GET"])
def workspace_runs(request: Request, workspace: str) -> Response:
    """Runs of a workspace: ``?q=`` (query language), ``?sort=``, ``?include_children=``, pages."""
    return _run_page(request, _workspace_runs(request, workspace))


def _workspace_runs(request: Request, workspace: str) -> Any:
    runs = Run.objects.filter(workspace=_get_workspace(request, workspace)).listed(_flag(request, "archived"))
    if not _flag(request, "include_children"):
        runs = runs.filter(parent__isnull=True)
    return runs


@extend_schema(
    parameters=[
        OpenApiParameter(
            "by", str, required=True, description="one or two keys: `tags.lr` or `properties.lr,tags.model`"
        ),
        OpenApiParameter("metrics", str, description="`loss,accuracy.max`: each group's mean, std, min and max"),
        OpenApiParameter("q", str, description="the run query language: the runs to group"),
        OpenApiParameter("include_children", bool),
        OpenApiParameter("archived", bool, description="true: group the archived runs"),
    ],
    responses={200: schema.RunGroups, **schema.errors(400, 404)},
    summary="Runs grouped by one or two keys, with metric statistics",
)
@api_view(["GET"])
def workspace_run_groups(request: Request, workspace: str) -> Response:
    """The runs that ``q`` matches, grouped by ``by`` (runs/groups.py)."""
    by = groups.parse_keys(request.query_params.get("by", ""))
    metrics = groups.parse_metrics(request.query_params.get("metrics", ""))
    runs = _workspace_runs(request, workspace).search(request.query_params.get("q", ""))
    return Response({"groups": [group.as_dict() for group in groups.run_groups(runs, by, metrics)]})


BULK_FIELDS = {"action", "runIds", "q", "includeChildren", "tags", "keys", "experiment"}


@extend_schema(request=schema.BulkAction, responses={200: schema.BulkResult, **schema.errors(400, 403, 404)})
@api_view(["POST"])
def workspace_runs_bulk(request: Request, workspace: str) -> Response:
    """Act on many runs at once (runs/bulk.py): ``tag``, ``untag``, ``cancel``, ``move``, ``archive``,
    ``restore`` or ``purge`` the runs named in ``runIds`` or matched by ``q``; answers how many
    changed and which were skipped, why."""
    body = _body(request)
    if unknown := sorted(set(body) - BULK_FIELDS):
        raise InvalidValue(f"{unknown[0]}: not a field of a bulk action ({', '.join(sorted(BULK_FIELDS))})",
                           target=unknown[0])  # fmt: skip
    result = bulk.act_on_runs(
        _get_workspace(request, workspace),
        request.user,
        body.get("action"),
        run_ids=body.get("runIds"),
        query=body.get("q"),
        tags=body.get("tags"),
        keys=body.get("keys"),
        experiment=body.get("experiment"),
        include_children=body.get("includeChildren") is True,
    )
    return Response({"changed": result.changed, "skipped": result.skipped})


EXPORT_PARAMETERS = [
    OpenApiParameter("q", str, description="the run query language, e.g. `status = Failed and tags.team = vision`"),
    OpenApiParameter("include_children", bool),
    OpenApiParameter("archived", bool, description="true: export the archived runs"),
    OpenApiParameter("format", str, enum=list(exports.FORMATS), description="csv (the default)"),
]


@extend_schema(
    parameters=[
        *EXPORT_PARAMETERS,
        OpenApiParameter("sort", str, description="comma-separated keys, e.g. `-created` or `metrics.loss.min`"),
        OpenApiParameter("cols", str, description="columns, as the studio names them: `name,status,metrics.loss.min`"),
    ],
    responses={(200, "text/csv"): OpenApiTypes.STR, **schema.errors(400, 404)},
    summary="Every matching run, as CSV",
)
@api_view(["GET"])
@content_negotiation_class(_FormatIsTheFiles)
def workspace_runs_export(request: Request, workspace: str) -> StreamingHttpResponse:
    """Every run that ``q`` matches (not a page), sorted by ``sort``, one CSV line each with the
    columns ``cols`` (the studio's default columns if none), exact values; streamed."""
    runs = _workspace_runs(request, workspace).search(request.query_params.get("q", ""))
    runs = runs.sorted_by(_sort(request))
    exports.check_format(request.query_params.get("format"))
    try:
        columns = parse_columns(request.query_params.get("cols", ""))
    except ValueError as error:
        raise InvalidValue(f"cols: {error}", target="cols") from None
    return exports.csv_download(exports.runs_csv(runs, columns), f"{workspace}-runs.csv")


@extend_schema(
    parameters=[
        *EXPORT_PARAMETERS,
        OpenApiParameter("names", str, description="metric names, comma-separated (all of them if none)"),
    ],
    responses={(200, "text/csv"): OpenApiTypes.STR, **schema.errors(400, 404)},
    summary="The metric histories of every matching run, as CSV",
)
@api_view(["GET"])
@content_negotiation_class(_FormatIsTheFiles)
def workspace_metrics_export(request: Request, workspace: str) -> StreamingHttpResponse:
    """Every point of the metrics ``names`` of every run that ``q`` matches, in long format
    (``run_id, metric, step, value, time``); streamed."""
    runs = _workspace_runs(request, workspace).search(request.query_params.get("q", ""))
    exports.check_format(request.query_params.get("format"))
    names = [name.strip() for name in request.query_params.get("names", "").split(",") if name.strip()]
    return exports.csv_download(exports.metric_points_csv(runs, names), f"{workspace}-metrics.csv")


@extend_schema(methods=["GET"], responses={200: RunSerializer, **schema.errors(404)})
@extend_schema(
    methods=["PATCH"], request=schema.RunUpdate, responses={200: RunSerializer, **schema.errors(400, 403, 404)}
)
@api_view(["GET", "PATCH"])
def run_detail(request: Request, run_id: str) -> Response:
    run = _get_run(request, run_id, write=request.method == "PATCH")
    if request.method == "PATCH":
        body = _body(request)
        run.update_info(display_name=body.get("displayName"), description=body.get("description"))
    return _run_response(request, run)


@extend_schema(
    request=schema.StatusChange,
    parameters=[IDEMPOTENCY_KEY],
    responses={200: RunSerializer, **schema.errors(400, 403, 404, 409)},
)
@api_view(["POST"])
def run_status(request: Request, run_id: str) -> Response:
    """Move the run to ``status``; ``error`` (code, message, details) goes with Failed."""
    run = _get_run(request, run_id, write=True)
    body = _body(request)
    error = body.get("error") or {}
    if not isinstance(error, dict):
        raise InvalidValue("error must be an object with code, message and details", target="error")
    run.request_status(body.get("status"), by=request.user, error=error, request_key=_request_key(request))
    return _run_response(request, run)


@extend_schema(request=None, responses={200: schema.HeartbeatAnswer, **schema.errors(403, 404)})
@api_view(["POST"])
def run_heartbeat(request: Request, run_id: str) -> Response:
    """Whatever executes the run is alive. The answer carries the status, so a runner learns of a
    cancel request with its next heartbeat."""
    run = _get_run(request, run_id, write=True)
    return Response({"status": run.heartbeat()})


@extend_schema(
    request=None, parameters=[IDEMPOTENCY_KEY], responses={200: RunSerializer, **schema.errors(400, 403, 404, 409)}
)
@api_view(["POST"])
def run_cancel(request: Request, run_id: str) -> Response:
    run = _get_run(request, run_id, write=True)
    run.request_cancel(by=request.user, request_key=_request_key(request))
    return _run_response(request, run)


@extend_schema(request=schema.TagsChange, responses={200: RunSerializer, **schema.errors(400, 403, 404)})
@api_view(["PATCH"])
def run_tags(request: Request, run_id: str) -> Response:
    """``{"set": {key: value-or-null}, "remove": [key, ...]}``."""
    run = _get_run(request, run_id, write=True)
    body = _body(request)
    remove = body.get("remove") or []
    if not isinstance(remove, list):
        raise InvalidValue("remove must be a list of tag keys", target="remove")
    run.set_tags(body.get("set") or {})
    run.remove_tags(remove)
    return _run_response(request, run)


@extend_schema(request=OpenApiTypes.OBJECT, responses={200: RunSerializer, **schema.errors(400, 403, 404, 409)})
@api_view(["POST"])
def run_properties(request: Request, run_id: str) -> Response:
    run = _get_run(request, run_id, write=True)
    run.add_properties(_body(request))
    return _run_response(request, run)


@extend_schema(
    methods=["GET"],
    parameters=[*schema.RUN_LIST_PARAMETERS, OpenApiParameter("recursive", bool)],
    responses={200: schema.RunPage, **schema.errors(400, 404)},
)
@extend_schema(
    methods=["POST"],
    request=schema.ChildrenCreate,
    parameters=[IDEMPOTENCY_KEY],
    responses={201: RunSerializer(many=True), **schema.errors(400, 403, 404, 409)},
)
@api_view(["GET", "POST"])
def run_children(request: Request, run_id: str) -> Response:
    """GET: the run's children (``?recursive=true`` for all descendants), filtered by ``?q=``.

    POST creates children in one request, in order, Running: ``{"count": N}`` (each tagged with its
    batch index), ``{"tagKey": K, "tagValues": [...]}`` (each tagged with its value), or
    ``{"runs": [{"runId", "displayName"}, ...]}``.
    """
    parent = _get_run(request, run_id, write=request.method == "POST")
    if request.method == "GET":
        if _flag(request, "recursive"):
            children = Run.objects.filter(pk__in=parent.descendant_ids())
        else:
            children = Run.objects.filter(parent=parent)
        # A family is archived together: an archived run lists its archived children.
        return _run_page(request, children.listed(parent.archived_at is not None), default_sort="created")
    specs = _child_specs(_body(request))
    # Children made in a batch are named after their parent, "<parent> #i", so that a list of them
    # reads as one family (Azure leaves them nameless); a name asked for is kept.
    family = (parent.display_name or parent.run_id)[:200]
    for index, spec in enumerate(specs, 1):
        spec.display_name = spec.display_name or f"{family} #{index}"
    children = parent.experiment.create_runs(specs, by=request.user, parent=parent, request_key=_request_key(request))
    # Answered from the runs made, as a single start is (``_run_response``): reading a thousand of
    # them back cost as much as making them.
    return Response(RunSerializer(children, many=True, context={"request": request}).data, status=201)


def _child_specs(body: dict[str, Any]) -> list[RunSpec]:
    if "runs" in body:
        runs = body["runs"]
        if not isinstance(runs, list) or not all(isinstance(item, dict) for item in runs):
            raise InvalidValue("runs must be a list of objects", target="runs")
        return [
            RunSpec(run_id=item.get("runId"), display_name=item.get("displayName") or "", tags=item.get("tags"))
            for item in runs
        ]
    tag_key = body.get("tagKey")
    tag_values = body.get("tagValues")
    count = body.get("count")
    if tag_values is not None:
        if not isinstance(tag_values, list) or not all(isinstance(value, str) for value in tag_values):
            raise InvalidValue("tagValues must be a list of strings", target="tagValues")
        if count is not None and count != len(tag_values):
            raise InvalidValue("count must match the number of tagValues", target="count")
        if not tag_key:
            raise InvalidValue("tagKey is required with tagValues", target="tagKey")
        return [RunSpec(tags={tag_key: value}) for value in tag_values]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidValue("count must be a positive integer (or give tagValues or runs)", target="count")
    return [RunSpec(tags={tag_key or "batch_index": str(index)}) for index in range(count)]


@extend_schema(
    methods=["GET"],
    parameters=[OpenApiParameter("name", str), OpenApiParameter("recursive", bool)],
    responses={200: schema.MetricValues, **schema.errors(404)},
)
@extend_schema(
    methods=["POST"],
    request=schema.MetricsBatch,
    responses={201: schema.MetricsStored, **schema.errors(400, 403, 404, 409)},
)
@api_view(["GET", "POST"])
def run_metrics(request: Request, run_id: str) -> Response:
    """POST ``{"batchId": ..., "points": [{name, value, step?, time?, kind?, description?}]}``.

    GET: ``{"metrics": {name: value}}`` as get_metrics() returns it (``?name=`` for one), or with
    ``?recursive=true`` ``{"runs": {run_id: {name: value}}}`` for the run and all its descendants.
    Non-finite floats are written as ``{"$float": "NaN"}`` (runs/wire.py).
    """
    run = _get_run(request, run_id, write=request.method == "POST")
    if request.method == "POST":
        body = _body(request)
        stored = run.log_metrics(body.get("points"), batch_id=body.get("batchId"))
        return Response({"stored": stored}, status=status.HTTP_201_CREATED)
    name = request.query_params.get("name")
    if _flag(request, "recursive"):
        family = {run.pk: run.run_id} | dict(
            Run.objects.filter(pk__in=run.descendant_ids()).values_list("pk", "run_id")
        )
        values = Run.metric_values_of(list(family), name)
        return Response({"runs": {family[pk]: wire.encode(metrics) for pk, metrics in values.items()}})
    return Response({"metrics": wire.encode(run.metric_values(name))})


@extend_schema(responses=MetricSummarySerializer(many=True))
@api_view(["GET"])
def run_metric_summaries(request: Request, run_id: str) -> Response:
    """Each metric's kind, count and last/min/max, without reading its points."""
    run = _get_run(request, run_id)
    return Response(MetricSummarySerializer(run.metrics.order_by("name"), many=True).data)


@extend_schema(
    request={"image/png": OpenApiTypes.BINARY},
    parameters=[OpenApiParameter("name", str, required=True), OpenApiParameter("description", str), IDEMPOTENCY_KEY],
    responses={201: RunFileSerializer, **schema.errors(400, 403, 404, 409)},
)
@api_view(["POST"])
def run_images(request: Request, run_id: str) -> Response:
    """The request body is a PNG; ``?name=`` names the image metric, ``?description=`` is optional."""
    run = _get_run(request, run_id, write=True)
    stored = run.log_image(
        request.query_params.get("name", ""),
        request.stream or io.BytesIO(),
        description=request.query_params.get("description", ""),
        request_key=_request_key(request),
    )
    return Response(RunFileSerializer(stored, context={"request": request}).data, status=status.HTTP_201_CREATED)


@extend_schema(parameters=[OpenApiParameter("prefix", str)], responses=RunFileSerializer(many=True))
@api_view(["GET"])
def run_files(request: Request, run_id: str) -> Response:
    run = _get_run(request, run_id)
    prefix = request.query_params.get("prefix", "")
    files = RunFileSerializer(
        run.files.select_related("run").filter(path__startswith=prefix), many=True, context={"request": request}
    ).data
    logs = RunLogSerializer(run.logs.select_related("run").filter(path__startswith=prefix), many=True).data
    return Response(sorted([*files, *logs], key=lambda item: item["path"]))


@extend_schema(methods=["GET"], responses={(200, "*/*"): OpenApiTypes.BINARY, **schema.errors(404)})
@extend_schema(
    methods=["PUT"], request=schema.BINARY, responses={201: RunFileSerializer, **schema.errors(400, 403, 404, 409)}
)
@api_view(["GET", "PUT"])
def run_file(request: Request, run_id: str, path: str) -> Response | FileResponse:
    """PUT stores the raw request body as the file, streamed; GET streams it back."""
    run = _get_run(request, run_id, write=request.method == "PUT")
    if request.method == "PUT":
        stored = run.add_file(path, request.stream or io.BytesIO())
        return Response(RunFileSerializer(stored, context={"request": request}).data, status=201)
    path = normalize_file_path(path)
    filename = path.rsplit("/", 1)[-1]
    if file := run.files.filter(path=path).first():
        return FileResponse(file.open(), as_attachment=True, filename=filename)
    if log := run.logs.filter(path=path).first():
        response = StreamingHttpResponse(log.iter_bytes(), content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    raise NotFound(f"run {run_id!r} has no file {path!r}")


@extend_schema(
    methods=["GET"],
    parameters=[OpenApiParameter("after", int, description="the byte offset to read from")],
    responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, **schema.errors(400, 404)},
)
@extend_schema(
    methods=["POST"],
    request=schema.BINARY,
    parameters=[
        OpenApiParameter("offset", int, required=True, description="where these bytes start"),
        OpenApiParameter("stderr", str, description="the ranges of them from stderr: `120-180,300-342` ([start, end))"),
    ],
    responses={200: schema.LogSize, **schema.errors(400, 403, 404, 409)},
)
@api_view(["GET", "POST"])
def run_log(request: Request, run_id: str, path: str) -> Response | HttpResponse:
    """A run's log, followed with a byte cursor. GET ``?after=N`` answers the bytes from offset N
    (raw), with ``X-Next-Offset`` (ask for this next) and ``X-Run-Status`` headers. POST appends
    the body at ``?offset=N``; a chunk sent again is a no-op, a gap answers 409 with the size."""
    run = _get_run(request, run_id, write=request.method == "POST")
    if request.method == "POST":
        offset = _int_param(request, "offset")
        try:
            stderr = wire.decode_ranges(request.query_params.get("stderr", ""))
        except ValueError as error:
            raise InvalidValue(f"stderr: {error}", target="stderr") from None
        return Response({"size": run.append_log(path, offset, request.body, stderr)})
    data, next_offset = run.read_log(path, _int_param(request, "after", default=0))
    response = HttpResponse(data, content_type="application/octet-stream")
    response["X-Next-Offset"] = str(next_offset)
    response["X-Run-Status"] = run.status
    return response


@extend_schema(methods=["GET"], responses={(200, "application/zip"): OpenApiTypes.BINARY, **schema.errors(404)})
@extend_schema(
    methods=["PUT"],
    request={"application/zip": OpenApiTypes.BINARY},
    responses={201: SnapshotSerializer, **schema.errors(400, 403, 404, 409)},
)
@api_view(["GET", "PUT"])
def run_snapshot(request: Request, run_id: str) -> Response | FileResponse:
    """The zipped source folder of a script run: PUT once (streamed), GET to restore it."""
    run = _get_run(request, run_id, write=request.method == "PUT")
    if request.method == "PUT":
        snapshot = Snapshot.store(run, request.stream or io.BytesIO())
        return Response(SnapshotSerializer(snapshot).data, status=status.HTTP_201_CREATED)
    snapshot = Snapshot.objects.filter(run=run).first()
    if snapshot is None:
        raise NotFound(f"run {run_id!r} has no snapshot")
    return FileResponse(snapshot.open(), as_attachment=True, filename=f"{run.run_id}-snapshot.zip")


@extend_schema(responses={200: SnapshotSerializer, **schema.errors(404)})
@api_view(["GET"])
def run_snapshot_files(request: Request, run_id: str) -> Response:
    """What the snapshot holds: its files and their sizes."""
    snapshot = Snapshot.objects.filter(run=_get_run(request, run_id)).first()
    if snapshot is None:
        raise NotFound(f"run {run_id!r} has no snapshot")
    return Response(SnapshotSerializer(snapshot).data)


def _int_param(request: Request, name: str, *, default: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None and default is not None:
        return default
    try:
        value = int(raw or "")
    except ValueError:
        raise InvalidValue(f"{name} must be a whole number of bytes", target=name) from None
    if value < 0:
        raise InvalidValue(f"{name} must not be negative", target=name)
    return value


@extend_schema(responses=RunStatusEventSerializer(many=True))
@api_view(["GET"])
def run_events(request: Request, run_id: str) -> Response:
    run = _get_run(request, run_id)
    return Response(RunStatusEventSerializer(run.events.select_related("by"), many=True).data)


# --- notifications ------------------------------------------------------------------------------------------


def _string_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if isinstance(value, str):  # "Failed,Canceled" reads naturally too
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidValue(f"{key} must be a list of strings", target=key)
    return value


def _get_rule(request: Request, workspace: Workspace, rule_id: int) -> AlertRule:
    rule = AlertRule.objects.visible_to(request.user, workspace).filter(pk=rule_id).first()
    if rule is None:
        raise NotFound(f"no alert rule {rule_id} in workspace {workspace.name!r}")
    return rule


_RULE_RELATED = ("experiments", "members")


@extend_schema(methods=["GET"], responses=AlertRuleSerializer(many=True), summary="Alert rules")
@extend_schema(
    methods=["POST"],
    request=schema.AlertRuleCreate,
    responses={201: schema.AlertRuleCreated, **schema.errors(400, 403, 404)},
    summary="Create an alert rule",
)
@api_view(["GET", "POST"])
def alert_list(request: Request, workspace: str) -> Response:
    """The workspace's alert rules, and your own watches on single runs. Creating a rule needs the
    Contributor or Owner role; the answer carries the webhook's signing secret, this once."""
    ws = _get_workspace(request, workspace, write=request.method == "POST")
    if request.method == "POST":
        body = _body(request)
        webhook_url = body.get("webhookUrl") or ""
        if not isinstance(webhook_url, str):
            raise InvalidValue("webhookUrl must be a string", target="webhookUrl")
        rule = AlertRule.create_rule(
            ws,
            by=request.user,
            name=body.get("name") or "",
            statuses=_string_list(body, "statuses"),
            experiments=_string_list(body, "experiments"),
            members=_string_list(body, "members"),
            emails=_string_list(body, "emails"),
            webhook_url=webhook_url,
        )
        return Response(
            {"rule": AlertRuleSerializer(rule).data, "webhookSecret": rule.webhook_secret},
            status=status.HTTP_201_CREATED,
        )
    rules = AlertRule.objects.visible_to(request.user, ws).select_related("run", "created_by")
    return Response(AlertRuleSerializer(rules.prefetch_related(*_RULE_RELATED), many=True).data)


@extend_schema(methods=["GET"], responses={200: AlertRuleSerializer, **schema.errors(404)})
@extend_schema(methods=["DELETE"], responses={204: None, **schema.errors(403, 404)})
@api_view(["GET", "DELETE"])
def alert_detail(request: Request, workspace: str, rule_id: int) -> Response:
    ws = _get_workspace(request, workspace)
    rule = _get_rule(request, ws, rule_id)
    if request.method == "DELETE":
        if not rule.can_delete(request.user, ws.role_of(request.user)):
            raise PermissionDenied("deleting an alert rule needs the Contributor or Owner role")
        rule.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(AlertRuleSerializer(rule).data)


@extend_schema(
    parameters=[
        OpenApiParameter("rule", int, description="only this rule's deliveries"),
        OpenApiParameter("page", int),
    ],
    responses={200: schema.DeliveryPage, **schema.errors(400, 404)},
)
@api_view(["GET"])
def delivery_list(request: Request, workspace: str) -> Response:
    """What the rules you can see sent, are sending and failed to send, newest first."""
    ws = _get_workspace(request, workspace)
    deliveries = Delivery.objects.visible_to(request.user, ws)
    if "rule" in request.query_params:
        deliveries = deliveries.filter(rule=_get_rule(request, ws, _int_param(request, "rule")))
    paginator = RunPagination()
    page = paginator.paginate_queryset(deliveries.select_related("event__run"), request)
    return paginator.get_paginated_response(DeliverySerializer(page, many=True).data)


@extend_schema(methods=["POST"], request=None, responses={201: AlertRuleSerializer, **schema.errors(400, 404, 409)})
@extend_schema(methods=["DELETE"], responses={204: None, **schema.errors(404)})
@api_view(["POST", "DELETE"])
def run_watch(request: Request, run_id: str) -> Response:
    """Be mailed when this run ends (Completed, Failed or Canceled); any member may ask, for
    themselves. DELETE stops watching."""
    run = _get_run(request, run_id)
    if request.method == "DELETE":
        AlertRule.objects.filter(run=run, created_by=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(AlertRuleSerializer(AlertRule.watch(run, request.user)).data, status=status.HTTP_201_CREATED)
