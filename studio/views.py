"""The web studio: thin views over the same models (and model methods) as the REST API.

Access is the API's: a workspace someone is not a member of answers 404; a Reader sees no edit
controls and gets 403 on writes; anonymous visitors are sent to log in.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    QueryDict,
)
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.defaults import page_not_found, server_error
from django_htmx.http import HttpResponseStopPolling, reswap, retarget
from django_htmx.middleware import HtmxDetails

from runs import bulk, exports, groups, pages
from runs.api.errors import error_body, json_not_found
from runs.columns import metric_key
from runs.models import (
    Experiment,
    Membership,
    Metric,
    MetricPoint,
    Run,
    Snapshot,
    StudioError,
    Workspace,
)
from runs.query import QueryError, literal
from runs.series import downsample
from studio import compare, grouping, run_filters, tables
from studio.logs import log_html
from studio.models import DefaultView, SavedView
from studio.run_filters import FilterEditor, FilterError
from studio.run_list_state import (
    GROUP_STATS,
    PINNED_RUNS_MAX,
    RunListState,
    StateError,
    ViewNotFound,
    fields_of,
)

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

    @property
    def is_owner(self) -> bool:
        return self.role == Membership.Role.OWNER


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


@login_required
@require_GET
def run_list(request: HtmxHttpRequest, workspace: str, experiment: str | None = None) -> HttpResponse:
    """All runs of a workspace (or of one experiment): search and filters in the query language,
    sort by any column (metrics included), chosen columns, pages, saved views; the state is
    ``RunListState``'s. htmx asks for the table only (or, with ``column_choices``, for the column
    picker's options)."""
    access = _get_workspace(request, workspace)
    scoped_to = _experiment_or_404(access, experiment)
    if "add" in request.GET:
        return _column_added(request)
    if request.GET.get("filter_values"):
        return _filter_values(request, access, scoped_to)
    if "pin_selected" in request.GET:  # "Pin to top" in the table's form: the runs ticked join the pinned ones
        return _runs_pinned(request)
    # The picker's choices: its <select> asks for them when opened; without JavaScript, the page
    # comes with them. (A table asked for by htmx from such a page does not need them.)
    choices = None
    if request.GET.get("column_choices") and (not request.htmx or request.htmx.target == "column-choices"):
        choices = _column_choices(request, access, scoped_to)
        if request.htmx:
            return render(request, "studio/run_list.html#column-options", {"choices": choices})
    try:
        state = RunListState.from_request(request, access.workspace, request.user)
    except ViewNotFound:
        return _view_not_found(request, access)
    except StateError as problem:
        return _run_list_page(request, access, scoped_to, problem=problem, choices=choices)
    if "filter" in request.GET:  # the "Add filter" editor: a field chosen, or a filter to add
        return _filter_editor(request, access, scoped_to, state, choices)
    if request.GET.get("group_runs"):
        return _group_run_rows(request, access, scoped_to, state)
    if request.GET.get("count"):
        return _run_count(request, access, scoped_to, state)
    return _run_list_page(request, access, scoped_to, state, choices=choices)


def _runs_pinned(request: HttpRequest) -> HttpResponse:
    """The table as it was (``back``: its URL, as the form that was sent had it) with the runs
    ticked pinned to the top, as a redirect; at most PINNED_RUNS_MAX pins, the newest kept."""
    params = QueryDict(urlsplit(request.GET.get("back", "")).query, mutable=True)
    ticked = [r for value in request.GET.getlist("runs") for r in value.split(",") if r]
    before = [r for r in params.get("pinned_runs", "").split(",") if r]
    params["pinned_runs"] = ",".join(list(dict.fromkeys([*before, *ticked]))[-PINNED_RUNS_MAX:])
    params.pop("page", None)
    if ticked:
        messages.success(request, f"Pinned {len(ticked)} run{'' if len(ticked) == 1 else 's'} to the top of the table.")
    else:
        messages.info(request, "Tick the runs to pin first, then choose Pin to top.")
    # Back to this page's own path, whatever ``back`` said: its query is all that is read from it.
    return redirect(f"{request.path}?{params.urlencode(safe=',')}")


def _group_run_rows(
    request: HttpRequest, access: WorkspaceAccess, scoped_to: Experiment | None, state: RunListState
) -> HttpResponse:
    """A group's runs as rows to show under its group row (``state`` is the table filtered to the
    group: studio/grouping.py), the first GROUP_RUNS_SHOWN of them, then a link to the rest."""
    runs = _table_runs(access, scoped_to, state)
    if not state.children:
        runs = runs.filter(parent__isnull=True)
    try:
        matching = runs.search(state.query()).sorted_by(state.sort)
        shown = list(tables.with_cells(matching, state.columns)[: grouping.GROUP_RUNS_SHOWN + 1])
    except QueryError as problem:
        return HttpResponseBadRequest(str(problem))
    drawn = tables.Rows(access.workspace.name, state.columns, depth=1, baseline=_baseline_cells(access, state))
    rows = [drawn.html(run) for run in shown[: grouping.GROUP_RUNS_SHOWN]]
    if len(shown) > grouping.GROUP_RUNS_SHOWN:
        rows.append(
            format_html(
                '<tr class="child-row depth-1 group-more"><td></td><td colspan="{}"><a href="{}?{}">All {} runs of '
                "this group</a></td></tr>",
                len(state.columns),
                request.path,
                state.urlencode(),
                matching.count(),
            )
        )
    context = {
        "access": access,
        "rows": rows,
        "live_runs": [run.run_id for run in shown if not run.is_ended] if _live_cells(state.columns) else [],
        "live_cells": ",".join(_live_cells(state.columns)),
        "poll_seconds": LIST_POLL_SECONDS,
    }
    return render(request, "studio/run_list.html#child-rows", context)


def _table_runs(access: WorkspaceAccess, scoped_to: Experiment | None, state: RunListState | None) -> QuerySet[Run]:
    """The runs a table lists: the workspace's (or the experiment's), archived ones when asked for."""
    runs = Run.objects.filter(workspace=access.workspace).listed(state is not None and state.archived)
    return runs.filter(experiment=scoped_to) if scoped_to is not None else runs


def _pinned_rows(access: WorkspaceAccess, state: RunListState, columns: list[tables.Column],
                 drawn: tables.Rows, link: Callable[[RunListState], str]) -> list[SafeString]:  # fmt: skip
    """The pinned runs' rows, at the top whatever the filter and page, each with its controls:
    unpin it, and make it the baseline (or stop comparing with it)."""
    found = tables.with_cells(Run.objects.filter(workspace=access.workspace, run_id__in=state.pinned_runs), columns)
    by_id = {run.run_id: run for run in found}
    rows = []
    for run_id in state.pinned_runs:
        if (run := by_id.get(run_id)) is None:
            continue  # deleted, or another workspace's id typed into the URL
        others = tuple(r for r in state.pinned_runs if r != run_id)
        unpin = link(
            dataclasses.replace(state, pinned_runs=others, baseline="" if state.baseline == run_id else state.baseline)
        )
        base = link(dataclasses.replace(state, baseline="" if state.baseline == run_id else run_id))
        controls = format_html(
            '<a class="pin-control" href="{}" title="Unpin: back to its place in the table">Unpin</a>'
            '<a class="pin-control{}" href="{}" title="{}">{}</a>',
            unpin,
            " current" if state.baseline == run_id else "",
            base,
            "Stop showing differences from this run" if state.baseline == run_id
            else "Show every other run's metrics as differences from this run",
            "Baseline ✓" if state.baseline == run_id else "Set as baseline",
        )  # fmt: skip
        rows.append(drawn.html(run, pinned=controls))
    return rows


