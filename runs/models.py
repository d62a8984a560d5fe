"""Run history: workspaces and their members, experiments, runs, and what runs record."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import re
import secrets
import stat
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any, NamedTuple

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, OuterRef, Q, Subquery, Value
from django.utils import timezone

from runs import webhooks, wire
from runs.validation import (
    CHILDREN_MAX_BATCH,
    DESCRIPTION_MAX_LENGTH,
    FILE_PATH_MAX_LENGTH,
    LOCAL_TARGET,
    LOG_CHUNK_MAX_BYTES,
    METRIC_BATCH_MAX_POINTS,
    NAME_MAX_LENGTH,
    TAG_VALUE_MAX_LENGTH,
    Conflict,
    IllegalTransition,
    InvalidValue,
    MetricKind,
    PointIn,
    PropertyConflict,
    RunEnded,
    StudioError,
    normalize_file_path,
    validate_identifier,
    validate_label,
    validate_text,
)

__all__ = ["Conflict", "IllegalTransition", "InvalidValue", "PropertyConflict", "RunEnded", "StudioError"]

# --- Workspaces, members and API tokens -------------------------------------------------------------------


class WorkspaceQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> WorkspaceQuerySet:
        """The one visibility rule: a user sees the workspaces they are a member of."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user)

    def with_role_of(self, user: Any) -> WorkspaceQuerySet:
        """Each workspace with ``role``, the user's role in it (None for a stranger), read in the same
        query: a write checks it on every request."""
        return self.annotate(role=_role_of(user, "pk"))


class Workspace(models.Model):
    """A team's space: its experiments and runs, and who may read or change them."""

    name = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = WorkspaceQuerySet.as_manager()

    def __str__(self) -> str:
        return self.name

    # Refused as a taken name is, so that a refusal never tells whether a workspace of that name exists.
    RESERVED_NAMES = frozenset({"accounts", "admin", "api", "new", "settings", "static", "studio"})

    @classmethod
    def create_for(cls, name: Any, owner: Any) -> Workspace:
        """A new workspace owned by ``owner``. Names are unique across the studio; one that is taken by
        a workspace ``owner`` cannot see gets the same answer as a reserved one, never "exists"."""
        name = validate_identifier(name, "name", max_length=64)
        workspace, created = (None, False) if name in cls.RESERVED_NAMES else cls.objects.get_or_create(name=name)
        if not created:
            if workspace is not None and workspace.role_of(owner) is not None:
                raise InvalidValue(f"you already have a workspace named {name!r}", target="name")
            raise InvalidValue(f"the workspace name {name!r} is not available; choose another", target="name")
        workspace.add_member(owner, Membership.Role.OWNER)
        return workspace

    def role_of(self, user: Any) -> str | None:
        if not user.is_authenticated:
            return None
        return self.memberships.filter(user=user).values_list("role", flat=True).first()

    def can_write(self, user: Any) -> bool:
        return self.role_of(user) in Membership.WRITE_ROLES

    def add_member(self, user: Any, role: str) -> Membership:
        """Make ``user`` a member with ``role``; an existing member's role changes (Membership.change_role)."""
        if role not in Membership.Role.values:
            raise InvalidValue(f"role must be one of {', '.join(Membership.Role.values)}", target="role")
        if membership := Membership.objects.filter(workspace=self, user=user).first():
            membership.change_role(role)
            return membership
        return Membership.objects.create(workspace=self, user=user, role=role)


def _role_of(user: Any, workspace: str) -> Subquery:
    """The user's role in the workspace the outer query's ``workspace`` field names, as a subquery."""
    return Subquery(Membership.objects.filter(workspace=OuterRef(workspace), user=user).values("role")[:1])


class Membership(models.Model):
    """A user's role in a workspace."""

    class Role(models.TextChoices):
        READER = "Reader"  # reads everything in the workspace
        CONTRIBUTOR = "Contributor"  # also writes runs, tags, descriptions, cancels
        OWNER = "Owner"  # also manages members

    WRITE_ROLES = (Role.CONTRIBUTOR, Role.OWNER)

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.READER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="runs_membership_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    def change_role(self, role: str) -> None:
        """Give the member another role; a workspace keeps at least one Owner."""
        if role not in self.Role.values:
            raise InvalidValue(f"role must be one of {', '.join(self.Role.values)}", target="role")
        with transaction.atomic():
            if role != self.Role.OWNER:
                self._refuse_if_last_owner()
            self.role = role
            self.save(update_fields=["role"])

    def leave(self) -> None:
        """Remove the member from the workspace; a workspace keeps at least one Owner."""
        with transaction.atomic():
            self._refuse_if_last_owner()
            self.delete()

    def _refuse_if_last_owner(self) -> None:
        """In a transaction: the Owners' rows stay locked, so two Owners stepping down at the same
        moment cannot both succeed (SQLite's BEGIN IMMEDIATE serializes anyway)."""
        if self.role != self.Role.OWNER:
            return
        owners = Membership.objects.select_for_update().filter(workspace_id=self.workspace_id, role=self.Role.OWNER)
        if list(owners.values_list("pk", flat=True)) == [self.pk]:
            raise InvalidValue("a workspace keeps at least one Owner: make someone else an Owner first", target="role")


def _hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiTokenManager(models.Manager):
    def create_token(self, user: Any, name: str) -> tuple[ApiToken, str]:
        """Make a token; the key is returned once and only its hash is stored."""
        key = "rs_" + secrets.token_urlsafe(32)
        token = self.create(user=user, name=name, prefix=key[:10], key_hash=_hash_token(key))
        return token, key

    def authenticate(self, key: str) -> ApiToken | None:
        token = self.select_related("user").filter(key_hash=_hash_token(key)).first()
        if token is None or not token.user.is_active:
            return None
        # Note use at most once a minute, so a busy SDK does not turn every read into a write.
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token


class ApiToken(models.Model):
    """A secret the SDK and CLI send as ``Authorization: Bearer <key>``."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)  # shown in lists so a user can tell tokens apart
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenManager()

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


# --- Experiments -------------------------------------------------------------------------------------------


@dataclass
class RunSpec:
    """What a caller asks for when starting a run; validated by ``Experiment.create_runs``."""

    run_id: str | None = None
    display_name: str = ""
    description: str = ""
    tags: Mapping[str, str | None] | None = None
    properties: Mapping[str, str] | None = None
    type: str = "interactive"
    target: str = LOCAL_TARGET
    status: str = "Running"
    script: str = ""
    arguments: list[str] | None = None
    cancel_grace_seconds: int = 10


class ExperimentQuerySet(models.QuerySet):
    def with_role_of(self, user: Any) -> ExperimentQuerySet:
        """Each experiment with ``role``, the user's role in its workspace, read in the same query."""
        return self.annotate(role=_role_of(user, "workspace"))

    def with_run_summary(self) -> list[Experiment]:
        """The experiments, each with run_count, last_run_at, last_activity_at and status_counts
        ({status: runs}), in two queries."""
        experiments = list(
            self.annotate(
                run_count=models.Count("runs", filter=Q(runs__archived_at__isnull=True)),
                last_run_at=models.Max("runs__created_at", filter=Q(runs__archived_at__isnull=True)),
                last_activity_at=models.Max("runs__ended_at", filter=Q(runs__archived_at__isnull=True)),
            )
        )
        counts = (
            Run.objects.filter(experiment__in=experiments)
            .listed()
            .values_list("experiment_id", "status")
            .annotate(n=models.Count("pk"))
        )
        by_experiment: dict[int, dict[str, int]] = {}
        for experiment_id, status, n in counts:
            by_experiment.setdefault(experiment_id, {})[status] = n
        for experiment in experiments:
            experiment.status_counts = dict(sorted(by_experiment.get(experiment.pk, {}).items()))
        return experiments


