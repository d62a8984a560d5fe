"""Experiment: a named group of runs in a workspace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from runs.sdk._http import path_quote
from runs.sdk._query import quote
from runs.sdk.workspace import Workspace

if TYPE_CHECKING:
    from runs.sdk.run import Run
    from runs.sdk.script_run_config import ScriptRunConfig


class Experiment:
    """``Experiment(workspace, name)`` makes sure the experiment exists (creating it needs the
    Contributor role; a Reader may open one that exists)."""

    def __init__(self, workspace: Workspace, name: str, *, _create: bool = True) -> None:
        self.workspace = workspace
        self.name = name
        if _create:
            workspace._client.put(self._path())

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, workspace={self.workspace.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Experiment) and (self.workspace, self.name) == (other.workspace, other.name)

    def __hash__(self) -> int:
        return hash((self.workspace, self.name))

    def _path(self, suffix: str = "") -> str:
        return self.workspace._path(f"experiments/{path_quote(self.name)}/{suffix}")

    def start_logging(
        self,
        *,
        display_name: str | None = None,
        description: str | None = None,
        run_id: str | None = None,
        tags: dict[str, str | None] | None = None,
        properties: dict[str, str] | None = None,
    ) -> Run:
        """Start an interactive run, Running at once. Use it in a ``with`` block to end it
        Completed (or Failed, if the block raises)."""
        from runs.sdk.run import Run, _as_strings

        details = self.workspace._client.post(
            self._path("runs/"),
            {
                "displayName": display_name,
                "description": description,
                "runId": run_id,
                "tags": _as_strings(tags, allow_none=True),
                "properties": _as_strings(properties),
            },
        )
        return Run._started_here(self, details)

    def submit(self, config: ScriptRunConfig, tags: dict[str, Any] | None = None) -> Run:
        """Submit a script run: its source folder is zipped and stored with the run, and the run is
        queued on ``config.compute_target``. Returns at once; see ``run.wait_for_completion()``."""
        return config._submit(self, tags=tags, parent=None)

    def get_runs(
        self,
        type: str | None = None,
        tags: Any = None,
        properties: Any = None,
        include_children: bool = False,
        status: str | list[str] | None = None,
        *,
        archived: bool = False,
    ) -> Iterator[Run]:
        """The experiment's runs, newest first. ``tags``/``properties``: a dict matches exact
        values (all of them), a string or list matches runs that have those keys. Archived runs are
        left out; ``archived=True`` lists them instead."""
        from runs.sdk.run import Run

        return Run.list(
            self,
            type=type,
            tags=tags,
            properties=properties,
            status=status,
            include_children=include_children,
            archived=archived,
        )

    def get_run_groups(
        self,
        by: str | list[str],
        metrics: list[str] | None = None,
        *,
        query: str = "",
        include_children: bool = False,
        archived: bool = False,
    ) -> list[dict[str, Any]]:
        """This experiment's runs grouped, as ``Workspace.get_run_groups``: e.g. the mean and
        standard deviation of ``loss`` over the seeds of each learning rate,
        ``exp.get_run_groups(by="properties.lr", metrics=["loss"])``."""
        scoped = f"experiment = {quote(self.name)}" + (f" and ({query})" if query else "")
        return self.workspace.get_run_groups(
            by, metrics, query=scoped, include_children=include_children, archived=archived
        )

    @staticmethod
    def list(workspace: Workspace, experiment_name: str | None = None) -> list[Experiment]:
        experiments = [
            Experiment(workspace, item["name"], _create=False)
            for item in workspace._client.get(workspace._path("experiments/"))
        ]
        if experiment_name is not None:
            experiments = [e for e in experiments if e.name == experiment_name]
        return experiments