def _baseline_cells(access: WorkspaceAccess, state: RunListState) -> tuple[str, dict[str, float]] | None:
    """The baseline run's id and its metric cells (column key -> number), for the other rows' differences."""
    if not state.baseline:
        return None
    metric_columns = [c for c in state.columns if c.keyed and c.keyed[0] == "metrics"]
    found = tables.with_cells(Run.objects.filter(workspace=access.workspace, run_id=state.baseline), metric_columns)
    run = next(iter(found), None)
    if run is None:
        return None
    values = {c.key: value for c in metric_columns if isinstance(value := tables.cell(run, c), float)}
    return run.run_id, values


def _filter_editor(
    request: HtmxHttpRequest,
    access: WorkspaceAccess,
    scoped_to: Experiment | None,
    state: RunListState,
    choices: list[tables.ChoiceGroup] | None,
) -> HttpResponse:
    """ "Add filter": the filter added (a redirect to the state's URL with it in the query), or the
    editor for the field chosen: alone for htmx, else on the page. A filter refused comes back in
    the editor, which keeps what was typed and says what is wrong (400)."""
    editor = FilterEditor.from_params(request.GET)
    if request.GET.get("filter_add"):
        try:
            return _filter_added(request, state, editor.added_to(state.q))
        except FilterError as problem:
            editor.errors = problem.errors
    editor.offer(_visible_runs(request, access, scoped_to), access.workspace)
    if not request.htmx or not (request.GET.get("filter_editor") or editor.errors):
        return _run_list_page(request, access, scoped_to, state, choices=choices, editor=editor)
    response = render(request, "studio/run_list.html#filter-editor", {"editor": editor, "access": access})
    if editor.errors:  # in place of the editor, and the URL stays as it was
        response.status_code = 400
        response["HX-Push-Url"] = "false"
        reswap(retarget(response, "#filter-editor"), "outerHTML")
    return response


@login_required
@require_GET
def run_export(
    request: HtmxHttpRequest, workspace: str, experiment: str | None = None, what: str = "runs"
) -> HttpResponse:
    """The runs table as CSV, from the studio's Export menu: every run it matches (not a page), in
    its order, with its columns (``what="runs"``); or the metric histories of those runs, the metrics
    of its metric columns (all of them if it has none), in long format (``what="metrics"``). The
    files are the REST API's exports (runs/exports.py)."""
    access = _get_workspace(request, workspace)
    scoped_to = _experiment_or_404(access, experiment)
    try:
        state = RunListState.from_request(request, access.workspace, request.user)
    except ViewNotFound:
        return _view_not_found(request, access)
    except StateError as problem:
        return HttpResponseBadRequest(f"This table cannot be exported as it is: {problem}")
    runs = Run.objects.filter(workspace=access.workspace).listed(state.archived)
    if scoped_to is not None:
        runs = runs.filter(experiment=scoped_to)
    if not state.children:
        runs = runs.filter(parent__isnull=True)
    runs = runs.search(state.q)
    name = f"{access.workspace.name}{f'-{scoped_to.name}' if scoped_to else ''}"
    if what == "metrics":
        lines = exports.metric_points_csv(runs, tables.metric_names(state.columns))
        filename = f"{name}-metrics.csv"
    else:
        lines, filename = exports.runs_csv(runs.sorted_by(state.sort), state.columns), f"{name}-runs.csv"
    return exports.csv_download(lines, filename)


# What the confirmation page says each bulk action does, and says it did.
BULK_VERBS = {"tag": ("Tag", "Tagged"), "untag": ("Untag", "Untagged"), "move": ("Move", "Moved"),
              "cancel": ("Cancel", "Canceled"), "archive": ("Archive", "Archived"), "restore": ("Restore", "Restored"),
              "purge": ("Purge", "Purged")}  # fmt: skip
BULK_SHOWN = 20


@login_required
@require_http_methods(["GET", "POST"])
def run_bulk(request: HtmxHttpRequest, workspace: str) -> HttpResponse:
    """A bulk action on the runs ticked in the table, or on all the runs it matches: GET asks to
    confirm it, saying how many runs it changes (and what it needs: tags, an experiment); POST does
    it (runs/bulk.py) and goes back to the table, saying what changed and what was skipped."""
    access = _get_workspace(request, workspace)
    if not access.can_write:
        raise PermissionDenied("your role lets you read runs, not change them")
    data = request.POST if request.method == "POST" else request.GET
    action = data.get("action", "")
    if action not in BULK_VERBS:
        return HttpResponseBadRequest(f"No bulk action {action!r}: choose one of {', '.join(BULK_VERBS)}.")
    if action == "purge" and not access.is_owner:
        raise PermissionDenied("only the workspace's Owners purge runs; archive them instead")
    back = data.get("next", "")
    if not back.startswith("/") or not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("run_list", args=[access.workspace.name])
    query = data.get("all_matching") if "all_matching" in data else None  # the table's query: all it matches
    include_children = data.get("children", "") not in ("", "0")
    run_ids = list(dict.fromkeys(r for value in data.getlist("runs") for r in value.split(",") if r))
    typed = {name: data.get(name, "") for name in ("tags", "keys", "experiment")}
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            result = bulk.act_on_runs(
                access.workspace,
                request.user,
                action,
                run_ids=None if query is not None else run_ids,
                query=query,
                tags=_typed_tags(typed["tags"]) if action == "tag" else None,
                keys=[key.strip() for key in typed["keys"].split(",") if key.strip()] if action == "untag" else None,
                experiment=typed["experiment"] if action == "move" else None,
                include_children=include_children,
            )
        except (StudioError, QueryError) as problem:
            target = getattr(problem, "target", None)
            errors[target if target in typed else "other"] = getattr(problem, "message", str(problem))
        else:
            messages.success(request, _bulk_said(BULK_VERBS[action][1], result))
            return redirect(back)
    try:
        chosen = (
            bulk.selected_by_query(access.workspace, query, include_children, archived=action in bulk.ON_ARCHIVED)
            if query is not None
            else Run.objects.filter(workspace=access.workspace, run_id__in=run_ids)
        )
        count = chosen.count()
    except QueryError as problem:
        return HttpResponseBadRequest(f"The table's query does not hold: {problem}")
    shown = list(chosen.select_related("experiment")[:BULK_SHOWN])
    in_workspace = Run.objects.filter(workspace=access.workspace)
    context = {
        "access": access,
        "action": action,
        "verb": BULK_VERBS[action][0],
        "count": count,
        "shown": shown,
        "more": max(0, count - len(shown)),
        "query": query,
        "include_children": include_children,
        "run_ids": run_ids,
        "next": back,
        "typed": typed,
        "errors": errors,
        "experiments": Experiment.objects.filter(workspace=access.workspace)
        .order_by("name")
        .values_list("name", flat=True),
        "tag_keys": tables.known_keys(in_workspace, "tags")[0] if action == "untag" else [],
    }
    return render(request, "studio/run_bulk.html", context, status=400 if errors else 200)


def _typed_tags(text: str) -> dict[str, str | None]:
    """``reviewed, team=vision``: tags as the confirmation page's field takes them."""
    tags: dict[str, str | None] = {}
    for item in (part.strip() for part in text.split(",")):
        if item:
            key, sep, value = item.partition("=")
            tags[key.strip()] = value.strip() if sep else None
    return tags