class Experiment(models.Model):
    """A named group of runs in a workspace."""

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    created_at = models.DateTimeField(default=timezone.now)
    # Run numbers are handed out by bumping this counter, so concurrent starts never share a number.
    last_run_number = models.PositiveIntegerField(default=0)

    objects = ExperimentQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="runs_experiment_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def ensure(cls, workspace: Workspace, name: str) -> tuple[Experiment, bool]:
        validate_identifier(name, "name")
        # Read first, outside a transaction: on SQLite every transaction takes the write lock.
        if experiment := cls.objects.filter(workspace=workspace, name=name).first():
            return experiment, False
        try:
            with transaction.atomic():
                return cls.objects.get_or_create(workspace=workspace, name=name)
        except IntegrityError:  # created by a concurrent request between our get and create
            return cls.objects.get(workspace=workspace, name=name), False

    def create_runs(
        self, specs: list[RunSpec], *, by: Any, parent: Run | None = None, request_key: str | None = None
    ) -> list[Run]:
        """Create runs (one, or a batch of children) in one transaction, numbered in order.

        ``request_key`` (the request's Idempotency-Key) makes it happen once: the same request sent
        again, because its answer was lost, gets the runs the first one made. It is found by the
        insert, which the unique key refuses, rather than looked up before every start.

        The runs made come in number order with their ``extras`` (their tags and properties as written,
        no logs yet), so that an answer built from them reads nothing more.
        """
        if not specs:
            return []
        keys = [None] * len(specs) if request_key is None else [f"{request_key}.{i}" for i in range(len(specs))]
        if len(specs) > CHILDREN_MAX_BATCH:
            raise InvalidValue(f"at most {CHILDREN_MAX_BATCH} runs can be created at once", target="count")
        for spec in specs:
            if spec.run_id is not None:
                validate_identifier(spec.run_id, "runId")
            validate_label(spec.display_name, "displayName", allow_empty=True)
            validate_text(spec.description, "description", max_length=DESCRIPTION_MAX_LENGTH)
            validate_label(spec.target, "target")
            if spec.type not in Run.Type.values:
                raise InvalidValue(f"type must be one of {', '.join(Run.Type.values)}", target="type")
            if spec.type == Run.Type.SCRIPT and not spec.script:
                raise InvalidValue("a script run needs its script", target="script")
            _validate_script(spec)  # an interactive run's are stored too (PostgreSQL refused bad ones: a 500)
            validate_tags(spec.tags or {})
            _validate_properties(spec.properties or {})
        self._check_targets({spec.target for spec in specs})
        run_ids = [spec.run_id or Run.new_id(self.name) for spec in specs]
        if len(set(run_ids)) != len(run_ids):
            raise InvalidValue("run ids in one request must differ", target="runId")
        # Only ids the caller chose are looked up: a generated one is new (a clash is refused by the insert).
        chosen = [spec.run_id for spec in specs if spec.run_id is not None]
        if chosen and (taken := list(Run.objects.filter(run_id__in=chosen).values_list("run_id", flat=True)[:1])):
            # Taken by this very request, sent again (its answer was lost)?
            if request_key is not None and (made := self._made_by(keys, by=by, parent=parent)):
                return made
            raise Conflict(f"a run with id {taken[0]!r} already exists", target="runId")
        try:
            return self._insert_runs(specs, run_ids, keys, by=by, parent=parent)
        except IntegrityError as error:  # one of the ids is taken, or this request was sent again
            # Out of the transaction, so the experiment's run numbers it took are given back.
            if request_key is not None and (made := self._made_by(keys, by=by, parent=parent)):
                return made
            raise Conflict("a run with one of these ids already exists", target="runId") from error

    def take_run_numbers(self, count: int) -> range:
        """The next ``count`` run numbers of the experiment, taken in the caller's transaction: the
        counter's row stays locked until it ends, so no two transactions take the same numbers.

        A compare-and-swap on the counter as this experiment was read, so that the usual start (one
        writer) needs no second query to learn the number; when another start took numbers since,
        the counter is bumped and read again."""
        held = self.last_run_number
        if Experiment.objects.filter(pk=self.pk, last_run_number=held).update(last_run_number=held + count) != 1:
            Experiment.objects.filter(pk=self.pk).update(last_run_number=F("last_run_number") + count)
            held = Experiment.objects.values_list("last_run_number", flat=True).get(pk=self.pk) - count
        self.last_run_number = held + count
        return range(held + 1, held + count + 1)

    def _insert_runs(
        self, specs: list[RunSpec], run_ids: list[str], keys: list[str | None], *, by: Any, parent: Run | None
    ) -> list[Run]:
        now = timezone.now()
        with transaction.atomic():
            last = self.take_run_numbers(len(specs))[-1]
            runs = [
                Run(
                    run_id=run_id,
                    workspace_id=self.workspace_id,
                    experiment=self,
                    number=last - len(specs) + 1 + index,
                    parent=parent,
                    display_name=spec.display_name,
                    description=spec.description,
                    search_text=search_text_of(run_id, spec.display_name, spec.description, spec.tags or {}),
                    status=spec.status,
                    type=spec.type,
                    target=spec.target,
                    submitted_by=by,
                    created_at=now,
                    started_at=now if spec.status == Run.Status.RUNNING else None,
                    last_heartbeat_at=now,
                    script=spec.script,
                    arguments=list(spec.arguments or []),
                    cancel_grace_seconds=spec.cancel_grace_seconds,
                    request_key=key,
                )
                for index, (run_id, spec, key) in enumerate(zip(run_ids, specs, keys, strict=True))
            ]
            Run.objects.bulk_create(runs)
            RunTag.objects.bulk_create(
                RunTag(run=run, key=key, value=value, value_hash=_value_hash(value))
                for run, spec in zip(runs, specs, strict=True)
                for key, value in (spec.tags or {}).items()
            )
            RunProperty.objects.bulk_create(
                RunProperty(run=run, key=key, value=value, value_hash=_value_hash(value))
                for run, spec in zip(runs, specs, strict=True)
                for key, value in (spec.properties or {}).items()
            )
            events = RunStatusEvent.objects.bulk_create(
                RunStatusEvent(run=run, from_status=Run.Status.NOT_STARTED, to_status=run.status, at=now, by=by)
                for run in runs
                if run.status != Run.Status.NOT_STARTED  # a submitted script run: its first change is Queued
            )
            if events and Delivery.write_for(events, self.pk, self.workspace_id):
                transaction.on_commit(_wake_sender)
        for run, spec in zip(runs, specs, strict=True):
            run.extras = ListedExtras(tags=dict(spec.tags or {}), properties=dict(spec.properties or {}))
        return runs

    def _made_by(self, keys: list[str | None], *, by: Any, parent: Run | None) -> list[Run]:
        """The runs an earlier request with these keys made (none if it made none). A key that
        made other runs (elsewhere, or for someone else) is refused rather than answered with them."""
        made = list(
            Run.objects.for_listing().filter(workspace_id=self.workspace_id, request_key__in=keys).order_by("number")
        )
        expected = (self.pk, parent.pk if parent else None, getattr(by, "pk", None))
        if made and (
            len(made) != len(keys) or any((r.experiment_id, r.parent_id, r.submitted_by_id) != expected for r in made)
        ):
            raise Conflict("this Idempotency-Key was used for another request", target="Idempotency-Key")
        # With their extras, as the runs made are answered (in one query, not one for each run).
        extras = ListedExtras.for_runs([run.pk for run in made]) if made else {}
        for run in made:
            run.extras = extras[run.pk]
        return made

    def _check_targets(self, targets: set[str]) -> None:
        if targets <= {LOCAL_TARGET}:
            return  # built in: nothing to look up
        known = {
            LOCAL_TARGET,
            *ComputeTarget.objects.filter(workspace_id=self.workspace_id).values_list("name", flat=True),
        }
        if unknown := sorted(targets - known):
            raise InvalidValue(
                f"unknown compute target {unknown[0]!r}; this workspace has {', '.join(sorted(known))}",
                target="target",
            )


def _validate_script(spec: RunSpec) -> None:
    if spec.script:
        spec.script = normalize_file_path(spec.script)
    arguments = spec.arguments or []
    if not isinstance(arguments, list) or not all(isinstance(a, str) for a in arguments):
        raise InvalidValue("arguments must be a list of strings", target="arguments")
    for argument in arguments:
        validate_text(argument, "arguments", max_length=TAG_VALUE_MAX_LENGTH)
    grace = spec.cancel_grace_seconds
    if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= 3600:
        raise InvalidValue(
            "cancelGraceSeconds must be a whole number of seconds from 0 to 3600", target="cancelGraceSeconds"
        )


# --- Runs ---------------------------------------------------------------------------------------------------


class RunQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> RunQuerySet:
        """Runs in the workspaces the user is a member of (see ``WorkspaceQuerySet.visible_to``)."""
        return self.filter(workspace__in=Workspace.objects.visible_to(user))

    def with_role_of(self, user: Any) -> RunQuerySet:
        """Each run with ``role``, the user's role in its workspace, read in the same query."""
        return self.annotate(role=_role_of(user, "workspace"))

    def listed(self, archived: bool = False) -> RunQuerySet:
        """The runs a list, a search or a count shows: archived runs leave all of them, and are the
        only ones shown when asked for (``archived=true`` in the API, the studio's Archived toggle).
        The one rule: every list of runs goes through it. A run opened by its id is found either way."""
        return self.filter(archived_at__isnull=not archived)

    def search(self, text: str, *, correlated: bool = False) -> RunQuerySet:
        """Filter with the query language (``runs/query.py``): the same for the UI, API and SDK.
        ``correlated``: test each run of this queryset (a few, picked out already), rather than
        start from the runs that match (``query.to_q``)."""
        from runs import query

        return self.filter(query.to_q(query.parse(text), correlated=correlated)) if text.strip() else self

    def sorted_by(self, sort: str) -> RunQuerySet:
        from runs import query

        return query.apply_sort(self, sort)

    def child_counts(self, parents: Iterable[Run], archived: bool = False) -> dict[int, int]:
        """How many child runs each of ``parents`` has (archived ones if ``archived``), by primary
        key, in one query."""
        children = self.filter(parent__in=list(parents)).listed(archived)
        counts = children.values_list("parent_id").annotate(n=models.Count("pk"))
        return dict(counts)

    def for_listing(self) -> RunQuerySet:
        """Runs with the rows a list shows beside their own (experiment, submitter, parent); their
        tags, properties and log files come with ``in_list``, or one run's with ``ListedExtras.of``."""
        return self.select_related("experiment", "submitted_by", "parent")

    def in_list(self, keys: list[int]) -> list[Run]:
        """The runs ``keys`` (those of them in this queryset), in that order, with everything a list
        of runs shows, ``extras`` included: five queries whatever the number of runs."""
        runs = self.for_listing().in_bulk(keys)
        extras = ListedExtras.for_runs(list(runs))
        for pk, run in runs.items():
            run.extras = extras[pk]
        return [runs[pk] for pk in keys if pk in runs]


