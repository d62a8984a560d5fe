"""The web studio: thin views over the same models (and model methods) as the REST API.

Access is the API's: a workspace someone is not a member of answers 404; a Reader sees no edit
controls and gets 403 on writes; anonymous visitors are sent to log in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found, server_error
from django_htmx.middleware import HtmxDetails

from runs.api.errors import error_body, json_not_found
from runs.models import Experiment, Membership, Run, Workspace
from runs.query import QueryError
from studio import tables

RUNS_PER_PAGE = 50


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


@dataclass
class WorkspaceAccess:
    workspace: Workspace
    role: str
    workspaces: list[Workspace] = field(default_factory=list)  # for the switcher

    @property
    def can_write(self) -> bool:
        return self.role in Membership.WRITE_ROLES


def _get_workspace(request: HttpRequest, name: str) -> WorkspaceAccess:
    """The workspace with the user's role in it; 404 for workspaces the user is not a member of."""
    memberships = list(
        Membership.objects.filter(user=request.user).select_related("workspace").order_by("workspace__name")
    )
    for membership in memberships:
        if membership.workspace.name == name:
            return WorkspaceAccess(membership.workspace, membership.role, [m.workspace for m in memberships])
    raise Http404(f"no workspace {name!r}")


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Open the user's first workspace (the default one, for most)."""
    memberships = Membership.objects.filter(user=request.user).select_related("workspace")
    names = sorted(m.workspace.name for m in memberships)
    if not names:
        return render(request, "studio/no_workspace.html")
    return redirect("run_list", workspace="default" if "default" in names else names[0])


@login_required
@require_GET
def experiment_list(request: HttpRequest, workspace: str) -> HttpResponse:
    access = _get_workspace(request, workspace)
    experiments = Experiment.objects.filter(workspace=access.workspace).order_by("name").with_run_summary()
    return render(request, "studio/experiment_list.html", {"access": access, "experiments": experiments})


class RunListForm(forms.Form):
    """The runs table's state, all of it in the URL."""

    q = forms.CharField(required=False, max_length=2000)
    sort = forms.CharField(required=False, max_length=500)
    cols = forms.CharField(required=False, max_length=2000)
    children = forms.BooleanField(required=False)
    page = forms.IntegerField(required=False, min_value=1)

    def clean_cols(self) -> list[tables.Column]:
        try:
            return tables.parse_columns(self.cleaned_data["cols"])
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None


@login_required
@require_GET
def run_list(request: HtmxHttpRequest, workspace: str, experiment: str | None = None) -> HttpResponse:
    """All runs of a workspace (or of one experiment): search and filters in the query language,
    sort by any column (metrics included), chosen columns, pages. htmx asks for the table only."""
    access = _get_workspace(request, workspace)
    scoped_to = None
    runs = Run.objects.filter(workspace=access.workspace)
    if experiment is not None:
        scoped_to = Experiment.objects.filter(workspace=access.workspace, name=experiment).first()
        if scoped_to is None:
            raise Http404(f"no experiment {experiment!r}")
        runs = runs.filter(experiment=scoped_to)
    form = RunListForm(request.GET)
    error, status = "", 200
    columns = tables.parse_columns("")
    page = None
    if form.is_valid():
        columns = form.cleaned_data["cols"]
        if not form.cleaned_data["children"]:
            runs = runs.filter(parent__isnull=True)
        try:
            runs = runs.search(form.cleaned_data["q"]).sorted_by(form.cleaned_data["sort"])
            page = Paginator(tables.with_cells(runs, columns), RUNS_PER_PAGE).get_page(form.cleaned_data["page"])
        except QueryError as problem:
            error, status = str(problem), 400
    else:
        error, status = "; ".join(e for errors in form.errors.values() for e in errors), 400
    rows = [(run, [(column, tables.cell(run, column)) for column in columns]) for run in page] if page else []
    context: dict[str, Any] = {
        "access": access,
        "experiment": scoped_to,
        "form": form,
        "q": request.GET.get("q", ""),
        "sort": request.GET.get("sort", ""),
        "children": request.GET.get("children", ""),
        "columns": columns,
        "column_keys": ",".join(c.key for c in columns),
        "rows": rows,
        "page": page,
        "error": error,
    }
    template = "studio/run_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#runs-table"
    return render(request, template, context, status=status)


def _get_run(request: HttpRequest, workspace: str, run_id: str) -> tuple[WorkspaceAccess, Run]:
    access = _get_workspace(request, workspace)
    run = (
        Run.objects.filter(workspace=access.workspace, run_id=run_id)
        .select_related("experiment", "submitted_by", "parent")
        .prefetch_related("tag_set", "property_set")
        .first()
    )
    if run is None:
        raise Http404(f"no run {run_id!r}")
    return access, run


@login_required
@require_GET
def run_detail(request: HtmxHttpRequest, workspace: str, run_id: str) -> HttpResponse:
    """A run's overview: status, times, family, description, tags, properties, metric summaries."""
    access, run = _get_run(request, workspace, run_id)
    context = {
        "access": access,
        "run": run,
        "duration": tables.duration(run),
        "children": run.children.order_by("number").only("run_id", "display_name", "status"),
        "metrics": run.metrics.order_by("name"),
        "tab": "overview",
    }
    return render(request, "studio/run_detail.html", context)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """API clients get a JSON 404; browsers get the page."""
    if request.path.startswith("/api/"):
        return json_not_found(request, exception)
    return page_not_found(request, exception)


def server_failed(request: HttpRequest) -> HttpResponse:
    """API clients get a JSON 500, in the API's error shape; browsers get the page."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("ServerError", "the server failed; the error is in its log"), status=500)
    return server_error(request)