def _bulk_said(did: str, result: bulk.BulkResult) -> str:
    said = f"{did} {result.changed} run{'' if result.changed == 1 else 's'}."
    if result.skipped:
        reasons = "; ".join(f"{s['runId']} {s['reason']}" for s in result.skipped[:3])
        more = f"; and {len(result.skipped) - 3} more" if len(result.skipped) > 3 else ""
        said += f" Skipped {len(result.skipped)}: {reasons}{more}."
    return said


def _visible_runs(request: HttpRequest, access: WorkspaceAccess, scoped_to: Experiment | None) -> QuerySet[Run]:
    # Visibility is checked again here, not only through the workspace: these are other runs'
    # keys and values, and they must never leak out of the workspaces the user belongs to.
    visible = Run.objects.visible_to(request.user).filter(workspace=access.workspace)
    return visible.filter(experiment=scoped_to) if scoped_to else visible


def _filter_added(request: HttpRequest, state: RunListState, query: str) -> HttpResponse:
    """The state's own URL with its query now ``query`` (a filter added): htmx follows the redirect
    and pushes its URL, as for an added column."""
    params = state.query_dict()
    params["q"] = query
    if view := request.GET.get("view"):
        params["view"] = view
    return redirect(f"{request.path}?{params.urlencode(safe=',')}")


def _filter_values(request: HttpRequest, access: WorkspaceAccess, scoped_to: Experiment | None) -> HttpResponse:
    """The values a tag or property key has, as <option>s for the editor's value suggestions."""
    values = run_filters.value_suggestions(
        _visible_runs(request, access, scoped_to),
        request.GET.get("filter", ""),
        request.GET.get("filter_key", "").strip(),
    )
    return render(request, "studio/run_list.html#filter-value-options", {"values": values})


def _experiment_or_404(access: WorkspaceAccess, name: str | None) -> Experiment | None:
    if name is None:
        return None
    found = Experiment.objects.filter(workspace=access.workspace, name=name).first()
    if found is None:
        raise Http404(f"no experiment {name!r}")
    return found


def _column_choices(
    request: HttpRequest, access: WorkspaceAccess, scoped_to: Experiment | None
) -> list[tables.ChoiceGroup]:
    return tables.column_choices(_visible_runs(request, access, scoped_to))


@dataclass
class _Table:
    """The runs a state shows: its page, and how it is drawn."""

    page: Page | None = None
    flat: bool = False
    hidden_children: int = 0
    child_counts: dict[int, int] = field(default_factory=dict)


def _table_of(runs: QuerySet[Run], state: RunListState) -> _Table:
    """The page of ``runs`` that ``state`` asks for. Searching with child runs included lists every
    matching run at any depth, flat, each child marked with its parent; otherwise children are
    nested under their parents."""
    query = state.query()
    filtered = bool(query.strip())
    flat = filtered and state.children
    listed = runs if flat else runs.filter(parent__isnull=True)
    page = _page_of(listed, query, state.sort, state.columns, state.page)
    table = _Table(page, flat)
    if filtered and not flat and page.paginator.count == 0:
        # Only when nothing is shown: one count, so that a search whose matches are all child runs
        # does not look like one that matches nothing.
        table.hidden_children = runs.filter(parent__isnull=False).search(query).count()
    if state.children and not flat and len(page):
        table.child_counts = Run.objects.child_counts(list(page), state.archived)
    return table


def _run_list_page(
    request: HtmxHttpRequest,
    access: WorkspaceAccess,
    scoped_to: Experiment | None,
    state: RunListState | None = None,
    *,
    problem: StateError | None = None,
    choices: list[tables.ChoiceGroup] | None = None,
    refused: str = "",
    editor: FilterEditor | None = None,
) -> HttpResponse:
    """The runs page (or its table, for htmx) for a ``state``, or for one that did not hold
    (``problem``), whose form controls then keep what was asked for so that it can be mended.
    ``refused``: the page answers a view that was not saved (400), and says why."""
    runs = _table_runs(access, scoped_to, state)
    list_url = reverse("experiment_runs", args=[access.workspace.name, scoped_to.name]) if scoped_to else None
    list_url = list_url or reverse("run_list", args=[access.workspace.name])
    table, error, status = _Table(), "", 200
    grouped = None
    if state is not None:
        try:
            if state.group:
                grouped = grouping.grouped_table(runs, state, state.columns, lambda s: f"{list_url}?{s.urlencode()}")
            else:
                table = _table_of(runs, state)
        except QueryError as found:  # what parsing alone could not tell
            problem = StateError({"q": str(found)})
    view = state.view if state is not None else getattr(problem, "view", None)
    if problem is not None:
        error, status = str(problem), 400
        if refused:
            error = f"{refused}: {problem}"
        elif getattr(problem, "from_view", False):
            # What a saved view holds (a query written before the language changed, a column since
            # gone) is not the reader's mistake: its page opens and says how to mend the view.
            error, status = (
                f"The view “{view.name}” no longer works as saved: {problem}. Change it here, then update the view.",
                200,
            )
        fields = fields_of(getattr(problem, "params", None) or request.POST or request.GET)
        try:
            columns = tables.parse_columns(fields["cols"])
        except ValueError:
            columns = tables.parse_columns("")
        pin = [key.strip() for key in fields["pin"].split(",")]
        columns = tables.pinned_first(columns, pin)
        hidden = [(name, value) for name, value in fields.items() if value]
    else:
        fields, columns, pin = state.fields(), state.columns, list(state.pin)
        hidden = [
            (name, v)
            for name, value in state.to_params().items()
            for v in (value if isinstance(value, list) else [value])
        ]
    shown = list(table.page) if table.page else []
    compare = [r for r in fields["compare"].split(",") if r]
    baseline = _baseline_cells(access, state) if state is not None else None
    drawn = tables.Rows(access.workspace.name, columns, compare=frozenset(compare), flat=table.flat, baseline=baseline)
    # Links change one thing in the URL; a default view (not in the URL) is named in them, so that
    # the next page or a moved column stays on it.
    links = request.GET.copy()
    for name in run_filters.EDITOR_PARAMS:
        links.pop(name, None)
    if view is not None and not links.get("view"):
        links["view"] = str(view.pk)
    pinned_rows = []
    if state is not None and state.pinned_runs and problem is None:
        pinned_rows = _pinned_rows(access, state, columns, drawn, lambda s: f"{list_url}?{s.urlencode()}")
    context: dict[str, Any] = {
        "access": access,
        "experiment": scoped_to,
        # Where the table's links and forms go: a page answering a view form's POST is still the list's.
        "list_url": list_url,
        "link_prefix": "" if request.path == list_url else list_url,  # links are relative to the list
        "fields": fields,
        "hidden_state": hidden,
        "links": links,
        "chips": state.chips if state is not None else [],
        "exports": _export_links(access, scoped_to, state) if state is not None else None,
        # "All N matching runs" for a bulk action: the table's query, within the experiment shown.
        "bulk_query": run_filters.with_condition(fields["q"], f"experiment = {literal(scoped_to.name)}")
        if scoped_to is not None and state is not None
        else fields["q"],
        "metric_names": tables.metric_names(columns),
        "editor": editor or FilterEditor(),
        "filter_fields": run_filters.FILTER_FIELDS.values()
        if scoped_to is None
        else [f for f in run_filters.FILTER_FIELDS.values() if f.name != "experiment"],
        "columns": columns,
        "column_keys": ",".join(c.key for c in columns),
        "column_edits": tables.column_edits(columns, pin),
        "pinned_keys": tables.pinned_keys(columns, pin),
        "shown_keys": [c.key for c in columns],
        "choices": choices or [tables.plain_choices()],
        "choices_loaded": choices is not None,
        "rows": grouped.rows if grouped else [drawn.html(run, table.child_counts.get(run.pk, 0)) for run in shown],
        "pinned_rows": pinned_rows,
        "grouped": grouped,
        "group_keys": _group_key_choices(columns),
        "group_sorts": _group_sort_choices(columns),
        # How many runs the table finds: its pages', or its groups'.
        # None: counted after the page (_page_of), by a request of its own (count_url).
        "total": grouped.runs if grouped else table.page.paginator.count if table.page else 0,
        "count_url": f"{list_url}?{state.urlencode()}&count=1" if state is not None else "",
        "page": table.page,
        "flat": table.flat,
        "hidden_children": table.hidden_children,
        # The table polls for the badges of its live runs (if it shows their badges).
        "live_runs": [run.run_id for run in shown if not run.is_ended] if _live_cells(columns) else [],
        "live_cells": ",".join(_live_cells(columns)),
        "poll_seconds": LIST_POLL_SECONDS,
        "error": error,
        "view": view,
        "save_name": request.POST.get("name", "") if refused else "",
    }
    if editor is not None and editor.errors:
        status = 400  # a filter refused: the page says why, in the editor, which keeps what was typed
    template = "studio/run_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#runs-table"
    else:
        context.update(_page_context(request, access, view))
    if view is not None:  # the views bar says whether what is shown is the view as saved (htmx too)
        context.update(_view_context(request, access, view, state))
    return render(request, template, context, status=status)