@dataclass
class ListedExtras:
    """What a run's details show beyond its row: its tags and properties, and its log files (the
    files under logs/ and the logs it streams live), by path. Read as plain values, for many runs in
    one query: a model object for each tag, property and file cost more than the rest of a page of
    100 runs."""

    tags: dict[str, str | None] = dataclasses.field(default_factory=dict)
    properties: dict[str, str] = dataclasses.field(default_factory=dict)
    log_paths: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def for_runs(cls, keys: list[int]) -> dict[int, ListedExtras]:
        """The extras of the runs ``keys``, in one query (a UNION ALL of the four tables): a run's
        details answer every write, so each query here is one more per write."""
        tag, prop, log = Value(0), Value(1), Value(2)
        no_value = Value(None, output_field=models.TextField())
        rows = (
            RunTag.objects.filter(run_id__in=keys)
            .order_by()  # a UNION's parts take no ORDER BY (RunFile and RunLog have a default one)
            .values_list("run_id", tag, "key", "value", "pk")
            .union(
                RunProperty.objects.filter(run_id__in=keys)
                .order_by()
                .values_list("run_id", prop, "key", "value", "pk"),
                RunFile.objects.filter(run_id__in=keys, path__startswith="logs/")
                .order_by()
                .values_list("run_id", log, "path", no_value, "pk"),
                RunLog.objects.filter(run_id__in=keys).order_by().values_list("run_id", log, "path", no_value, "pk"),
                all=True,
            )
        )
        extras = {pk: cls() for pk in keys}
        paths: dict[int, set[str]] = {pk: set() for pk in keys}
        # Tags and properties in the order they were written (as a run's details always listed them).
        for run, kind, key, value, _ in sorted(rows, key=lambda row: (row[1], row[4])):
            if kind == 0:
                extras[run].tags[key] = value
            elif kind == 1:
                extras[run].properties[key] = value
            else:
                paths[run].add(key)
        for pk, found in paths.items():
            extras[pk].log_paths = sorted(found)
        return extras

    @classmethod
    def of(cls, run: Run) -> ListedExtras:
        """``run.extras``, read now if the run came without them."""
        if getattr(run, "extras", None) is None:
            run.extras = cls.for_runs([run.pk])[run.pk]
        return run.extras


