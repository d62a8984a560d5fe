"""Acting on many runs at once: add or remove tags, cancel, move to another experiment, archive,
restore, purge. The studio's bulk actions and the REST API's ``runs/bulk/`` are this one function.

The runs are named (``run_ids``) or found by a query of the run query language (``query``), always
within one workspace. Each action is one transaction: every run it can change is changed, or none
is. A run it cannot change (already ended, already in that experiment, not in the workspace) is
skipped with the reason, never changed. Each change is recorded on the run (``RunChange``, or the
status event of a cancel) with who made it.

A run goes with its child runs when it is moved, archived, restored or purged: a family is never
split between lists. Archiving keeps everything (``Run.archived_at``; the run leaves every list, see
``RunQuerySet.listed``) and only ended runs are archived; purging deletes archived runs for good,
with their files, and is for the workspace's Owners.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from runs.models import (
    Experiment,
    IllegalTransition,
    Membership,
    Run,
    RunChange,
    RunFile,
    RunTag,
    Snapshot,
    Workspace,
    validate_tags,
)
from runs.validation import InvalidValue, StudioError, validate_label

ACTIONS = ("tag", "untag", "cancel", "move", "archive", "restore", "purge")
# The actions a query finds archived runs for (the others find the runs the lists show).
ON_ARCHIVED = ("restore", "purge")
# What one action may change: a query that matches more is refused, to be narrowed first.
BULK_MAX_RUNS = 10_000


class Forbidden(StudioError):
    status = 403
    code = "Forbidden"


@dataclass
class BulkResult:
    changed: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"runId": ..., "reason": ...}

    def skip(self, run_id: str, reason: str) -> None:
        self.skipped.append({"runId": run_id, "reason": reason})


def act_on_runs(
    workspace: Workspace,
    user: Any,
    action: str,
    *,
    run_ids: Sequence[str] | None = None,
    query: str | None = None,
    tags: Mapping[str, str | None] | None = None,
    keys: Sequence[str] | None = None,
    experiment: str | None = None,
    include_children: bool = False,
) -> BulkResult:
    """Do ``action`` to the runs named or matched (``query``: top-level runs, as the runs list
    finds them, unless ``include_children``); raises ``InvalidValue`` (400) naming what is wrong
    with the request and ``Forbidden`` (403) for a role that may not change runs."""
    if action not in ACTIONS:
        raise InvalidValue(f"action: one of {', '.join(ACTIONS)}, not {action!r}", target="action")
    role = workspace.role_of(user)
    if role not in Membership.WRITE_ROLES:
        raise Forbidden(f"your role in workspace {workspace.name!r} lets you read runs, not change them")
    if action == "purge" and role != Membership.Role.OWNER:
        raise Forbidden(f"only the Owners of workspace {workspace.name!r} purge runs; archive them instead")
    runs, result = _selected(workspace, run_ids, query, include_children, archived=action in ON_ARCHIVED)
    with transaction.atomic():
        if action == "tag":
            _tag(runs, user, _tags(tags), result)
        elif action == "untag":
            _untag(runs, user, _keys(keys), result)
        elif action == "cancel":
            _cancel(runs, user, result)
        elif action == "move":
            _move(runs, user, _experiment(workspace, experiment), result)
        elif action == "archive":
            _archive(runs, user, result)
        elif action == "restore":
            _restore(runs, user, result)
        else:
            _purge(runs, result)
    return result


def selected_by_query(
    workspace: Workspace, query: str, include_children: bool = False, *, archived: bool = False
) -> Any:
    """The runs a query selects, as the runs list finds them (the archived ones if ``archived``)."""
    runs = Run.objects.filter(workspace=workspace).listed(archived)
    if not include_children:
        runs = runs.filter(parent__isnull=True)
    return runs.search(query).order_by("pk")


def _selected(
    workspace: Workspace,
    run_ids: Sequence[str] | None,
    query: str | None,
    include_children: bool,
    *,
    archived: bool,
) -> tuple[list[Run], BulkResult]:
    result = BulkResult()
    if (run_ids is None) == (query is None):
        raise InvalidValue(
            "runIds or q: name the runs, or give a query that finds them (one of the two)", target="runIds"
        )
    in_workspace = Run.objects.filter(workspace=workspace)
    if query is not None:
        if not isinstance(query, str):
            raise InvalidValue("q: a query of the run query language, as a string", target="q")
        found = selected_by_query(workspace, query, include_children, archived=archived)
        if (count := found.count()) > BULK_MAX_RUNS:
            raise InvalidValue(f"q matches {count:,} runs; one action changes at most {BULK_MAX_RUNS:,}", target="q")
        return list(found.select_related("experiment")), result
    if not isinstance(run_ids, list | tuple) or not all(isinstance(r, str) for r in run_ids):
        raise InvalidValue("runIds: a list of run ids", target="runIds")
    if len(run_ids) > BULK_MAX_RUNS:
        raise InvalidValue(f"runIds: at most {BULK_MAX_RUNS:,} runs at once", target="runIds")
    wanted = list(dict.fromkeys(run_ids))
    runs = in_workspace.filter(run_id__in=wanted).select_related("experiment").in_bulk(field_name="run_id")
    for run_id in wanted:
        if run_id not in runs:  # another workspace's runs are as unknown as ones never made
            result.skip(run_id, f"no run {run_id!r} in workspace {workspace.name!r}")
    return [runs[r] for r in wanted if r in runs], result


def _tags(tags: Any) -> dict[str, str | None]:
    if not tags:
        raise InvalidValue("tags: the tags to add, as an object of key: value", target="tags")
    validate_tags(tags)
    return dict(tags)


def _keys(keys: Any) -> list[str]:
    if not keys or not isinstance(keys, list | tuple) or not all(isinstance(k, str) for k in keys):
        raise InvalidValue("keys: the tag keys to remove, as a list", target="keys")
    return [validate_label(key, "keys") for key in keys]


def _experiment(workspace: Workspace, name: Any) -> Experiment:
    if not isinstance(name, str) or not name:
        raise InvalidValue("experiment: the name of the experiment to move the runs to", target="experiment")
    found = Experiment.objects.filter(workspace=workspace, name=name).first()
    if found is None:
        raise InvalidValue(f"experiment: workspace {workspace.name!r} has no experiment {name!r}", target="experiment")
    return found


def _tag(runs: list[Run], user: Any, tags: dict[str, str | None], result: BulkResult) -> None:
    now = timezone.now()
    for run in runs:
        run.set_tags(tags)
    RunChange.objects.bulk_create(
        [RunChange(run=run, action=RunChange.Action.TAG, details={"tags": tags}, at=now, by=user) for run in runs]
    )
    result.changed += len(runs)


def _untag(runs: list[Run], user: Any, keys: list[str], result: BulkResult) -> None:
    now = timezone.now()
    had = set(RunTag.objects.filter(run__in=runs, key__in=keys).values_list("run_id", flat=True))
    changed = []
    for run in runs:
        if run.pk not in had:
            result.skip(run.run_id, f"has none of the tags {', '.join(keys)}")
            continue
        run.remove_tags(keys)
        changed.append(RunChange(run=run, action=RunChange.Action.UNTAG, details={"keys": keys}, at=now, by=user))
    RunChange.objects.bulk_create(changed)
    result.changed += len(changed)


def _cancel(runs: list[Run], user: Any, result: BulkResult) -> None:
    for run in runs:
        try:
            run.request_cancel(by=user)
        except IllegalTransition:
            result.skip(run.run_id, f"cannot be canceled: it is {run.status}")
            continue
        result.changed += 1


def _move(runs: list[Run], user: Any, target: Experiment, result: BulkResult) -> None:
    """Each run and its child runs (a run's children are in its experiment) to ``target``,
    renumbered after its runs, as new ones would be."""
    moving = []
    for run in runs:
        if run.experiment_id == target.pk:
            result.skip(run.run_id, f"is already in experiment {target.name!r}")
        else:
            moving.append(run)
    family = _with_descendants(moving)
    now = timezone.now()
    changes = [
        RunChange(
            run=run,
            action=RunChange.Action.MOVE,
            details={"from": run.experiment.name, "to": target.name},
            at=now,
            by=user,
        )  # fmt: skip
        for run in family
    ]
    for run, number in zip(family, target.take_run_numbers(len(family)), strict=True):
        Run.objects.filter(pk=run.pk).update(experiment=target, number=number)
    RunChange.objects.bulk_create(changes)
    result.changed += len(moving)


def _with_descendants(runs: list[Run]) -> list[Run]:
    found = {run.pk: run for run in runs}
    level = list(found)
    while level:
        children = Run.objects.filter(parent_id__in=level).exclude(pk__in=found).select_related("experiment")
        level = []
        for child in children:
            found[child.pk] = child
            level.append(child.pk)
    return list(found.values())


def _archive(runs: list[Run], user: Any, result: BulkResult) -> None:
    """Each ended run, with its child runs, out of every list (kept, and restored on request)."""
    chosen = []
    for run in runs:
        if run.archived_at is not None:
            result.skip(run.run_id, "is already archived")
        elif not run.is_ended:
            result.skip(run.run_id, f"is {run.status}: cancel it or let it end, then archive it")
        else:
            chosen.append(run)
    # A family leaves the lists together or not at all: a run with a child still going is skipped.
    family = {run.pk: run for run in _with_descendants(chosen)}
    chosen_pks = {run.pk for run in chosen}
    blocked = set()
    for run in family.values():
        if not run.is_ended:
            blocked.add(_top(run, family, chosen_pks).pk)
    for run in chosen:
        if run.pk in blocked:
            result.skip(run.run_id, "has a child run that has not ended: cancel it or let it end, then archive it")
    chosen = [run for run in chosen if run.pk not in blocked]
    family = {pk: run for pk, run in family.items() if _top(run, family, chosen_pks).pk not in blocked}
    _set_archived(list(family.values()), timezone.now(), user, RunChange.Action.ARCHIVE)
    result.changed += len(chosen)


def _top(run: Run, family: dict[int, Run], tops: set[int]) -> Run:
    """The run of ``tops`` that ``run`` descends from (or is)."""
    while run.pk not in tops:
        run = family[run.parent_id]
    return run


def _archived_only(runs: list[Run], result: BulkResult, reason: str) -> list[Run]:
    """The archived ones of ``runs``; each other one is skipped for ``reason``."""
    for run in runs:
        if run.archived_at is None:
            result.skip(run.run_id, reason)
    return [run for run in runs if run.archived_at is not None]


def _restore(runs: list[Run], user: Any, result: BulkResult) -> None:
    chosen = _archived_only(runs, result, "is not archived")
    _set_archived(_with_descendants(chosen), None, user, RunChange.Action.RESTORE)
    result.changed += len(chosen)


def _set_archived(family: list[Run], at: Any, user: Any, action: str) -> None:
    now = timezone.now()
    Run.objects.filter(pk__in=[run.pk for run in family]).update(archived_at=at)
    RunChange.objects.bulk_create([RunChange(run=run, action=action, at=now, by=user) for run in family])


def _purge(runs: list[Run], result: BulkResult) -> None:
    """Each archived run, with its child runs and every file they stored, deleted for good. The
    files go once the transaction has committed: a purge that fails deletes nothing."""
    chosen = _archived_only(runs, result, "is not archived: archive it first, then purge it")
    family = [run.pk for run in _with_descendants(chosen)]
    stored = [
        *RunFile.objects.filter(run__in=family).values_list("storage_name", flat=True),
        *Snapshot.objects.filter(run__in=family).values_list("storage_name", flat=True),
    ]
    Run.objects.filter(pk__in=family).delete()
    transaction.on_commit(lambda: _delete_stored(stored))
    result.changed += len(chosen)


def _delete_stored(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)