def _group_key_choices(columns: list[tables.Column]) -> list[str]:
    """What the "Group by" field suggests: the plain keys, and the shown tag and property columns."""
    keyed = [c.key for c in columns if c.keyed and c.keyed[0] in ("tags", "properties")]
    return [*groups.PLAIN_KEYS, *keyed]


def _group_sort_choices(columns: list[tables.Column]) -> list[tuple[str, str]]:
    """What groups can sort by: key, run count, and each shown metric column's statistics."""
    choices = [("", "Key"), ("-count", "Most runs")]
    for column in columns:
        if tables.group_metric(column):
            for stat in GROUP_STATS:
                choices += [(f"{column.key}:{stat}", f"{column.label} {stat} ↑"),
                            (f"-{column.key}:{stat}", f"{column.label} {stat} ↓")]  # fmt: skip
    return choices


def _export_links(access: WorkspaceAccess, scoped_to: Experiment | None, state: RunListState) -> dict[str, str]:
    """The Export menu's links: the table's state, at the export's URL."""
    args = [access.workspace.name, *([scoped_to.name] if scoped_to else [])]
    runs, metrics = (
        ("experiment_export", "experiment_metrics_export") if scoped_to else ("run_export", "metrics_export")
    )
    query = state.urlencode()
    return {
        "runs": f"{reverse(runs, args=args)}?{query}".rstrip("?"),
        "metrics": f"{reverse(metrics, args=args)}?{query}".rstrip("?"),
    }


def _page_context(request: HttpRequest, access: WorkspaceAccess, view: SavedView | None) -> dict[str, Any]:
    """What the whole page shows around the table: the views."""
    return {
        "views": SavedView.objects.visible_to(request.user, access.workspace).select_related("owner", "changed_by"),
        # The keys the view sets: the state form sends them even when emptied, so that an emptied
        # field clears the view's value instead of bringing it back.
        "view_keys": " ".join(sorted(view.params)) if view is not None else "",
    }


def _view_context(
    request: HttpRequest, access: WorkspaceAccess, view: SavedView, state: RunListState | None
) -> dict[str, Any]:
    default_id = (
        DefaultView.objects.filter(user=request.user, workspace=access.workspace)
        .values_list("view_id", flat=True)
        .first()
    )
    return {
        "can_change_view": view.can_change(request.user, access.role),
        "default_view_id": default_id,
        "view_modified": state is None or state.differs_from(view),
    }


def _view_not_found(request: HttpRequest, access: WorkspaceAccess) -> HttpResponse:
    """A view link that leads nowhere (deleted, or another's private view): a page that says so."""
    return render(request, "studio/view_not_found.html", {"access": access}, status=404)


# How often the runs table asks for the badges of its runs that are still alive (one request for
# the whole table).
LIST_POLL_SECONDS = 5


# The cells that change while a run is alive, and that the table's poll brings up to date.
LIVE_CELLS = ("status", "duration")


def _live_cells(columns: list[tables.Column]) -> list[str]:
    return [column.key for column in columns if column.key in LIVE_CELLS]


def _column_added(request: HttpRequest) -> HttpResponse:
    """The picker's "Add column" form sends the table's state and ``add``: redirect to the state's
    own URL with the column appended to ``cols``, so that the URL stays the whole state (and
    shareable). Empty parameters are left out; htmx follows the redirect and pushes its URL."""
    params = request.GET.copy()
    added = [key.strip() for key in params.pop("add") if key.strip()]
    shown = [key.strip() for key in params.get("cols", "").split(",") if key.strip()] or tables.DEFAULT_COLUMNS
    params["cols"] = ",".join(dict.fromkeys([*shown, *added]))
    query = QueryDict(mutable=True)
    for key, values in params.lists():
        if any(values):
            query.setlist(key, values)
    return redirect(f"{request.path}?{query.urlencode(safe=',')}")


class _CountedAfter(Paginator):
    """The pages of a filtered table whose count comes after the page (its own request): it knows
    whether there is a next page (the page query reads one run more than it shows), not how many."""

    def __init__(self, number: int, has_next: bool) -> None:
        super().__init__([], RUNS_PER_PAGE)
        self.count = None  # type: ignore[assignment] (a cached_property on Paginator)
        self.num_pages = number + 1 if has_next else number  # type: ignore[assignment,misc]


def _page_of(listed: QuerySet[Run], query: str, sort: str, columns: list[tables.Column], number: int | None) -> Page:
    """A page of the ``listed`` runs that ``query`` matches in ``sort``'s order, for the table (planned by
    ``runs.pages``; past the last page, the last one). Unfiltered, the count reads one index and
    comes with the page. Filtered, the page comes first and its count after, in a request of its own
    (``_run_count``), as W&B's and MLflow's tables page without a total: counting every match was
    most of the page's time at 100,000 runs (a tag filter matching 16,576 runs, on PostgreSQL)."""
    plan = pages.plan_page(listed, query, sort, number or 1, RUNS_PER_PAGE, count_all=not query.strip())
    if not plan.keys and plan.number > 1:
        plan = pages.last_page(listed, query, sort, RUNS_PER_PAGE, plan.count or 0)
    paginator: Paginator
    if plan.count is None:
        paginator = _CountedAfter(plan.number, has_next=plan.has_next)
    else:
        paginator = Paginator([], RUNS_PER_PAGE)
        paginator.count = plan.count  # a cached_property: set, so Paginator runs no COUNT(*)
    loaded = tables.with_cells(Run.objects.filter(pk__in=plan.keys), columns).in_bulk()
    return Page([loaded[pk] for pk in plan.keys], plan.number, paginator)