class Run(models.Model):
    """One execution of a training or evaluation script, with what it logged."""

    class Status(models.TextChoices):  # the SDK's get_status() returns these strings
        NOT_STARTED = "NotStarted"
        QUEUED = "Queued"
        STARTING = "Starting"
        PREPARING = "Preparing"
        RUNNING = "Running"
        FINALIZING = "Finalizing"
        CANCEL_REQUESTED = "CancelRequested"
        NOT_RESPONDING = "NotResponding"
        COMPLETED = "Completed"
        FAILED = "Failed"
        CANCELED = "Canceled"

    class Type(models.TextChoices):
        INTERACTIVE = "interactive"  # started from Python with start_logging()
        SCRIPT = "script"  # submitted, and executed by a runner

    TERMINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELED)
    # Something is executing the run and sends heartbeats; silence here means trouble.
    ALIVE = (Status.STARTING, Status.PREPARING, Status.RUNNING, Status.FINALIZING)

    _S = Status
    # The one state machine. Terminal statuses have no way out.
    TRANSITIONS: dict[str, frozenset[str]] = {
        _S.NOT_STARTED: frozenset({_S.QUEUED, _S.STARTING, _S.PREPARING, _S.RUNNING, _S.FAILED, _S.CANCELED}),
        _S.QUEUED: frozenset({_S.STARTING, _S.PREPARING, _S.RUNNING, _S.CANCEL_REQUESTED, _S.FAILED, _S.CANCELED}),
        _S.STARTING: frozenset(
            {_S.PREPARING, _S.RUNNING, _S.CANCEL_REQUESTED, _S.NOT_RESPONDING, _S.FAILED, _S.CANCELED}
        ),
        _S.PREPARING: frozenset({_S.RUNNING, _S.CANCEL_REQUESTED, _S.NOT_RESPONDING, _S.FAILED, _S.CANCELED}),
        _S.RUNNING: frozenset(
            {_S.FINALIZING, _S.CANCEL_REQUESTED, _S.NOT_RESPONDING, _S.COMPLETED, _S.FAILED, _S.CANCELED}
        ),
        _S.FINALIZING: frozenset({_S.CANCEL_REQUESTED, _S.NOT_RESPONDING, _S.COMPLETED, _S.FAILED, _S.CANCELED}),
        # The runner stops the process and ends the run; a script that finished first may still end it.
        _S.CANCEL_REQUESTED: frozenset({_S.CANCELED, _S.COMPLETED, _S.FAILED}),
        # Heartbeats resumed, or the run ended while we could not hear it.
        _S.NOT_RESPONDING: frozenset(
            {_S.RUNNING, _S.FINALIZING, _S.CANCEL_REQUESTED, _S.COMPLETED, _S.FAILED, _S.CANCELED}
        ),
    }
    del _S

    run_id = models.CharField(max_length=NAME_MAX_LENGTH, unique=True)
    # Denormalized from the experiment: the workspace's run list is filtered and sorted by it.
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="runs")
    experiment = models.ForeignKey(Experiment, models.CASCADE, related_name="runs")
    number = models.PositiveIntegerField()
    parent = models.ForeignKey("self", models.CASCADE, null=True, blank=True, related_name="children")
    display_name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True)
    description = models.TextField(blank=True)  # Markdown
    # What free-text search reads (runs/query.py): the run's id, display name, description and tags,
    # case-folded, in one column, so a search is one LIKE per run instead of one per field plus a
    # subquery on the tags. Kept current by create_runs, update_info, set_tags and remove_tags.
    search_text = models.TextField(blank=True, default="", editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NOT_STARTED)
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.INTERACTIVE)
    target = models.CharField(max_length=NAME_MAX_LENGTH, default="local")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=NAME_MAX_LENGTH, blank=True)
    error_message = models.TextField(blank=True)
    error_details = models.TextField(blank=True)  # a traceback, the tail of stderr
    # What a script run executes: its snapshot holds the script.
    script = models.CharField(max_length=FILE_PATH_MAX_LENGTH, blank=True)
    arguments = models.JSONField(default=list, blank=True)
    # After a cancel, how long the runner waits between SIGTERM and SIGKILL.
    cancel_grace_seconds = models.PositiveIntegerField(default=10)
    # The Idempotency-Key of the request that made the run, with the run's place in it ("<key>.0"): the
    # same request sent again (its answer was lost) gets this run back instead of making another.
    request_key = models.CharField(max_length=80, null=True, blank=True, editable=False)
    # Archived runs leave every list, search and count (RunQuerySet.listed) until restored; only
    # archived runs can be purged. Who archived a run is in its RunChange rows.
    archived_at = models.DateTimeField(null=True, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "number"], name="runs_run_unique_number"),
            # Partial: only keyed runs are in the index (and SQLite adds it without copying the table).
            models.UniqueConstraint(
                fields=["workspace", "request_key"],
                condition=Q(request_key__isnull=False),
                name="runs_run_unique_request_key",
            ),
        ]
        indexes = [
            # Partial, as every list reads runs (RunQuerySet.listed): archived runs are not in them.
            models.Index(
                fields=["workspace", "-created_at"],
                name="runs_run_listed_created",
                condition=Q(archived_at__isnull=True),
            ),
            # Counting a workspace's top-level runs (the All runs page) reads only this index.
            models.Index(
                fields=["workspace", "parent", "-created_at"],
                name="runs_run_listed_parent_created",
                condition=Q(archived_at__isnull=True),
            ),
            models.Index(
                fields=["status", "last_heartbeat_at"],
                name="runs_run_active",
                condition=~Q(status__in=["Completed", "Failed", "Canceled"]),
            ),
        ]

    def __str__(self) -> str:
        return self.run_id

    @staticmethod
    def new_id(experiment_name: str) -> str:
        """``<experiment>_<unix time>_<8 hex>``, kept within the id length limit."""
        return f"{experiment_name[:230]}_{int(time.time())}_{secrets.token_hex(4)}"

    @property
    def is_ended(self) -> bool:
        return self.status in self.TERMINAL

    # -- status --

    def duration(self) -> timedelta | None:
        """How long it has run: until it ended, or until now while it goes on."""
        if self.started_at is None:
            return None
        return max(timedelta(0), (self.ended_at or timezone.now()) - self.started_at)

    def transition(
        self,
        to: str,
        *,
        by: Any = None,
        error_code: str = "",
        error_message: str = "",
        error_details: str = "",
        only_if: Q | None = None,
        request_key: str | None = None,
    ) -> bool:
        """Move to status ``to``: the one place a run's status changes.

        A compare-and-swap on the current status, so of two concurrent writers only one wins; the
        loser re-reads the status and is refused if the move is no longer legal. The change and its
        event are written in one transaction, so the event log never misses or invents a change.
        ``only_if`` makes the move conditional (the monitor's "still silent"): it is made only if the
        run is still in the status it was read in and the condition holds, and otherwise nothing
        happens and it returns False. Several server processes sweep the same runs, so losing that
        race is expected, not an error. Returns True when the status changed. ``request_key`` (the
        Idempotency-Key of the request asking for the change) is kept with the change's event.

        The run is left as written (its status, times and error), so a caller answers from it without
        reading it again: every value is set here, and the first start time is part of the swap.
        """
        if to not in self.Status.values:
            raise InvalidValue(f"unknown status {to!r}", target="status")
        for _attempt in range(10):
            current = self.status
            if to not in self.TRANSITIONS.get(current, frozenset()):
                raise IllegalTransition(
                    f"run {self.run_id} is {current}"
                    + (", which is final" if current in self.TERMINAL else "")
                    + f"; it cannot become {to}",
                    target="status",
                )
            now = timezone.now()
            changes: dict[str, Any] = {"status": to}
            held = Q(pk=self.pk, status=current)
            if to == self.Status.RUNNING and self.started_at is None:
                changes["started_at"] = now
                held &= Q(started_at=None)  # the first start: a run started meanwhile keeps its time
            if to in self.TERMINAL:
                changes["ended_at"] = now
            elif to in self.ALIVE and current not in self.ALIVE:
                changes["last_heartbeat_at"] = now  # starting to execute is a sign of life
            if error_code or error_message or error_details:
                changes.update(error_code=error_code, error_message=error_message, error_details=error_details)
            with transaction.atomic():
                changed = Run.objects.filter(held, only_if or Q()).update(**changes) == 1
                if changed:
                    event = RunStatusEvent.objects.create(
                        run=self, from_status=current, to_status=to, at=now, by=by, request_key=request_key
                    )
                    if Delivery.write_for([event], self.experiment_id, self.workspace_id):
                        transaction.on_commit(_wake_sender)  # the outbox: sent once this commits
            if changed:
                for field, value in changes.items():
                    setattr(self, field, value)
                return True
            # Somebody else changed it first, or only_if failed: read what they wrote.
            self.refresh_from_db(fields=_TRANSITION_FIELDS)
            if only_if is not None:
                return False
        raise Conflict(f"the status of run {self.run_id} keeps changing; try again", target="status")

    def heartbeat(self) -> str:
        """Note that whatever executes the run is alive; a NotResponding run is Running again.
        Returns the status, so a runner learns of a cancel request in the same call."""
        now = timezone.now()
        Run.objects.filter(pk=self.pk).update(last_heartbeat_at=now)
        self.last_heartbeat_at = now
        self.refresh_from_db(fields=["status"])
        if self.status == self.Status.NOT_RESPONDING:
            with contextlib.suppress(IllegalTransition):  # it ended meanwhile
                self.transition(self.Status.RUNNING)
        return self.status

    def request_status(
        self, to: str, *, by: Any = None, error: Mapping[str, str] | None = None, request_key: str | None = None
    ) -> None:
        """A status change a client asks for (POST .../status/): Failed with ``error`` (code,
        message, details), Queued (a submitted script run), or any other legal move. Made at most once
        per ``request_key``, see ``_once``."""

        def change() -> None:
            if to == self.Status.FAILED:
                found = error or {}
                code, message, details = (found.get(name) or "" for name in ("code", "message", "details"))
                self.fail(by=by, code=code, message=message, details=details, request_key=request_key)
            elif to == self.Status.QUEUED:
                self.queue(by=by, request_key=request_key)
            else:
                self.transition(to, by=by, request_key=request_key)

        self._once(request_key, change, made={to}, by=by)

    def _once(self, request_key: str | None, change: Callable[[], None], *, made: set[str], by: Any) -> None:
        """Make a status change asked for by a request with this Idempotency-Key unless that request
        made it already: the SDK sends a request again when its answer is lost (a reset connection, a
        timeout, a server restart), and the second must be no error and change nothing. The two may
        also overlap (the first was slow). The key is looked up only when the change is refused: a
        change made already is either no longer legal, or its event's key is taken (the unique
        ``runs_runstatusevent_unique_request_key``, which undoes it). ``made``: the statuses the
        change may have moved the run to."""
        try:
            change()
        except (IllegalTransition, IntegrityError):
            if request_key is None or not self._made_by_key(request_key, made, by):
                raise

    def _made_by_key(self, request_key: str, made: set[str], by: Any) -> bool:
        """Whether a request with this key made its change already; a key that made another change, or
        someone else's, is refused rather than answered as done (as ``Experiment._made_by`` does)."""
        event = self.events.filter(request_key=request_key).first()
        if event is None:
            return False
        if event.to_status not in made or event.by_id != getattr(by, "pk", None):
            raise Conflict("this Idempotency-Key was used for another request", target="Idempotency-Key")
        return True

    def fail(
        self, *, by: Any = None, code: str = "", message: str = "", details: str = "", request_key: str | None = None
    ) -> None:
        validate_label(code, "errorCode", allow_empty=True)
        validate_text(message, "errorMessage", max_length=DESCRIPTION_MAX_LENGTH)
        validate_text(details, "errorDetails", max_length=DESCRIPTION_MAX_LENGTH)
        self.transition(
            self.Status.FAILED,
            by=by,
            error_code=code or "UserError",
            error_message=message,
            error_details=details,
            request_key=request_key,
        )

    def request_cancel(self, *, by: Any = None, request_key: str | None = None) -> None:
        """Cancel the run: at once when nothing is executing it, else ask its runner to stop it. Made
        at most once per ``request_key``, see ``_once``."""

        def cancel() -> None:
            if self.is_ended:
                raise IllegalTransition(f"run {self.run_id} has already ended ({self.status})", target="status")
            nothing_to_stop = self.type == self.Type.INTERACTIVE or self.status in (
                self.Status.NOT_STARTED,
                self.Status.QUEUED,
            )
            to = self.Status.CANCELED if nothing_to_stop else self.Status.CANCEL_REQUESTED
            self.transition(to, by=by, request_key=request_key)

        self._once(request_key, cancel, made={self.Status.CANCELED, self.Status.CANCEL_REQUESTED}, by=by)

    def queue(self, *, by: Any = None, request_key: str | None = None) -> None:
        """Hand a submitted script run over for execution: NotStarted -> Queued. Its snapshot must
        be stored and hold the script. ``local`` runs are then started by the submitting SDK;
        runs for a named compute target go to its queue, where a worker takes them."""
        if self.type != self.Type.SCRIPT:
            raise InvalidValue("only script runs are queued; interactive runs start Running", target="status")
        snapshot = Snapshot.objects.filter(run=self).first()
        if snapshot is None:
            raise Conflict(f"run {self.run_id} has no snapshot yet; upload it before queueing", target="snapshot")
        if self.script not in snapshot.paths():
            raise InvalidValue(f"the snapshot has no script {self.script!r}", target="script")
        self.transition(self.Status.QUEUED, by=by, request_key=request_key)
        if self.target != LOCAL_TARGET:
            from runs import dispatch

            dispatch.send_to_target(self, ComputeTarget.objects.get(workspace_id=self.workspace_id, name=self.target))

    # -- logs --

    def append_log(self, path: str, offset: int, data: bytes, stderr: list[tuple[int, int]] | None = None) -> int:
        """Append ``data`` at byte ``offset`` of the log ``path``; returns the log's new size.
        ``stderr``: the ranges of these bytes (offsets in the log) that came from stderr.

        Offsets make appends idempotent: a chunk sent again (after a timeout) whose bytes are already
        stored changes nothing; a chunk that would leave a gap is refused with the size we have.
        """
        path = normalize_file_path(path)
        if len(data) > LOG_CHUNK_MAX_BYTES:
            raise InvalidValue(f"a log chunk holds at most {LOG_CHUNK_MAX_BYTES} bytes", target="body")
        if stderr and (stderr[0][0] < offset or stderr[-1][1] > offset + len(data)):
            raise InvalidValue("stderr: the ranges must lie within the bytes sent", target="stderr")
        with transaction.atomic():
            Run.objects.select_for_update().filter(pk=self.pk).exists()  # one appender at a time
            log, _ = RunLog.objects.get_or_create(run=self, path=path)
            if offset + len(data) <= log.size:
                return log.size  # already stored
            if offset != log.size:
                raise Conflict(
                    f"log {path!r} has {log.size} bytes; a chunk at offset {offset} would leave a gap or overlap",
                    target="offset",
                    details={"size": log.size},
                )
            if data:
                LogChunk.objects.create(log=log, offset=offset, data=data)
                log.size += len(data)
                log.add_stderr(stderr or [])
                log.save(update_fields=["size", "stderr_ranges"])
            return log.size

    def read_log(self, path: str, after: int = 0, limit: int = LOG_CHUNK_MAX_BYTES) -> tuple[bytes, int]:
        """Bytes of the log from offset ``after`` (up to about ``limit``), and the offset to ask for
        next. An unknown log reads as empty: a run's output may not have started yet."""
        log = RunLog.objects.filter(run=self, path=normalize_file_path(path)).first()
        if log is None:
            return b"", after
        out = bytearray()
        chunks = log.chunks.filter(offset__gte=after - LOG_CHUNK_MAX_BYTES, offset__lt=after + limit).order_by("offset")
        for chunk in chunks.iterator():
            data = bytes(chunk.data)
            start = max(0, after - chunk.offset)
            if chunk.offset + len(data) > after:
                out += data[start:]
        return bytes(out[:limit]), after + min(len(out), limit)

    # -- descriptive fields, tags and properties --

    def update_info(self, *, display_name: str | None = None, description: str | None = None) -> None:
        changes = {}
        if display_name is not None:
            changes["display_name"] = validate_label(display_name, "displayName", allow_empty=True)
        if description is not None:
            changes["description"] = validate_text(description, "description", max_length=DESCRIPTION_MAX_LENGTH)
        if changes:
            with transaction.atomic():
                Run.objects.filter(pk=self.pk).update(**changes)
                self._refresh_search_text()
            for name, value in changes.items():
                setattr(self, name, value)

    def set_tags(self, tags: Mapping[str, str | None]) -> None:
        """Add or overwrite tags; tags are mutable, unlike properties."""
        validate_tags(tags)
        with transaction.atomic():
            RunTag.objects.bulk_create(
                [RunTag(run=self, key=k, value=v, value_hash=_value_hash(v)) for k, v in tags.items()],
                update_conflicts=True,
                unique_fields=["run", "key"],
                update_fields=["value", "value_hash"],
            )
            self._refresh_search_text()

    def remove_tags(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for key in keys:
            validate_label(key, "tag key")
        with transaction.atomic():
            self.tag_set.filter(key__in=keys).delete()
            self._refresh_search_text()

    def _refresh_search_text(self) -> None:
        """Recompute ``search_text`` from the stored fields and tags, inside the caller's
        transaction. The tags are read after locking the run's row, so of two requests changing
        its tags at once, the second waits and then sees the first's tags."""
        fields = Run.objects.select_for_update().values_list("run_id", "display_name", "description").get(pk=self.pk)
        tags = dict(RunTag.objects.filter(run_id=self.pk).values_list("key", "value"))
        Run.objects.filter(pk=self.pk).update(search_text=search_text_of(*fields, tags))

    def add_properties(self, properties: Mapping[str, str]) -> None:
        """Add write-once properties: a key already set to another value is refused, and nothing
        in the request is stored; the same value again is a no-op."""
        _validate_properties(properties)
        with transaction.atomic():
            # Lock the run so two requests adding the same key cannot both pass the check.
            Run.objects.select_for_update().filter(pk=self.pk).exists()
            stored = dict(self.property_set.filter(key__in=list(properties)).values_list("key", "value"))
            for key, value in properties.items():
                if key in stored and stored[key] != value:
                    raise PropertyConflict(key, stored[key], value)
            RunProperty.objects.bulk_create(
                RunProperty(run=self, key=key, value=value, value_hash=_value_hash(value))
                for key, value in properties.items()
                if key not in stored
            )

    def get_tags(self) -> dict[str, str | None]:
        return {tag.key: tag.value for tag in self.tag_set.all()}

    def get_properties(self) -> dict[str, str]:
        return {prop.key: prop.value for prop in self.property_set.all()}

    # -- family --

    def descendant_ids(self) -> list[int]:
        """Primary keys of all runs below this one, level by level (one query per level)."""
        found: list[int] = []
        level = [self.pk]
        while level:
            level = list(Run.objects.filter(parent_id__in=level).values_list("pk", flat=True))
            found += level
        return found

    # -- metrics --

    def log_metrics(self, points: list[Mapping[str, Any]], *, batch_id: str | None = None) -> int:
        """Append metric points and update each metric's summary, all or nothing.

        ``batch_id`` makes the call idempotent: a batch the SDK retries after a timeout, though the
        first attempt was stored, is recorded once: its key is taken (``runs_metricbatch_unique_key``),
        which undoes the retry. Returns how many points were stored.
        """
        if not isinstance(points, list) or not points:
            raise InvalidValue("points must be a non-empty list", target="points")
        if len(points) > METRIC_BATCH_MAX_POINTS:
            raise InvalidValue(f"at most {METRIC_BATCH_MAX_POINTS} points per batch", target="points")
        parsed = [PointIn.parse(point, index) for index, point in enumerate(points)]
        if batch_id is not None:
            validate_label(batch_id, "batchId", max_length=64)
        now = timezone.now()
        try:
            with transaction.atomic():
                # Locking the run serializes batches of one run (summaries stay exact) and makes the
                # "has it ended?" check hold until we commit.
                status = Run.objects.select_for_update().values_list("status", flat=True).get(pk=self.pk)
                if status in self.TERMINAL:
                    raise RunEnded(f"run {self.run_id} has ended ({status}); it takes no more metrics", target="run")
                if batch_id is not None:
                    MetricBatch.objects.create(run_id=self.pk, key=batch_id)
                names = list(dict.fromkeys(point.name for point in parsed))
                stored = {m.name: m for m in Metric.objects.filter(run_id=self.pk, name__in=names)}
                metrics = dict(stored)
                rows = []
                for point in parsed:
                    metric = metrics.get(point.name)
                    if metric is None:  # new: of its first point's kind, written once with its summary
                        metric = metrics[point.name] = Metric(run_id=self.pk, name=point.name, kind=point.kind)
                    if metric.kind != point.kind:
                        raise InvalidValue(
                            f"metric {point.name!r} holds {metric.kind} values; a {point.kind} cannot be added",
                            target=f"points[{point.index}].kind",
                        )
                    rows.append(metric.record(point, now))
                Metric.objects.bulk_create(metric for name, metric in metrics.items() if name not in stored)
                MetricPoint.insert(rows)  # after the new metrics: their keys
                if stored:
                    Metric.objects.bulk_update(stored.values(), _SUMMARY_FIELDS)
        except IntegrityError:
            if batch_id is not None and MetricBatch.objects.filter(run_id=self.pk, key=batch_id).exists():
                return 0  # stored by the first attempt
            raise
        return len(rows)

    def log_image(
        self, name: str, content: IO[bytes], *, description: str = "", request_key: str | None = None
    ) -> RunFile:
        """Store a PNG under outputs/ and log it as an image metric whose value is the file's path.
        ``request_key`` (the request's Idempotency-Key) makes it happen once: the same request sent
        again gets the image the first one stored."""
        validate_label(name, "name")
        if request_key is not None and MetricBatch.objects.filter(run_id=self.pk, key=request_key).exists():
            metric = self.metrics.filter(name=name, kind=Metric.Kind.IMAGE).first()
            if stored := metric and self.files.filter(path=wire.decode(metric.last_value)).first():
                return stored
            raise Conflict("this Idempotency-Key was used for another request", target="Idempotency-Key")
        if self.is_ended:
            raise RunEnded(f"run {self.run_id} has ended ({self.status}); it takes no more metrics", target="run")
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "image"
        taken = set(self.files.filter(path__startswith=f"outputs/{stem}").values_list("path", flat=True))
        path, n = f"outputs/{stem}.png", 1
        while path in taken:
            path, n = f"outputs/{stem}_{n}.png", n + 1
        point = {"name": name, "kind": Metric.Kind.IMAGE, "value": path, "description": description}
        # The file's row and its metric in one transaction: a request that dies between them (a server
        # killed) leaves neither, so its retry stores the image at the same path instead of a second
        # copy beside a file no metric names. (Images are small; the bytes go to storage inside it.)
        stored = None
        try:
            with transaction.atomic():
                stored = self.add_file(path, content)
                self.log_metrics([point], batch_id=request_key)
        except StudioError:
            if stored is not None:
                default_storage.delete(stored.storage_name)
            raise
        return stored

    def metric_values(self, name: str | None = None) -> dict[str, Any]:
        """Each metric's values as the SDK's get_metrics() returns them (see ``Metric.aggregate``)."""
        return Run.metric_values_of([self.pk], name)[self.pk]

    @staticmethod
    def metric_values_of(run_pks: list[int], name: str | None = None) -> dict[int, dict[str, Any]]:
        metrics = Metric.objects.filter(run_id__in=run_pks).order_by("run_id", "id")
        if name is not None:
            metrics = metrics.filter(name=name)
        by_metric: dict[int, list[Any]] = {}
        points = MetricPoint.objects.filter(metric__in=metrics).order_by("id")
        for metric_id, number, value in points.values_list("metric_id", "number", "value").iterator(2000):
            by_metric.setdefault(metric_id, []).append(MetricPoint.decode(number, value))
        result: dict[int, dict[str, Any]] = {pk: {} for pk in run_pks}
        for metric in metrics:
            result[metric.run_id][metric.name] = metric.aggregate(by_metric.get(metric.pk, []))
        return result

    # -- files --

    def add_file(self, path: str, content: IO[bytes]) -> RunFile:
        """Store a file under the run, streaming it to storage. Run files are immutable: an
        existing path is refused rather than overwritten, unless ``content`` is the very same bytes
        (the same upload sent again because its answer was lost), which stores nothing new."""
        path = normalize_file_path(path)
        taken = Conflict(f"run {self.run_id} already has a file {path!r}", target="path")
        if existing := self.files.filter(path=path).first():
            if holds_the_same_bytes(existing, content):
                return existing
            raise taken
        storage_name = default_storage.save(f"runs/{self.pk}/{path}", File(content, name=path.rsplit("/", 1)[-1]))
        try:
            with transaction.atomic():
                return RunFile.objects.create(
                    run=self, path=path, storage_name=storage_name, size=default_storage.size(storage_name)
                )
        except IntegrityError as error:  # uploaded twice at the same moment (a slow upload and its retry)
            if winner := _keep_the_first(storage_name, self.files.filter(path=path).first()):
                return winner
            raise taken from error


def holds_the_same_bytes(existing: RunFile | Snapshot, content: IO[bytes]) -> bool:
    """Whether a stored file holds exactly ``content``: the same upload sent again because its answer
    was lost, which stores nothing new (a file or snapshot is never overwritten)."""
    with existing.open() as stored:
        return same_bytes(stored, content)


def _keep_the_first(ours: str, winner: RunFile | Snapshot | None) -> RunFile | Snapshot | None:
    """After losing the race to store a file or snapshot (an upload and its retry overlapping): the
    winner when it holds the same bytes as ours, else None. Ours is deleted either way."""
    with default_storage.open(ours, "rb") as content:
        same = winner is not None and holds_the_same_bytes(winner, content)
    default_storage.delete(ours)
    return winner if same else None


def same_bytes(stored: IO[bytes], content: IO[bytes], chunk_size: int = 1 << 20) -> bool:
    """Whether the stream ``content`` holds exactly the bytes of ``stored``, read a chunk at a time."""
    while True:
        ours, theirs = _read_up_to(stored, chunk_size), _read_up_to(content, chunk_size)
        if ours != theirs:
            return False
        if not ours:
            return True


def _read_up_to(stream: IO[bytes], size: int) -> bytes:
    """``size`` bytes, fewer only at the end: a request body may hand them over in smaller pieces."""
    parts = []
    while size > 0 and (part := stream.read(size)):
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


_TRANSITION_FIELDS = (
    "status",
    "started_at",
    "ended_at",
    "last_heartbeat_at",
    "error_code",
    "error_message",
    "error_details",
)


# What a metric's summary is (Metric.record keeps it).
_SUMMARY_FIELDS = (
    "description",
    "count",
    "last_step",
    "last_value",
    "last_number",
    "min_number",
    "max_number",
    "updated_at",
)


# Between the parts of Run.search_text, so that a search cannot match across two of them. The
# searched fields refuse control characters (runs/validation.py), so a word holding it matches none.
SEARCH_SEPARATOR = "\x1f"


def search_fold(text: str) -> str:
    """Free text and Run.search_text are compared in this form. Python folds case for every
    alphabet, unlike SQLite's LIKE (ASCII only); upper-casing first makes it group letters as
    PostgreSQL's UPPER() does (``icontains``), e.g. dotless ı with I, ſ with S, a final ς with Σ,
    so a word finds at least what ``icontains`` found on either database."""
    return text.upper().casefold()


def search_text_of(run_id: str, display_name: str, description: str, tags: Mapping[str, str | None]) -> str:
    """Run.search_text: the run's own words that free text matches (the status, the experiment's
    name and the submitter's are looked up in place, so renaming them needs nothing here)."""
    parts = [run_id, display_name, description]
    for key, value in tags.items():
        parts.append(key)
        if value is not None:
            parts.append(value)
    return search_fold(SEARCH_SEPARATOR.join(parts))


def _value_hash(value: str | None) -> str:
    """Tags and properties are looked up by (key, hash of value): long values fit no B-tree index."""
    return "" if value is None else hashlib.sha256(value.encode()).hexdigest()[:16]


def validate_tags(tags: Any) -> None:
    if not isinstance(tags, Mapping):
        raise InvalidValue("tags must be an object of key: value", target="tags")
    for key, value in tags.items():
        validate_label(key, "tag key")
        if value is not None:
            validate_text(value, f"tags.{key}", max_length=TAG_VALUE_MAX_LENGTH)


def _validate_properties(properties: Any) -> None:
    if not isinstance(properties, Mapping):
        raise InvalidValue("properties must be an object of key: value", target="properties")
    for key, value in properties.items():
        validate_label(key, "property key")
        validate_text(value, f"properties.{key}", max_length=TAG_VALUE_MAX_LENGTH)


class RunTag(models.Model):
    """A mutable key (and optional value) on a run."""

    run = models.ForeignKey(Run, models.CASCADE, related_name="tag_set")
    key = models.CharField(max_length=NAME_MAX_LENGTH)
    value = models.TextField(null=True, blank=True)
    value_hash = models.CharField(max_length=16, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="runs_runtag_unique_key")]
        indexes = [models.Index(fields=["key", "value_hash"], name="runs_runtag_key_value")]


