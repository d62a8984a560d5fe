"""Run: one execution, with its status, tags, properties, metrics, files and children.

Names and behaviour follow Azure ML v1's ``azureml.core.Run``.
"""

from __future__ import annotations

import codecs
import io
import math
import os
import sys
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, TextIO

from runs import wire
from runs.sdk import system_metrics
from runs.sdk._http import path_quote
from runs.sdk._query import run_filter
from runs.sdk._sender import sender
from runs.sdk.exceptions import ActivityFailedException, ConflictException, UserErrorException
from runs.sdk.experiment import Experiment
from runs.sdk.workspace import Workspace
from runs.validation import MetricKind, PointIn, StudioError, normalize_file_path

if TYPE_CHECKING:
    from runs.sdk.script_run_config import ScriptRunConfig

TERMINAL_STATUSES = ("Completed", "Failed", "Canceled")
LOG_PATH = "logs/std_log.txt"  # where a script run's output goes


class Run:
    """``Run(experiment, run_id)`` re-attaches to an existing run."""

    def __init__(self, experiment: Experiment, run_id: str, *, _details: dict[str, Any] | None = None) -> None:
        self.experiment = experiment
        self._client = experiment.workspace._client
        self._id = run_id
        self._details = _details if _details is not None else self._client.get(f"runs/{path_quote(run_id)}/")

    @classmethod
    def _from_details(cls, experiment: Experiment, details: dict[str, Any]) -> Run:
        return cls(experiment, details["runId"], _details=details)

    @classmethod
    def _started_here(cls, experiment: Experiment, details: dict[str, Any]) -> Run:
        """An interactive run this process started: it heartbeats until this process ends it."""
        run = cls._from_details(experiment, details)
        sender().watch(run._client, run.id)
        if details.get("parentRunId") is None:
            # Children made here share this process: the parent's samples already cover them.
            run_id = run.id
            system_metrics.start_for_run(run._client, run_id, keep_going=lambda: run_id in sender().watched())
        return run

    @classmethod
    def get_context(cls, allow_offline: bool = True) -> Run | OfflineRun:
        """Inside a submitted script: its run (the runner sets STUDIO_RUN_ID, STUDIO_URL and
        STUDIO_TOKEN). Anywhere else: an offline run that prints what it would log, so the same
        script also runs on its own."""
        run_id = os.environ.get("STUDIO_RUN_ID")
        if run_id:
            run = cls.get(Workspace.from_config(), run_id)
            if os.environ.get(system_metrics.RUNNER_VARIABLE) != run_id:  # the runner samples it otherwise
                system_metrics.start_for_run(run._client, run_id)
            return run
        if not allow_offline:
            raise UserErrorException("not inside a submitted run (STUDIO_RUN_ID is not set)")
        return OfflineRun()

    @staticmethod
    def get(workspace: Workspace, run_id: str) -> Run:
        """The run with this id, in whichever of the workspace's experiments it is."""
        details = workspace._client.get(f"runs/{path_quote(run_id)}/")
        return Run._from_details(Experiment(workspace, details["experiment"], _create=False), details)

    def __repr__(self) -> str:
        return f"Run(experiment={self.experiment.name!r}, id={self.id!r}, status={self.status!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and self.id == other.id and self._client.url == other._client.url

    def __hash__(self) -> int:
        return hash((self._client.url, self.id))

    # -- what the run is (cached from the last answer; get_details() refreshes) --

    @property
    def id(self) -> str:
        return self._id

    @property
    def number(self) -> int:
        return self._details["runNumber"]

    @property
    def type(self) -> str:
        return self._details["type"]

    @property
    def status(self) -> str:
        return self._details["status"]

    @property
    def tags(self) -> dict[str, str | None]:
        return dict(self._details.get("tags", {}))

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._details.get("properties", {}))

    @property
    def display_name(self) -> str:
        return self._details.get("displayName", "")

    @display_name.setter
    def display_name(self, value: str) -> None:
        self._details = self._client.patch(self._path(), {"displayName": value})

    @property
    def description(self) -> str:
        return self._details.get("description", "")

    @description.setter
    def description(self, value: str) -> None:
        self._details = self._client.patch(self._path(), {"description": value})

    @property
    def parent(self) -> Run | None:
        parent_id = self._details.get("parentRunId")
        return None if parent_id is None else Run(self.experiment, parent_id)

    def _path(self, suffix: str = "") -> str:
        return f"runs/{path_quote(self._id)}/{suffix}"

    def get_portal_url(self) -> str:
        """The run's page in the studio, as Azure ML's ``run.get_portal_url()`` gives its studio's."""
        workspace = path_quote(self.experiment.workspace.name)
        return f"{self._client.url}/w/{workspace}/runs/{path_quote(self._id)}/"

    def get_details(self) -> dict[str, Any]:
        """runId, displayName, description, status, target, startTimeUtc, endTimeUtc (once ended),
        properties, tags, submittedBy, logFiles, error (when failed), ...; null values left out."""
        self._details = self._client.get(self._path())
        return dict(self._details)

    def get_status(self) -> str:
        return self.get_details()["status"]

    # -- ending --

    def complete(self, set_status: bool = True) -> None:
        """Send the metrics still queued, then mark the run Completed."""
        system_metrics.stop_for_run(self._id)
        self.flush()
        if set_status:
            self._details = self._client.post(self._path("status/"), {"status": "Completed"})
            sender().unwatch(self._id)

    def fail(
        self, error_details: str | BaseException | None = None, error_code: str | None = None, set_status: bool = True
    ) -> None:
        """Send the queued metrics, then mark the run Failed. ``error_details`` may be an exception:
        its type becomes the code, its message the message, and its traceback the details."""
        system_metrics.stop_for_run(self._id)
        self.flush()
        if not set_status:
            return
        error: dict[str, str] = {"code": error_code or "UserError"}
        if isinstance(error_details, BaseException):
            error["code"] = error_code or type(error_details).__name__
            error["message"] = f"{type(error_details).__name__}: {error_details}"
            error["details"] = "".join(traceback.format_exception(error_details))
        elif error_details is not None:
            error["message"] = str(error_details)
        self._details = self._client.post(self._path("status/"), {"status": "Failed", "error": error})
        sender().unwatch(self._id)

    def cancel(self) -> None:
        """Cancel the run: at once for an interactive run; a script run's runner is asked to stop it."""
        system_metrics.stop_for_run(self._id)
        self._details = self._client.post(self._path("cancel/"))
        sender().unwatch(self._id)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.status in TERMINAL_STATUSES:  # the block ended the run itself
            system_metrics.stop_for_run(self._id)
            self.flush()
            return
        try:
            if exc is None:
                self.complete()
            elif isinstance(exc, KeyboardInterrupt):
                self.flush()
                self.cancel()
            else:
                self.fail(error_details=exc)
        except ConflictException:
            pass  # ended meanwhile by someone else (a cancel from the studio, say)

    # -- script runs --

    def submit_child(self, config: ScriptRunConfig, tags: dict[str, Any] | None = None) -> Run:
        """Submit a script run as a child of this run, in its experiment."""
        return config._submit(self.experiment, tags=tags, parent=self)

    def wait_for_completion(
        self,
        show_output: bool = False,
        wait_post_processing: bool = False,
        raise_on_error: bool = True,
        *,
        stream: TextIO | None = None,
    ) -> dict[str, Any]:
        """Wait until the run ends; with ``show_output``, print its output as it comes. Returns
        get_details(). A Failed run raises ActivityFailedException when ``raise_on_error``; a
        Canceled one returns. (``wait_post_processing`` is accepted for Azure compatibility:
        a run here ends only after its outputs are stored.) ``stream``: where the output goes
        (default: stdout)."""
        out = stream or sys.stdout
        if show_output:
            print(f"RunId: {self.id}\nWeb View: {self.get_portal_url()}\n", file=out, flush=True)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        offset = 0
        while True:
            details = self.get_details()
            ended = details["status"] in TERMINAL_STATUSES
            while show_output:  # read until caught up; after the end, that is everything
                data, offset = self._read_log(LOG_PATH, offset)
                if not data:
                    break
                out.write(decoder.decode(data))
                out.flush()
            if ended:
                break
            time.sleep(1.0)
        if show_output:
            summary = f"\nExecution Summary\n=================\nRunId: {self.id}\nStatus: {details['status']}"
            print(summary, file=out, flush=True)
        if details["status"] == "Failed" and raise_on_error:
            error = details.get("error", {}).get("error", {})
            raise ActivityFailedException(
                f"run {self.id} failed: {error.get('message', 'no message')}",
                code=error.get("code"),
                details=details.get("error"),
            )
        return details

    def _read_log(self, path: str, after: int) -> tuple[bytes, int]:
        response = self._client.request("GET", self._path(f"logs/{path_quote(path)}"), params={"after": after})
        return response.content, int(response.headers.get("X-Next-Offset", after))

    def restore_snapshot(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Download the run's snapshot (its zipped source folder); returns the zip's path."""
        target = Path(path) if path is not None else Path.cwd()
        if target.is_dir():
            target = target / f"{self.id}-snapshot.zip"
        return self._client.download(self._path("snapshot/"), target)

    # -- tags and properties --

    def tag(self, key: str, value: str | None = None) -> None:
        """Set a tag; tags are mutable. ``run.tag("key")`` sets a tag without a value."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._details = self._client.patch(self._path("tags/"), {"set": _as_strings(tags, allow_none=True)})

    def remove_tags(self, tags: list[str] | str) -> None:
        keys = [tags] if isinstance(tags, str) else list(tags)
        self._details = self._client.patch(self._path("tags/"), {"remove": keys})

    def get_tags(self) -> dict[str, str | None]:
        return self.get_details().get("tags", {})

    def add_properties(self, properties: Mapping[str, Any]) -> None:
        """Add write-once properties. A key already set to another value raises
        PropertyConflictException (with .key, .existing, .new); the same value again is a no-op."""
        self._details = self._client.post(self._path("properties/"), _as_strings(properties))

    def get_properties(self) -> dict[str, str]:
        return self.get_details().get("properties", {})

    # -- metrics --

    def _queue_point(
        self, name: str, kind: MetricKind, value: Any, *, description: str | None = None, step: int | None = None
    ) -> None:
        point: dict[str, Any] = {
            "name": name,
            "kind": kind.value,
            "value": wire.encode(value),
            "time": datetime.now(UTC).isoformat(),
        }
        if step is not None:
            point["step"] = step
        if description:
            point["description"] = description
        _checked(PointIn.parse, point, 0)  # the server's own checks: a bad point fails here, not in the background
        sender().enqueue(self._client, self._id, point)

    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        """Log a number, string or boolean. Every call appends a point; ``step`` counts up from 0
        when omitted. Returns at once: a background sender ships the points."""
        self._queue_point(name, MetricKind.SCALAR, _plain(value), description=description, step=step)

    def log_list(self, name: str, value: list[Any], description: str = "") -> None:
        self._queue_point(name, MetricKind.LIST, [_plain(item) for item in value], description=description)

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        """Append a row to a table metric: ``run.log_row("results", epoch=1, loss=0.3)``."""
        row = {column: _plain(value) for column, value in kwargs.items()}
        self._queue_point(name, MetricKind.ROW, row, description=description)

    def log_table(self, name: str, value: Mapping[str, list[Any]], description: str = "") -> None:
        """Log a table given as columns: ``{"epoch": [1, 2], "loss": [0.5, 0.3]}``."""
        table = {column: [_plain(item) for item in values] for column, values in value.items()}
        self._queue_point(name, MetricKind.TABLE, table, description=description)

    def log_image(
        self, name: str, path: str | os.PathLike[str] | None = None, plot: Any = None, description: str = ""
    ) -> None:
        """Store an image under outputs/ and log it as a metric. ``path``: a PNG file; ``plot``: a
        matplotlib figure (or ``pyplot``), saved as PNG."""
        if (path is None) == (plot is None):
            raise UserErrorException("log_image needs exactly one of path= and plot=")
        self.flush()
        params = {"name": name, "description": description}
        if path is not None:
            with open(path, "rb") as file:
                self._client.post(self._path("images/"), data=file, params=params)
        else:
            buffer = io.BytesIO()
            plot.savefig(buffer, format="png")
            buffer.seek(0)
            self._client.post(self._path("images/"), data=buffer, params=params)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every metric point logged so far is stored; False if ``timeout`` ran out."""
        return sender().flush(self._id, timeout)

    def get_metrics(self, name: str | None = None, recursive: bool = False) -> dict[str, Any]:
        """``{name: value}``: a bare value for a metric logged once, a list for several; rows and
        tables as ``{column: [values]}``. ``recursive=True``: ``{run_id: {name: value}}`` for this
        run and all its descendants."""
        if recursive:
            sender().flush()  # the descendants' queued points too
        else:
            self.flush()
        params: dict[str, Any] = {"recursive": "true"} if recursive else {}
        if name is not None:
            params["name"] = name
        body = self._client.get(self._path("metrics/"), params=params)
        return wire.decode(body["runs"] if recursive else body["metrics"])

    # -- children --

    def child_run(self, name: str | None = None, run_id: str | None = None) -> Run:
        """Start one child run (Running); also a context manager, like any run."""
        (child,) = self._create_children({"runs": [{"runId": run_id, "displayName": name}]})
        return child

    def create_children(
        self, count: int | None = None, tag_key: str | None = None, tag_values: list[str] | None = None
    ) -> list[Run]:
        """Create many children in one request, in order, Running, each tagged with its batch index
        (``count``) or with its value of ``tag_key`` (``tag_values``)."""
        body: dict[str, Any] = {}
        if count is not None:
            body["count"] = count
        if tag_key is not None:
            body["tagKey"] = tag_key
        if tag_values is not None:
            body["tagValues"] = list(tag_values)
        return self._create_children(body)

    def _create_children(self, body: dict[str, Any]) -> list[Run]:
        return [Run._started_here(self.experiment, d) for d in self._client.post(self._path("children/"), body)]

    def get_children(
        self,
        recursive: bool = False,
        tags: Any = None,
        properties: Any = None,
        type: str | None = None,
        status: str | list[str] | None = None,
    ) -> Iterator[Run]:
        params = {"q": run_filter(tags=tags, properties=properties, type=type, status=status)}
        if recursive:
            params["recursive"] = "true"
        for details in self._client.pages(self._path("children/"), params):
            yield Run._from_details(self.experiment, details)

    @classmethod
    def list(
        cls,
        experiment: Experiment,
        type: str | None = None,
        tags: Any = None,
        properties: Any = None,
        status: str | list[str] | None = None,
        include_children: bool = False,
        *,
        archived: bool = False,
    ) -> Iterator[Run]:
        """The experiment's runs, newest first, fetched page by page as you iterate. Archived runs
        are in no list: ``archived=True`` lists them instead (Run Studio's own)."""
        query = run_filter(experiment=experiment.name, tags=tags, properties=properties, type=type, status=status)
        params = {"q": query, "include_children": "true" if include_children else "false"}
        if archived:
            params["archived"] = "true"
        client = experiment.workspace._client
        for details in client.pages(experiment.workspace._path("runs/"), params):
            yield cls._from_details(experiment, details)

    # -- files --

    def upload_file(self, name: str, path_or_stream: str | os.PathLike[str] | IO[bytes]) -> dict[str, Any]:
        """Store a file with the run under ``name`` (such as ``outputs/model.pkl``), streamed."""
        name = _checked(normalize_file_path, name)
        # Files are immutable, but the same bytes again are a no-op: a PUT sent again after a lost
        # answer succeeds.
        url = self._path(f"files/{path_quote(name)}")
        if isinstance(path_or_stream, str | os.PathLike):
            with open(path_or_stream, "rb") as file:
                return self._client.put(url, data=file)
        return self._client.put(url, data=path_or_stream)

    def upload_folder(self, name: str, path: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """Upload every file under the folder ``path`` to ``name/<relative path>``."""
        root = Path(path)
        if not root.is_dir():
            raise UserErrorException(f"{root} is not a folder")
        return [
            self.upload_file(f"{name.rstrip('/')}/{file.relative_to(root).as_posix()}", file)
            for file in sorted(root.rglob("*"))
            if file.is_file()
        ]

    def get_file_names(self) -> list[str]:
        return [item["path"] for item in self._client.get(self._path("files/"))]

    def download_file(self, name: str, output_file_path: str | os.PathLike[str] | None = None) -> Path:
        """Download one file, streamed to disk; to ``output_file_path`` (a file or a folder), else
        into the current folder under the file's own name."""
        target = Path(output_file_path) if output_file_path is not None else Path(name.rsplit("/", 1)[-1])
        if target.is_dir():
            target = target / name.rsplit("/", 1)[-1]
        return self._client.download(self._path(f"files/{path_quote(name)}"), target)

    def download_files(
        self,
        prefix: str | None = None,
        output_directory: str | os.PathLike[str] | None = None,
        append_prefix: bool = True,
    ) -> list[Path]:
        """Download every file whose path starts with ``prefix`` into ``output_directory``
        (default: the current folder), keeping the paths (without the prefix when
        ``append_prefix`` is False)."""
        directory = Path(output_directory) if output_directory is not None else Path.cwd()
        params = {"prefix": prefix} if prefix else None
        downloaded = []
        for item in self._client.get(self._path("files/"), params=params):
            relative = item["path"] if append_prefix or not prefix else item["path"][len(prefix) :].lstrip("/")
            downloaded.append(self.download_file(item["path"], directory / relative))
        return downloaded


class OfflineRun:
    """What ``Run.get_context()`` returns outside a submitted run: it prints what it would log
    and never fails, so a training script also runs on its own."""

    def __init__(self) -> None:
        self.id = f"OfflineRun_{uuid.uuid4()}"
        self.experiment = None
        self.parent = None
        self.tags: dict[str, Any] = {}
        self.properties: dict[str, Any] = {}
        self._status = "Running"

    def __repr__(self) -> str:
        return f"OfflineRun(id={self.id!r})"

    def get_status(self) -> str:
        return self._status

    def get_details(self) -> dict[str, Any]:
        return {"runId": self.id, "status": self._status, "target": "local", "tags": self.tags}

    def get_metrics(self, name: str | None = None, recursive: bool = False) -> dict[str, Any]:
        return {}

    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        print(f"[offline run] {name} = {value!r}" + (f" (step {step})" if step is not None else ""))

    def complete(self, set_status: bool = True) -> None:
        self._status = "Completed"

    def fail(self, error_details: Any = None, error_code: str | None = None, set_status: bool = True) -> None:
        self._status = "Failed"

    def cancel(self) -> None:
        self._status = "Canceled"

    def __enter__(self) -> OfflineRun:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._status = "Failed" if exc[0] else "Completed"

    def __getattr__(self, name: str) -> Any:
        """Everything else a run does: printed, not done."""
        if name.startswith("_"):
            raise AttributeError(name)

        def offline(*args: Any, **kwargs: Any) -> None:
            shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
            print(f"[offline run] {name}({', '.join(shown)})")

        return offline


def _checked(rule: Any, *args: Any) -> Any:
    """Apply one of the server's rules (runs/validation.py) here, raising the SDK's exception
    with the server's message, for requests whose errors would otherwise come too late or garbled
    (a queued metric point; a path with '..' that HTTP clients rewrite)."""
    try:
        return rule(*args)
    except StudioError as error:
        raise UserErrorException(
            error.message.replace("points[0].", ""), code=error.code, target=error.target
        ) from None


def _plain(value: Any) -> Any:
    """NumPy and PyTorch scalars (anything with ``.item()``) as plain Python numbers."""
    if not isinstance(value, bool | int | float | str) and hasattr(value, "item"):
        try:
            return value.item()
        except (TypeError, ValueError):
            return value
    return value


def _as_strings(values: Mapping[str, Any] | None, *, allow_none: bool = False) -> dict[str, Any] | None:
    """Tag and property values are strings; numbers are written as text, as Azure ML does."""
    if values is None:
        return None
    if not isinstance(values, Mapping):
        raise UserErrorException("expected a dict of key: value")
    result = {}
    for key, value in values.items():
        if value is None and allow_none:
            result[key] = None
        elif isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
            result[key] = str(value)
        else:
            result[key] = value
    return result