def _run_count(request: HttpRequest, access: WorkspaceAccess, scoped_to: Experiment | None,
               state: RunListState) -> HttpResponse:  # fmt: skip
    """How many runs a filtered table matches, asked for once its page is shown."""
    runs = _table_runs(access, scoped_to, state)
    query = state.query()
    if not (query.strip() and state.children):
        runs = runs.filter(parent__isnull=True)
    try:
        count = runs.search(query).count()
    except QueryError as problem:
        return HttpResponseBadRequest(str(problem))
    pages = max(1, math.ceil(count / RUNS_PER_PAGE))
    return render(request, "studio/run_list.html#run-count", {"total": count, "pages": pages, "oob": True})


@login_required
@require_GET
def run_child_rows(request: HtmxHttpRequest, workspace: str, run_id: str) -> HttpResponse:
    """A parent's child runs as rows of the runs table (same columns), to show under the parent."""
    access, parent = _get_run(request, workspace, run_id)
    try:
        columns = tables.parse_columns(request.GET.get("cols", ""))
    except ValueError as error:
        return HttpResponseBadRequest(str(error))
    # A family is archived together: an archived run's rows are its archived children.
    archived = parent.archived_at is not None
    children = list(tables.with_cells(Run.objects.filter(parent=parent).listed(archived), columns).order_by("number"))
    counts = Run.objects.child_counts(children, archived)
    depth = request.GET.get("depth", "0")
    drawn = tables.Rows(access.workspace.name, columns, depth=min(int(depth) if depth.isdigit() else 0, 5) + 1)
    context = {
        "access": access,
        "rows": [drawn.html(child, counts.get(child.pk, 0)) for child in children],
        # Live children's badges join the table's poll (which this restarts, had it stopped).
        "live_runs": [child.run_id for child in children if not child.is_ended] if _live_cells(columns) else [],
        "live_cells": ",".join(_live_cells(columns)),
        "poll_seconds": LIST_POLL_SECONDS,
    }
    return render(request, "studio/run_list.html#child-rows", context)


class SaveViewForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True)
    shared = forms.BooleanField(required=False)


def _view_for_change(request: HttpRequest, access: WorkspaceAccess, view_id: int) -> SavedView:
    view = SavedView.objects.visible_to(request.user, access.workspace).filter(pk=view_id).first()
    if view is None:
        raise Http404("no such view")
    if not view.can_change(request.user, access.role):
        raise PermissionDenied("a shared view is changed by its workspace's Contributors and Owners")
    return view


def _to_view(access: WorkspaceAccess, view: SavedView | None) -> HttpResponse:
    url = reverse("run_list", args=[access.workspace.name])
    return redirect(f"{url}?view={view.pk}" if view else url)


def _to_state(access: WorkspaceAccess, state: RunListState) -> HttpResponse:
    """Back to the table as it was (search, columns, sort, filters), when a view was not saved."""
    url = reverse("run_list", args=[access.workspace.name])
    return redirect(f"{url}?{state.urlencode()}" if state.to_params() else f"{url}?q=")


def _posted_state(request: HttpRequest, access: WorkspaceAccess, name: str) -> RunListState | HttpResponse:
    """The table's state sent with a view form, or the page refusing it (400): a view is checked
    with the same function as a URL, when it is saved, so that a bad one is never stored."""
    try:
        return RunListState.from_params(request.POST)
    except StateError as problem:
        return _run_list_page(request, access, None, problem=problem, refused=f"The view “{name}” was not saved")


@login_required
@require_POST
def view_save(request: HttpRequest, workspace: str) -> HttpResponse:
    """Save the table's current state (sent with the form) as a new view."""
    access = _get_workspace(request, workspace)
    form = SaveViewForm(request.POST)
    state = _posted_state(request, access, request.POST.get("name", "").strip())
    if isinstance(state, HttpResponse):
        return state
    if not form.is_valid():
        messages.error(request, "A view needs a name of at most 100 characters.")
        return _to_state(access, state)
    if form.cleaned_data["shared"] and not access.can_write:
        raise PermissionDenied("sharing a view needs Contributor or Owner")
    view = SavedView(
        workspace=access.workspace, owner=request.user, changed_by=request.user, params=state.to_params(),
        **form.cleaned_data,
    )  # fmt: skip
    try:
        with transaction.atomic():
            view.save()
    except IntegrityError:
        messages.error(request, f"You already have a view named “{view.name}”: choose another name.")
        return _to_state(access, state)
    messages.success(request, f"Saved the view “{view.name}”{' (shared with the workspace)' if view.shared else ''}.")
    return _to_view(access, view)


VIEW_ACTIONS = ("update", "rename", "share", "unshare", "delete", "default")


@login_required
@require_POST
def view_change(request: HttpRequest, workspace: str, view_id: int, action: str) -> HttpResponse:
    """update (take the current state), rename, share/unshare, delete, or make it my default; each
    says what it did."""
    access = _get_workspace(request, workspace)
    if action not in VIEW_ACTIONS:
        raise Http404(f"no view action {action!r}")
    if action == "default":
        view = SavedView.objects.visible_to(request.user, access.workspace).filter(pk=view_id).first()
        if view is None:
            raise Http404("no such view")
        DefaultView.objects.update_or_create(user=request.user, workspace=access.workspace, defaults={"view": view})
        messages.success(request, f"“{view.name}” now opens when you open All runs.")
        return _to_view(access, view)
    view = _view_for_change(request, access, view_id)
    if action == "delete":
        name = view.name
        view.delete()
        messages.success(request, f"Deleted the view “{name}”.")
        return _to_view(access, None)
    view.changed_by = request.user
    if action == "update":
        state = _posted_state(request, access, view.name)
        if isinstance(state, HttpResponse):
            return state
        view.params = state.to_params()
        view.save()
        messages.success(request, f"Updated the view “{view.name}” to what is shown.")
    elif action == "rename":
        form = SaveViewForm(request.POST)
        if not form.is_valid():
            messages.error(request, "A view needs a name of at most 100 characters.")
            return _to_view(access, view)
        old, view.name = view.name, form.cleaned_data["name"]
        try:
            with transaction.atomic():
                view.save(update_fields=["name", "changed_by", "updated_at"])
        except IntegrityError:
            messages.error(request, f"There is already a view named “{view.name}”; “{old}” keeps its name.")
        else:
            messages.success(request, f"Renamed the view “{old}” to “{view.name}”.")
    else:  # share, unshare
        if view.owner_id != request.user.pk or (action == "share" and not access.can_write):
            raise PermissionDenied("a view is shared by its owner, a Contributor or Owner of the workspace")
        view.shared = action == "share"
        view.save(update_fields=["shared", "changed_by", "updated_at"])
        if view.shared:
            messages.success(request, f"Shared the view “{view.name}” with the workspace.")
        else:
            messages.success(request, f"The view “{view.name}” is private now: only you see it.")
    return _to_view(access, view)