class RunProperty(models.Model):
    """A write-once key and value on a run, for audit."""

    run = models.ForeignKey(Run, models.CASCADE, related_name="property_set")
    key = models.CharField(max_length=NAME_MAX_LENGTH)
    value = models.TextField()
    value_hash = models.CharField(max_length=16)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="runs_runproperty_unique_key")]
        indexes = [models.Index(fields=["key", "value_hash"], name="runs_runproperty_key_value")]


class RunStatusEvent(models.Model):
    """One status change of a run: the log that notifications and the activity tab read."""

    run = models.ForeignKey(Run, models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, choices=Run.Status.choices)
    to_status = models.CharField(max_length=16, choices=Run.Status.choices)
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    # The Idempotency-Key of the request that asked for the change: that request sent again changes nothing.
    request_key = models.CharField(max_length=64, null=True, blank=True, editable=False)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["at"], name="runs_runstatusevent_at")]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "request_key"],
                condition=Q(request_key__isnull=False),
                name="runs_runstatusevent_unique_request_key",
            )
        ]


class RunChange(models.Model):
    """A change made to a run by hand, other than its status (``RunStatusEvent``): tags added or
    removed, a move to another experiment, from the studio's bulk actions or the API's. The
    activity tab shows both, so each run says who changed it, when and how."""

    class Action(models.TextChoices):
        TAG = "tag"
        UNTAG = "untag"
        MOVE = "move"
        ARCHIVE = "archive"
        RESTORE = "restore"

    run = models.ForeignKey(Run, models.CASCADE, related_name="changes")
    action = models.CharField(max_length=16, choices=Action.choices)
    details = models.JSONField(default=dict)  # {"tags": {...}}, {"keys": [...]}, {"from": "exp", "to": "exp"}
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["at", "id"]

    @property
    def said(self) -> str:
        """The change in words, for the activity tab."""
        if self.action == self.Action.TAG:
            tags = self.details.get("tags", {})
            return "Tags set: " + ", ".join(key if value is None else f"{key}={value}" for key, value in tags.items())
        if self.action == self.Action.UNTAG:
            return "Tags removed: " + ", ".join(self.details.get("keys", []))
        if self.action == self.Action.ARCHIVE:
            return "Archived"
        if self.action == self.Action.RESTORE:
            return "Restored from the archive"
        return f"Moved from experiment {self.details.get('from')} to {self.details.get('to')}"