@login_required
@require_GET
def run_compare(request: HttpRequest, workspace: str) -> HttpResponse:
    """The chosen runs side by side (studio/compare.py): properties, tags, metric summaries, the
    rows that differ marked (or alone, ``?only_differences=1``), differences from a baseline run
    (``?baseline=``); and charts: a metric over steps per run, its last value across runs, it
    against a property, and the runs on parallel axes."""
    access = _get_workspace(request, workspace)
    wanted = list(dict.fromkeys(r for value in request.GET.getlist("runs") for r in value.split(",") if r))
    found = {
        run.run_id: run
        for run in Run.objects.filter(workspace=access.workspace, run_id__in=wanted[: compare.COMPARE_MAX_RUNS])
        .select_related("experiment")
        .prefetch_related("tag_set", "property_set", "metrics")
    }
    runs = [found[run_id] for run_id in wanted if run_id in found]
    baseline = found.get(request.GET.get("baseline", ""))
    only_differences = request.GET.get("only_differences", "") not in ("", "0")
    rows = compare.compare_rows(runs, baseline)
    metric_names = sorted({m.name for run in runs for m in run.metrics.all() if m.min_number is not None})
    property_names = sorted({p.key for run in runs for p in run.property_set.all()})
    metric = request.GET.get("metric") if request.GET.get("metric") in metric_names else next(iter(metric_names), "")
    prop = (
        request.GET.get("property") if request.GET.get("property") in property_names else next(iter(property_names), "")
    )
    links = request.GET.copy()
    context = {
        "access": access,
        "runs": runs,
        "baseline": baseline,
        "rows": [row for row in rows if row.differs] if only_differences else rows,
        "hidden_rows": sum(not row.differs for row in rows) if only_differences else 0,
        "only_differences": only_differences,
        "links": links,
        "metric_names": metric_names,
        "property_names": property_names,
        "metric": metric,
        "property": prop,
        "max_runs": compare.COMPARE_MAX_RUNS,
        "too_many": len(wanted) > compare.COMPARE_MAX_RUNS,
        "missing": [run_id for run_id in wanted[: compare.COMPARE_MAX_RUNS] if run_id not in found],
        "parallel": compare.parallel_axes(runs, [n for n in metric_names if not n.startswith(SYSTEM_PREFIX)]),
        "image_names": (
            image_names := sorted({m.name for run in runs for m in run.metrics.all() if m.kind == "image"})
        ),
    }
    if image_names:
        image = request.GET.get("image") if request.GET.get("image") in image_names else image_names[0]
        context["images"] = compare.image_steps(runs, image)
    if metric:
        context.update(compare.compare_charts(runs, metric, prop))
    return render(request, "studio/run_compare.html", context)


def _get_run(request: HttpRequest, workspace: str, run_id: str, *, write: bool = False) -> tuple[WorkspaceAccess, Run]:
    """The run, if the user may see it (404 otherwise); ``write`` also needs Contributor or Owner (403)."""
    access = _get_workspace(request, workspace)
    run = (
        Run.objects.filter(workspace=access.workspace, run_id=run_id)
        .select_related("experiment", "submitted_by", "parent")
        .prefetch_related("tag_set", "property_set")
        .first()
    )
    if run is None:
        raise Http404(f"no run {run_id!r}")
    if write and not access.can_write:
        raise PermissionDenied("your role here is Reader: changing runs needs Contributor or Owner")
    return access, run


TABS = ["overview", "metrics", "system", "children", "outputs", "snapshot", "activity"]
# The system metrics the runner and the SDK sample (runs/sdk/system_metrics.py): the System tab's.
SYSTEM_PREFIX = "system/"


@login_required
@require_GET
def run_detail(request: HtmxHttpRequest, workspace: str, run_id: str, tab: str = "overview") -> HttpResponse:
    """A run's page, one URL per tab; htmx asks for the tab alone."""
    access, run = _get_run(request, workspace, run_id)
    context = _tab_context(request, access, run, tab)
    template = "studio/run_detail.html"
    if request.htmx and not request.htmx.boosted:
        template += f"#tab-{tab}"
    return render(request, template, context)


def _tab_context(request: HttpRequest, access: WorkspaceAccess, run: Run, tab: str) -> dict[str, Any]:
    """What a tab of the run's page shows."""
    context: dict[str, Any] = {"access": access, "run": run, "tab": tab, "tabs": TABS, "duration": tables.duration(run)}
    # A family is archived together: an archived run shows its archived children.
    children_listed = run.children.listed(run.archived_at is not None)
    if tab == "overview":
        context["children"] = children_listed.order_by("number").only("run_id", "display_name", "status")
        context["editing"] = request.GET.get("edit", "") if access.can_write else ""
    elif tab == "metrics":
        context["metrics"] = list(run.metrics.order_by("name"))
        context.update(_metrics_context(run, [m for m in context["metrics"] if not m.name.startswith(SYSTEM_PREFIX)]))
    elif tab == "system":
        system = list(run.metrics.filter(name__startswith=SYSTEM_PREFIX).order_by("name"))
        context["metrics"] = system
        context["charts"] = _metric_charts(sorted(system, key=_system_order))
    elif tab == "children":
        context.update(_children_context(access, run, children_listed, request.GET.get("cols", "")))
    elif tab == "outputs":
        before = request.GET.get("before", "")
        context.update(_outputs_context(run, request.GET.get("file", ""), int(before) if before.isdigit() else None))
    elif tab == "snapshot":
        context["snapshot"] = Snapshot.objects.filter(run=run).first()
    elif tab == "activity":  # status changes and changes by hand, in the order they happened
        changes = list(run.changes.select_related("by"))
        context["events"] = sorted([*run.events.select_related("by"), *changes], key=lambda event: event.at)
    return context


# The Children tab shows this many child runs; the rest are in the runs table, filtered to them.
CHILDREN_SHOWN = 200
# Its default columns: these, then the children's metrics (the first few by name).
CHILD_COLUMNS = ["name", "status", "created", "duration"]
CHILD_METRIC_COLUMNS = 6


def _children_context(access: WorkspaceAccess, run: Run, children: QuerySet[Run], cols: str) -> dict[str, Any]:
    """The Children tab: the child runs as rows of the runs grid, with the metrics they logged as
    columns (or the columns ``cols`` asks for), ticked to compare; the runs table filtered to them
    (every column, filter and sort of All runs) a link away."""
    names = Metric.objects.filter(run__in=children).order_by("name").values_list("name", flat=True).distinct()
    default = ",".join([*CHILD_COLUMNS, *(metric_key(n, "last") for n in names[:CHILD_METRIC_COLUMNS])])
    try:
        columns = tables.parse_columns(cols or default)
    except ValueError:
        columns = tables.parse_columns(default)
    shown = list(tables.with_cells(children, columns).order_by("number")[:CHILDREN_SHOWN])
    drawn = tables.Rows(access.workspace.name, columns)
    state = QueryDict(mutable=True)
    state.update({"q": f"parent = {literal(run.run_id)}", "children": "1", "cols": ",".join(c.key for c in columns)})
    return {
        "child_columns": columns,
        "child_rows": [drawn.html(child) for child in shown],
        "child_total": (total := children.count()),
        "child_more": max(0, total - len(shown)),
        "child_counts": sorted(Counter(children.values_list("status", flat=True)).items()),
        "children_table": f"{reverse('run_list', args=[access.workspace.name])}?{state.urlencode(safe=',')}",
    }


# A row or table metric shows this many rows on the page (all of them are in get_metrics()).
METRIC_TABLE_ROWS = 500


def _metrics_context(run: Run, metrics: list[Metric]) -> dict[str, Any]:
    """The Metrics tab, each metric as what it is: a number logged once as a value, numbers over
    steps as a chart, a list as a chart over its index, rows and tables as tables, images as
    images with a step slider."""
    values = [m for m in metrics if m.kind == Metric.Kind.SCALAR and m.count == 1]
    over_steps = [m for m in metrics if m.kind == Metric.Kind.SCALAR and m.count > 1]
    charts = _metric_charts(over_steps)
    tables_shown, images = [], []
    for metric in metrics:
        if metric.kind == Metric.Kind.LIST:
            listed = run.metric_values(metric.name)[metric.name]
            for number, items in enumerate(listed if metric.count > 1 else [listed]):
                numbers = [
                    _finite(v) if isinstance(v, int | float) and not isinstance(v, bool) else None for v in items
                ]
                label = metric.name if metric.count == 1 else f"{metric.name} #{number + 1}"
                charts.append({"title": label, "xLabel": "index",
                               "series": [{"label": label, "x": list(range(len(numbers))), "y": numbers}]})  # fmt: skip
        elif metric.kind in (Metric.Kind.ROW, Metric.Kind.TABLE):
            columns = run.metric_values(metric.name)[metric.name]
            keys = list(columns)
            height = max((len(cells) for cells in columns.values()), default=0)
            rows = [[columns[key][i] if i < len(columns[key]) else None for key in keys] for i in range(height)]
            tables_shown.append({"metric": metric, "columns": keys, "rows": rows[:METRIC_TABLE_ROWS],
                                 "more": max(0, height - METRIC_TABLE_ROWS)})  # fmt: skip
        elif metric.kind == Metric.Kind.IMAGE:
            points = metric.points.order_by("step", "id").values_list("step", "number", "value")
            shown = [(step, MetricPoint.decode(number, value)) for step, number, value in points]
            images.append({"metric": metric, "points": [(step, path) for step, path in shown if isinstance(path, str)]})
    return {"values": values, "charts": charts, "metric_tables": tables_shown, "images": images}


def _system_order(metric: Metric) -> tuple[int, str]:
    """The System tab's charts: the run's CPU and memory first, then the machine's, then each GPU's."""
    name = metric.name.removeprefix(SYSTEM_PREFIX)
    first = ("cpu_percent", "memory_rss_mb", "machine_cpu_percent", "memory_percent")
    return (first.index(name), name) if name in first else (len(first), name)


# A downsampled series is kept this long in the cache (its key changes with every new point anyway).
CHART_CACHE_SECONDS = 24 * 3600


def _metric_charts(metrics: list[Metric]) -> list[dict[str, Any]]:
    """A chart per numeric metric with its controls (smoothing, log y, x by step or time, zoom),
    downsampled on the server keeping each bucket's min and max: 1,000 points a series for a few
    charts, fewer when a grid of them shares the page (a chart half the page wide shows no more).
    Values go with 6 significant digits (the chart shows about 4; the table below, every digit)
    and times as tenths of a second after the first point's, so that 50 charts stay under a megabyte.

    Each series is kept in the cache under its metric's point count and last write: points are only
    ever appended, and each append counts, so a new point is a new key and a stale series is never
    drawn. (Reading
    50 metrics of 10,000 points again on every view was over a second: bench/RESULTS.md, "A run's
    page and its live log".)"""
    charts = []
    shown = [m for m in metrics if m.kind == Metric.Kind.SCALAR and m.min_number is not None]
    max_points = 1000 if len(shown) <= 4 else 500
    for metric in shown:
        key = f"chart-series:{metric.pk}:{metric.count}:{metric.updated_at.timestamp()}:{max_points}"
        if (series := cache.get(key)) is None:
            series = _chart_series(metric, max_points)
            cache.set(key, series, CHART_CACHE_SECONDS)
        charts.append({"title": metric.name, "xLabel": "step", "controls": True, "series": [series]})
    return charts


def _chart_series(metric: Metric, max_points: int) -> dict[str, Any]:
    """A metric's series, downsampled: its points' steps and numbers read, and the times of only the
    points kept (making every point's time a datetime was most of the cost)."""
    rows = list(metric.points.order_by("step", "id").values_list("id", "step", "number"))
    kept, values = downsample(list(range(len(rows))), [_finite(number) for _, _, number in rows], max_points)
    ids = [rows[i][0] for i in kept]
    times = dict(MetricPoint.objects.filter(id__in=ids).values_list("id", "time")) if ids else {}
    t0 = times[ids[0]].timestamp() if ids else 0.0
    return {
        "label": metric.name,
        "x": [rows[i][1] for i in kept],
        "y": [None if v is None else float(f"{v:.6g}") for v in values],
        "t0": round(t0, 3),
        "t": [round(times[i].timestamp() - t0, 1) for i in ids],
    }


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: the chart shows a gap."""
    return value if value is not None and math.isfinite(value) else None


def _run_files(run: Run) -> list[tuple[str, int, str]]:
    """The run's files and logs, by path: (path, size, "file" or "log")."""
    files = [(f.path, f.size, "file") for f in run.files.all()] + [
        (log.path, log.size, "log") for log in run.logs.all()
    ]
    return sorted(files)


def _outputs_context(run: Run, path: str, before: int | None = None) -> dict[str, Any]:
    """The outputs tab: the file list, and the chosen file. A log is shown from its end (its last
    LOG_VIEW_BYTES), with "Show earlier output" for the part before and a live tail after it while
    the run is active; ``before`` (no JavaScript) shows the part that ends there instead."""
    files = _run_files(run)
    if not path:  # the tab opens on the run's log, as Azure ML's and W&B's do
        logs = [p for p, _, k in files if k == "log"]
        path = LOG_PATH if LOG_PATH in logs or (not logs and not run.is_ended) else next(iter(logs), "")
    context: dict[str, Any] = {"files": files, "selected": path}
    kind = next((k for p, _, k in files if p == path), None)
    if kind is None and path.startswith("logs/") and not run.is_ended:
        kind = "log"  # an active run's log may not have its first byte yet: follow it from 0
    if kind == "log":
        size = next((s for p, s, k in files if p == path and k == "log"), 0)
        end = size if before is None else min(before, size)
        data, start = _read_log_before(run, path, end)
        if end == size and not run.is_ended:  # a line still being written comes with the tail, whole
            data, end = _whole_lines(data, start)
        context.update(
            viewer="log",
            lines=log_html(data, start, _stderr_of(run, path)),
            first_line=_lines_before(run, path, start),
            start=start,
            offset=end,
            size=size,
            more=end == size and not run.is_ended,  # a live tail, from the end on
            window=end < size,  # an earlier part, opened without JavaScript
        )
    elif kind == "file" and path.lower().endswith((".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")):
        context["viewer"] = "image"
    elif kind == "file":
        file = run.files.get(path=path)
        if file.size <= LOG_VIEW_BYTES:
            with file.open() as content:
                context.update(viewer="text", text=content.read().decode(errors="replace"))
        else:
            context["viewer"] = "download"
    return context


# A log is shown this much at a time: its end first, then as much again per "Show earlier output".
LOG_VIEW_BYTES = 1024 * 1024
LOG_PATH = "logs/std_log.txt"  # the runner's (runs/runner.py)
# Line numbers count the lines before the part shown, read through the log; past this, a part is
# numbered from where it starts (the log is too long to count on every view).
LINE_COUNT_MAX_BYTES = 64 * 1024 * 1024


def _stderr_of(run: Run, path: str) -> list[list[int]]:
    return run.logs.filter(path=path).values_list("stderr_ranges", flat=True).first() or []


def _whole_lines(data: bytes, start: int) -> tuple[bytes, int]:
    """``data`` (a log's bytes from ``start``) up to its last line break, and where that ends: a live
    log's last line may be half written, and is shown once whole (or once it is a part long)."""
    cut = data.rfind(b"\n") + 1
    if cut == 0 and len(data) < LOG_VIEW_BYTES:
        return b"", start
    return (data[:cut], start + cut) if cut else (data, start + len(data))