# --- Metrics ------------------------------------------------------------------------------------------------


class Metric(models.Model):
    """One named metric of one run, with a running summary kept on every write, so that listing
    and sorting runs by a metric never reads the (large) table of points."""

    Kind = MetricKind

    run = models.ForeignKey(Run, models.CASCADE, related_name="metrics")
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    kind = models.CharField(max_length=8, choices=[(k.value, k.value) for k in MetricKind], default=MetricKind.SCALAR)
    description = models.TextField(blank=True)
    count = models.PositiveIntegerField(default=0)
    last_step = models.BigIntegerField(null=True)
    last_value = models.JSONField(null=True)  # wire-encoded (runs/wire.py)
    # Numeric summaries; NaN is left out of min and max.
    last_number = models.FloatField(null=True)
    min_number = models.FloatField(null=True)
    max_number = models.FloatField(null=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="runs_metric_unique_name")]
        indexes = [models.Index(fields=["name", "last_number"], name="runs_metric_name_last")]

    def record(self, point: PointIn, now: datetime) -> PointRow:
        """Update the summary for a new point and return the point's row (for ``MetricPoint.insert``)."""
        step = point.step if point.step is not None else (self.last_step + 1 if self.last_step is not None else 0)
        number, value = MetricPoint.encode(point.value)
        self.count += 1
        self.last_step = step
        self.last_value = wire.encode(point.value)
        self.last_number = number
        if number is not None:
            self.min_number = number if self.min_number is None else min(self.min_number, number)
            self.max_number = number if self.max_number is None else max(self.max_number, number)
        if point.description:
            self.description = point.description
        self.updated_at = now
        return PointRow(self, step, point.time or now, number, value)

    def aggregate(self, values: list[Any]) -> Any:
        """The metric as get_metrics() returns it: a bare value when logged once, else a list;
        rows and tables as one object of column lists."""
        if self.kind in (self.Kind.ROW, self.Kind.TABLE):
            columns: dict[str, list[Any]] = {}
            for value in values:
                height = max((len(c) for c in columns.values()), default=0)
                chunk = value if self.kind == self.Kind.TABLE else {k: [v] for k, v in value.items()}
                rows = max((len(c) for c in chunk.values()), default=0)
                # Columns in the order they first come (as logged on SQLite; PostgreSQL's jsonb keeps a
                # row's keys in an order of its own), the same on every read.
                for column in [*columns, *(key for key in chunk if key not in columns)]:
                    cells = columns.setdefault(column, [None] * height)
                    new = list(chunk.get(column, []))
                    cells.extend(new + [None] * (rows - len(new)))
            return columns
        return values[0] if len(values) == 1 else values