def _lines_before(run: Run, path: str, offset: int) -> int | None:
    """How many lines a log has before byte ``offset`` (its line numbers start after them); None
    for a log too long to count (LINE_COUNT_MAX_BYTES)."""
    if offset > LINE_COUNT_MAX_BYTES:
        return None
    lines, at = 0, 0
    while at < offset:
        data, at_next = run.read_log(path, at, limit=min(LOG_VIEW_BYTES, offset - at))
        if not data:
            break
        lines += data.count(b"\n")
        at = at_next
    return lines


def _read_log_before(run: Run, path: str, end: int) -> tuple[bytes, int]:
    """Up to LOG_VIEW_BYTES of a log, ending at byte ``end``, and where they start: at the start of
    a line where there is one, so that no line (nor UTF-8 character) is shown cut in two. Read
    through the log's chunks (``Run.read_log``), never the whole log."""
    start = max(0, end - LOG_VIEW_BYTES)
    data, _ = run.read_log(path, start, limit=end - start) if end > start else (b"", start)
    newline = data.find(b"\n")
    if start > 0 and 0 <= newline < len(data) - 1:
        data, start = data[newline + 1 :], start + newline + 1
    return data, start


class LogReadForm(forms.Form):
    """What a piece of a log is asked for with: new output ``after`` a byte offset (the live
    tail), or the output ``before`` one ("Show earlier output")."""

    path = forms.CharField(max_length=1024)
    after = forms.IntegerField(required=False, min_value=0)
    before = forms.IntegerField(required=False, min_value=0)


@login_required
@require_GET
def run_log_tail(request: HtmxHttpRequest, workspace: str, run_id: str) -> HttpResponse:
    """With ``after``: new log output after that byte, then the poller for the next part (in the
    template) while there may be more; once the run has ended and all is read, no poller, so
    polling stops. With ``before``: the part of the log before that byte, under the control that
    loads the part before it."""
    access, run = _get_run(request, workspace, run_id)
    form = LogReadForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest("; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
    path, before = form.cleaned_data["path"], form.cleaned_data["before"]
    context: dict[str, Any] = {"access": access, "run": run, "selected": path}
    if before is not None:
        data, start = _read_log_before(run, path, before)
        context.update(
            lines=log_html(data, start, _stderr_of(run, path)), start=start, first_line=_lines_before(run, path, start)
        )
        return render(request, "studio/run_detail.html#log-earlier-part", context)
    after = form.cleaned_data["after"] or 0
    ended = run.is_ended  # read before the log: a run that ended has written all of it
    data, offset = run.read_log(path, after, limit=LOG_VIEW_BYTES)
    if not ended:
        data, offset = _whole_lines(data, after)
    size, stderr = run.logs.filter(path=path).values_list("size", "stderr_ranges").first() or (0, [])
    context.update(
        lines=log_html(data, after, stderr),
        offset=offset,
        more=not (ended and offset >= size),
    )
    return render(request, "studio/run_detail.html#log-tail", context)


@login_required
@require_GET
def run_live(request: HtmxHttpRequest, workspace: str, run_id: str) -> HttpResponse:
    """What changes on a run's page while the run is alive (``run_detail.html#run-live``): its
    status, duration and actions, and out of band the facts of the tab shown (``?tab=``). It polls
    itself every 2 s; the answer once the run has ended has no poller, so polling stops."""
    access, run = _get_run(request, workspace, run_id)
    tab = request.GET.get("tab", "")
    context = {"access": access, "run": run, "tab": tab if tab in TABS else "", "oob": True,
               "duration": tables.duration(run)}  # fmt: skip
    if context["tab"] == "overview":
        context["children"] = (
            run.children.listed(run.archived_at is not None).order_by("number").only("run_id", "display_name", "status")
        )
    elif context["tab"] == "outputs":
        context.update(files=_run_files(run), selected=request.GET.get("file", ""))
    return render(request, "studio/run_detail.html#run-live", context)


@login_required
@require_GET
def run_statuses(request: HtmxHttpRequest, workspace: str) -> HttpResponse:
    """The live cells (``cells``: status badges, durations) of the runs named in ``runs`` (the runs
    table's live ones), as out-of-band swaps: one poll for the whole table, not one per row. A
    duration is sent once its run has ended: until then the page ticks it. Once none of the runs is
    alive, 286 tells htmx to stop polling (the final cells still arrive with it)."""
    access = _get_workspace(request, workspace)
    wanted = list(dict.fromkeys(r for value in request.GET.getlist("runs") for r in value.split(",") if r))
    cells = set(request.GET.get("cells", "status").split(",")) & set(LIVE_CELLS)
    runs = list(
        Run.objects.visible_to(request.user)
        .filter(workspace=access.workspace, run_id__in=wanted[:STATUS_POLL_MAX_RUNS])
        .only("pk", "run_id", "status", "started_at", "ended_at")
    )
    context = {"access": access, "runs": runs, "cells": cells}
    content = render_to_string("studio/run_list.html#live-cells", context, request)
    if all(run.is_ended for run in runs):
        return HttpResponseStopPolling(content)
    return HttpResponse(content)


# The runs table shows 50 runs a page, and their expanded children; nobody's page asks for more.
STATUS_POLL_MAX_RUNS = 500


@login_required
@require_POST
def run_update(request: HtmxHttpRequest, workspace: str, run_id: str) -> HttpResponse:
    """Display name or description (whichever the form sends), through the model's own checks."""
    access, run = _get_run(request, workspace, run_id, write=True)
    field = "display_name" if "display_name" in request.POST else "description"
    return _change_run(request, access, run, lambda: run.update_info(**{field: request.POST.get(field, "")}))


@login_required
@require_POST
def run_description_preview(request: HttpRequest, workspace: str, run_id: str) -> HttpResponse:
    access, run = _get_run(request, workspace, run_id, write=True)
    context = {"run": run, "text": request.POST.get("description", "")}
    return render(request, "studio/run_detail.html#description-preview", context)


@login_required
@require_POST
def run_tags(request: HtmxHttpRequest, workspace: str, run_id: str) -> HttpResponse:
    """Add or change a tag (key, value), or remove one (remove=key)."""
    access, run = _get_run(request, workspace, run_id, write=True)
    if key := request.POST.get("remove"):
        return _change_run(request, access, run, lambda: run.remove_tags([key]))
    tag = {request.POST.get("key", ""): request.POST.get("value", "") or None}
    return _change_run(request, access, run, lambda: run.set_tags(tag))


@login_required
@require_POST
def run_cancel(request: HtmxHttpRequest, workspace: str, run_id: str) -> HttpResponse:
    access, run = _get_run(request, workspace, run_id, write=True)
    return _change_run(request, access, run, lambda: run.request_cancel(by=request.user))


def _change_run(
    request: HtmxHttpRequest, access: WorkspaceAccess, run: Run, change: Callable[[], object]
) -> HttpResponse:
    """Apply a change through the model; a refusal is shown to the user with its own status
    (400 for a bad value, 409 for a run that has ended)."""
    try:
        change()
    except StudioError as error:
        messages.error(request, error.message)
        return _back_to_run(request, access, run, status=error.status)
    return _back_to_run(request, access, run)


def _back_to_run(request: HtmxHttpRequest, access: WorkspaceAccess, run: Run, *, status: int = 200) -> HttpResponse:
    """After a change: htmx gets the overview tab re-rendered; a plain form post is redirected."""
    if request.htmx:
        _, run = _get_run(request, access.workspace.name, run.run_id)  # fresh, with tags and properties
        context = _tab_context(request, access, run, "overview")
        return render(request, "studio/run_detail.html#tab-overview", context, status=status)
    return redirect("run_detail", workspace=access.workspace.name, run_id=run.run_id)


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