class PointRow(NamedTuple):
    """A metric point to insert: its metric (whose key a new metric gets when it is saved), its step,
    time, and its value as ``MetricPoint.encode`` splits it."""

    metric: Metric
    step: int
    time: datetime
    number: float | None
    value: Any


class MetricPoint(models.Model):
    """One logged value of a metric.

    A numeric value is kept in ``number`` (for charts and summaries); everything that a float cannot
    hold exactly (ints, strings, booleans, lists, rows, NaN, which SQLite cannot store in a REAL) is
    kept wire-encoded in ``value``, which takes precedence when reading.
    """

    metric = models.ForeignKey(Metric, models.CASCADE, related_name="points")
    step = models.BigIntegerField()
    time = models.DateTimeField()
    number = models.FloatField(null=True)
    value = models.JSONField(null=True)

    class Meta:
        indexes = [models.Index(fields=["metric", "step"], name="runs_metricpoint_metric_step")]

    @classmethod
    def insert(cls, rows: Iterable[PointRow]) -> None:
        """Insert ``rows`` with one statement run for all of them (``executemany``). Django's
        bulk_create builds a model and prepares each of its fields for every point, which cost more
        than the rest of a batch; here only what needs it is adapted: the time, and a value that is
        not a plain float (JSON)."""
        fields = {field.name: field for field in cls._meta.concrete_fields}
        adapt_time = connection.ops.adapt_datetimefield_value
        prep_value = fields["value"].get_db_prep_save
        params = [
            (row.metric.pk, row.step, adapt_time(row.time), row.number,
             None if row.value is None else prep_value(row.value, connection))
            for row in rows
        ]  # fmt: skip
        columns = ", ".join(connection.ops.quote_name(fields[name].column) for name in PointRow._fields)
        table = connection.ops.quote_name(cls._meta.db_table)
        with connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s)", params)

    @staticmethod
    def encode(value: Any) -> tuple[float | None, Any]:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, wire.encode(value)
        if isinstance(value, int):
            return float(value), value
        if math.isnan(value):
            return None, wire.encode(value)
        return value, None

    @staticmethod
    def decode(number: float | None, value: Any) -> Any:
        return wire.decode(value) if value is not None else number


class MetricBatch(models.Model):
    """The idempotency key of a stored batch of metric points."""

    run = models.ForeignKey(Run, models.CASCADE, related_name="+")
    key = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="runs_metricbatch_unique_key")]


# --- Files --------------------------------------------------------------------------------------------------


class RunLog(models.Model):
    """An append-only text stream of a run, such as ``logs/std_log.txt``, stored as chunks so that
    readers can follow it with a byte cursor while the run writes it."""

    run = models.ForeignKey(Run, models.CASCADE, related_name="logs")
    path = models.CharField(max_length=FILE_PATH_MAX_LENGTH)
    size = models.BigIntegerField(default=0)
    # The byte ranges ([start, end)) that came from the script's stderr (runs/wire.py), adjacent
    # ones merged; the studio marks their lines. At most STDERR_RANGES_MAX: past that, no more.
    stderr_ranges = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["run", "path"], name="runs_runlog_unique_path")]

    STDERR_RANGES_MAX = 10_000

    def add_stderr(self, ranges: list[tuple[int, int]]) -> None:
        for start, end in ranges:
            if self.stderr_ranges and self.stderr_ranges[-1][1] == start:
                self.stderr_ranges[-1] = [self.stderr_ranges[-1][0], end]  # a line that goes on
            elif len(self.stderr_ranges) < self.STDERR_RANGES_MAX:
                self.stderr_ranges.append([start, end])

    def iter_bytes(self) -> Iterable[bytes]:
        for chunk in self.chunks.order_by("offset").iterator():
            yield bytes(chunk.data)


class LogChunk(models.Model):
    """Bytes of a log starting at ``offset``."""

    log = models.ForeignKey(RunLog, models.CASCADE, related_name="chunks")
    offset = models.BigIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["log", "offset"], name="runs_logchunk_unique_offset")]


class Snapshot(models.Model):
    """The zipped source folder a script run executes, stored with the run."""

    run = models.OneToOneField(Run, models.CASCADE, related_name="snapshot")
    storage_name = models.CharField(max_length=FILE_PATH_MAX_LENGTH + 64)
    size = models.BigIntegerField()
    files = models.JSONField(default=list)  # [{"path": ..., "size": ...}], read from the zip
    created_at = models.DateTimeField(default=timezone.now)

    def paths(self) -> set[str]:
        return {entry["path"] for entry in self.files}

    def open(self) -> IO[bytes]:
        return default_storage.open(self.storage_name, "rb")

    @classmethod
    def store(cls, run: Run, content: IO[bytes]) -> Snapshot:
        """Keep the zip (streamed to storage), refusing one that is too big or not a zip. A run has
        one snapshot: the same bytes again (an upload sent again because its answer was lost) store
        nothing new, other bytes are refused."""
        taken = Conflict(f"run {run.run_id} already has its snapshot", target="snapshot")
        if existing := cls.objects.filter(run=run).first():
            if holds_the_same_bytes(existing, content):
                return existing
            raise taken
        name = default_storage.save(f"runs/{run.pk}/snapshot.zip", File(content, name="snapshot.zip"))
        try:
            size = default_storage.size(name)
            if size > settings.SNAPSHOT_MAX_BYTES:
                raise InvalidValue(
                    f"the snapshot is {size // 2**20} MiB; the limit is {settings.SNAPSHOT_MAX_BYTES // 2**20} MiB",
                    target="snapshot",
                )
            with default_storage.open(name, "rb") as stored:
                try:
                    with zipfile.ZipFile(stored) as archive:
                        files = [_snapshot_entry(info) for info in archive.infolist() if not info.is_dir()]
                except zipfile.BadZipFile:
                    raise InvalidValue("the snapshot is not a zip file", target="snapshot") from None
        except StudioError:
            default_storage.delete(name)
            raise
        try:
            with transaction.atomic():
                return cls.objects.create(run=run, storage_name=name, size=size, files=files)
        except IntegrityError as error:  # stored twice at the same moment (a slow upload and its retry)
            if winner := _keep_the_first(name, cls.objects.filter(run=run).first()):
                return winner
            raise taken from error


def _snapshot_entry(info: zipfile.ZipInfo) -> dict[str, Any]:
    """A snapshot file's listing; refuses what could land outside the folder it is unpacked in: '..' or
    absolute paths, and symbolic links (a link to /etc/passwd unpacked and read by a script, or followed
    by a later entry written through it)."""
    try:
        path = normalize_file_path(info.filename)
    except InvalidValue:
        raise InvalidValue(
            f"the snapshot holds {info.filename!r}; entries must be relative paths with no '.' or '..' parts",
            target="snapshot",
        ) from None
    if stat.S_ISLNK(info.external_attr >> 16):
        raise InvalidValue(f"the snapshot holds a symbolic link, {info.filename!r}; zip files only", target="snapshot")
    return {"path": path, "size": info.file_size}


class ComputeTarget(models.Model):
    """A named place to run scripts: a Celery queue served by ``studio worker --target NAME``
    processes on any machine. ``local`` (the submitting machine) is always there and not stored."""

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="compute_targets")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=NAME_MAX_LENGTH, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="runs_computetarget_unique_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def queue_name(self) -> str:
        """The Celery queue: targets of different workspaces never share one."""
        return f"studio.{self.workspace.name}.{self.name}"


class RunFile(models.Model):
    """A file stored with a run (outputs, logs, images), kept in Django's default storage."""

    run = models.ForeignKey(Run, models.CASCADE, related_name="files")
    path = models.CharField(max_length=FILE_PATH_MAX_LENGTH)
    storage_name = models.CharField(max_length=FILE_PATH_MAX_LENGTH + 64)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["run", "path"], name="runs_runfile_unique_path")]

    def open(self) -> IO[bytes]:
        return default_storage.open(self.storage_name, "rb")


# Saved views (SavedView, DefaultView) are the studio's: studio/models.py.


def _wake_sender() -> None:
    from runs import notify  # it imports these models

    notify.wake()


# --- Notifications ------------------------------------------------------------------------------------------


class AlertRuleQuerySet(models.QuerySet):
    def visible_to(self, user: Any, workspace: Workspace) -> AlertRuleQuerySet:
        """A workspace's rules, and of the one-run watches only the user's own."""
        return self.filter(workspace=workspace).filter(Q(run=None) | Q(created_by=user))


class AlertRule(models.Model):
    """Who hears about which status changes: a workspace's rule (some or all experiments, some new
    statuses, members and addresses to mail and/or a webhook to call), or one user's watch on one run
    ("tell me when it ends"). A status change that matches writes a ``Delivery`` per channel."""

    class Channel(models.TextChoices):
        EMAIL = "email"
        WEBHOOK = "webhook"

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=100, blank=True)
    experiments = models.ManyToManyField(Experiment, blank=True, related_name="+")  # none: every experiment
    run = models.ForeignKey(Run, models.CASCADE, null=True, blank=True, related_name="watches")  # a watch
    statuses = models.JSONField(default=list)  # the new statuses that fire the rule
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    emails = models.JSONField(default=list, blank=True)
    # Whether it mails anyone (members or addresses): kept, so matching a status change needs no join.
    mails = models.BooleanField(default=False)
    webhook_url = models.URLField(max_length=500, blank=True)
    # Kept in the clear because every delivery signs with it; shown once, when the rule is made.
    webhook_secret = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    objects = AlertRuleQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name or f"rule {self.pk}"

    @property
    def channels(self) -> list[str]:
        return [self.Channel.EMAIL] * self.mails + [self.Channel.WEBHOOK] * bool(self.webhook_url)

    def can_delete(self, user: Any, role: str | None) -> bool:
        """A watch belongs to its watcher; a workspace rule to its Contributors and Owners."""
        if self.run_id is not None:
            return self.created_by_id == user.pk
        return role in Membership.WRITE_ROLES

    @classmethod
    def create_rule(
        cls,
        workspace: Workspace,
        *,
        by: Any,
        statuses: Iterable[str],
        experiments: Iterable[str] = (),
        members: Iterable[str] = (),
        emails: Iterable[str] = (),
        webhook_url: str = "",
        name: str = "",
    ) -> AlertRule:
        """A workspace rule, checked field by field (``InvalidValue`` names the field); a webhook must
        lead to public addresses unless ``NOTIFY_WEBHOOK_ALLOWED_HOSTS`` names its host
        (``runs.webhooks``). The caller checks that ``by`` may write to the workspace."""
        from django.contrib.auth import get_user_model
        from django.core.exceptions import ValidationError
        from django.core.validators import URLValidator, validate_email

        statuses = _status_list(statuses)
        experiment_names = list(dict.fromkeys(experiments))
        found = {e.name: e for e in workspace.experiments.filter(name__in=experiment_names)}
        if missing := [n for n in experiment_names if n not in found]:
            raise InvalidValue(f"no experiment {missing[0]!r} in workspace {workspace.name!r}", target="experiments")
        usernames = list(dict.fromkeys(members))
        users = {u.username: u for u in get_user_model().objects.filter(username__in=usernames)}
        for username in usernames:
            user = users.get(username)
            if user is None or workspace.role_of(user) is None:
                raise InvalidValue(f"{username!r} is not a member of workspace {workspace.name!r}", target="members")
            if not user.email:
                raise InvalidValue(f"member {username!r} has no email address to send to", target="members")
        addresses = list(dict.fromkeys(e.strip() for e in emails if e.strip()))
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                raise InvalidValue(f"{address!r} is not an email address", target="emails") from None
        if webhook_url:
            try:
                URLValidator(schemes=["http", "https"])(webhook_url)
            except ValidationError:
                raise InvalidValue(f"{webhook_url!r} is not an http(s) URL", target="webhookUrl") from None
            if len(webhook_url) > 500:
                raise InvalidValue("the webhook URL is longer than 500 characters", target="webhookUrl")
            try:
                webhooks.resolve(webhook_url, settings.NOTIFY_WEBHOOK_ALLOWED_HOSTS)
            except webhooks.RefusedTarget as error:
                raise InvalidValue(str(error), target="webhookUrl") from None
            except (OSError, UnicodeError):
                pass  # a name that does not resolve now is checked again before every delivery
        if not (users or addresses or webhook_url):
            raise InvalidValue("say who hears about it: members, email addresses or a webhook URL", target="emails")
        # Only the writes are one transaction: the checks above may wait on DNS, and SQLite's write
        # lock (taken at BEGIN) must not wait with them.
        with transaction.atomic():
            rule = cls.objects.create(
                workspace=workspace,
                name=validate_label(name, "name", allow_empty=True, max_length=100),
                statuses=statuses,
                emails=addresses,
                mails=bool(users or addresses),
                webhook_url=webhook_url,
                webhook_secret=secrets.token_hex(32) if webhook_url else "",
                created_by=by,
            )
            rule.experiments.set(found.values())
            rule.members.set(users.values())
        return rule

    @classmethod
    def watch(cls, run: Run, user: Any) -> AlertRule:
        """Mail ``user`` when ``run`` ends (once per user and run)."""
        if run.is_ended:
            raise RunEnded(f"run {run.run_id} has already ended ({run.status})", target="run")
        if not user.email:
            raise InvalidValue("your account has no email address to send to", target="email")
        rule = cls.objects.filter(run=run, created_by=user).first()
        if rule is None:
            rule = cls.objects.create(
                workspace_id=run.workspace_id,
                run=run,
                name=f"when {run.run_id} ends",
                statuses=list(Run.TERMINAL),
                mails=True,
                created_by=user,
            )
            rule.members.add(user)
        return rule


def _status_list(statuses: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(s.strip() for s in statuses if s.strip()))
    if not chosen:
        raise InvalidValue("name at least one status, e.g. Failed,Canceled", target="statuses")
    for status in chosen:
        if status not in Run.Status.values:
            raise InvalidValue(
                f"unknown status {status!r}; statuses are {', '.join(Run.Status.values)}", target="statuses"
            )
    return chosen


class DeliveryQuerySet(models.QuerySet):
    def visible_to(self, user: Any, workspace: Workspace) -> DeliveryQuerySet:
        """The deliveries of the rules the user sees (``AlertRuleQuerySet.visible_to``)."""
        return self.filter(rule__in=AlertRule.objects.visible_to(user, workspace))

    def due(self, now: datetime) -> DeliveryQuerySet:
        """Pending, time to try (again), and not being sent by anyone right now."""
        return self.filter(state=Delivery.State.PENDING, next_attempt_at__lte=now).filter(
            Q(claimed_until=None) | Q(claimed_until__lt=now)
        )


class Delivery(models.Model):
    """A message owed for one status event by one rule on one channel: the outbox. It is written in
    the transaction that writes the event, so a change never goes unannounced and announcing never
    blocks the change; ``runs.notify`` sends it, retrying with backoff until it gets through."""

    class State(models.TextChoices):
        PENDING = "Pending"
        SENT = "Sent"
        FAILED = "Failed"  # gave up (or nobody left to send to)

    rule = models.ForeignKey(AlertRule, models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(RunStatusEvent, models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=16, choices=AlertRule.Channel.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A sender's lease: while it lasts, no other sender takes the delivery.
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "event", "channel"], name="runs_delivery_once"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="runs_delivery_due", condition=Q(state="Pending")),
        ]

    @classmethod
    def write_for(cls, events: list[RunStatusEvent], experiment_id: int, workspace_id: int) -> int:
        """The deliveries ``events`` (of runs of one experiment) owe, written in the caller's
        transaction; returns how many."""
        # One query per status change (or batch of new runs): the rules of the workspace for all
        # experiments or this one, and watches on these runs. Statuses are a JSON list, matched here
        # (SQLite cannot look inside JSON lists); a workspace has few rules.
        rules = list(
            AlertRule.objects.filter(workspace_id=workspace_id)
            .filter(Q(run=None) | Q(run__in=[event.run_id for event in events]))
            .filter(Q(experiments=None) | Q(experiments=experiment_id))
            .only("run_id", "statuses", "mails", "webhook_url")
        )
        deliveries = [
            cls(rule=rule, event=event, channel=channel)
            for event in events
            for rule in rules
            if event.to_status in rule.statuses and rule.run_id in (None, event.run_id)
            for channel in rule.channels
        ]
        cls.objects.bulk_create(deliveries)
        return len(deliveries)

    def claim(self, lease_seconds: float) -> bool:
        """Take the delivery for one attempt: a compare-and-swap, so two senders never both send it."""
        now = timezone.now()
        taken = (
            Delivery.objects.due(now)
            .filter(pk=self.pk)
            .update(claimed_until=now + timedelta(seconds=lease_seconds), attempts=F("attempts") + 1)
        )
        if taken:
            self.refresh_from_db(fields=["attempts", "claimed_until"])
        return taken == 1

    def succeeded(self) -> None:
        now = timezone.now()
        Delivery.objects.filter(pk=self.pk).update(
            state=self.State.SENT, sent_at=now, claimed_until=None, last_error=""
        )
        self.state, self.sent_at, self.claimed_until, self.last_error = self.State.SENT, now, None, ""

    def failed(self, error: str, *, retry_in: float | None) -> None:
        """Note a failed attempt: try again in ``retry_in`` seconds, or give up (None)."""
        changes: dict[str, Any] = {"claimed_until": None, "last_error": error[:2000]}
        if retry_in is None:
            changes["state"] = self.State.FAILED
        else:
            changes["next_attempt_at"] = timezone.now() + timedelta(seconds=retry_in)
        Delivery.objects.filter(pk=self.pk).update(**changes)
        for field, value in changes.items():
            setattr(self, field, value)
