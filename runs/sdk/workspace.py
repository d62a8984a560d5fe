"""Workspace: where the studio is, who you are there, and which workspace you work in."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from runs.sdk._http import Client, path_quote
from runs.sdk.exceptions import UserErrorException

CONFIG_NAMES = (Path(".studio") / "config.json", Path("config.json"))


class Workspace:
    """A workspace on a studio server, reached with an API token.

    Usually made with ``Workspace.from_config()``, which reads the file ``studio folder attach`` or
    ``manage.py bootstrap`` wrote.
    """

    def __init__(self, name: str = "default", *, url: str, token: str) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self._token = token  # handed to the runners this workspace starts
        self._client = Client(self.url, token)

    def __repr__(self) -> str:
        return f"Workspace(name={self.name!r}, url={self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and (self.url, self.name) == (other.url, other.name)

    def __hash__(self) -> int:
        return hash((self.url, self.name))

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None) -> Workspace:
        """Read ``.studio/config.json`` or ``config.json`` from ``path`` (a file or a folder) or
        else from the current folder or the nearest parent that has one. ``STUDIO_URL``,
        ``STUDIO_TOKEN`` and ``STUDIO_WORKSPACE`` override what the file says (and make it
        optional when URL and token are both set)."""
        config: dict[str, Any] = {}
        found = find_config(path)
        if found is not None:
            try:
                config = json.loads(found.read_text())
            except (OSError, ValueError) as error:
                raise UserErrorException(f"cannot read the studio config {found}: {error}") from error
        url = os.environ.get("STUDIO_URL") or config.get("url")
        token = os.environ.get("STUDIO_TOKEN") or config.get("token")
        name = os.environ.get("STUDIO_WORKSPACE") or config.get("workspace") or "default"
        if not url or not token:
            where = f"in {found}" if found else f"(no {CONFIG_NAMES[0]} or config.json here or above)"
            raise UserErrorException(
                f"no studio URL and token {where}; run `studio folder attach` or `manage.py bootstrap`, "
                "or set STUDIO_URL and STUDIO_TOKEN"
            )
        return cls(name, url=url, token=token)

    def write_config(self, path: str | os.PathLike[str], token: str) -> Path:
        return write_config(path, url=self.url, token=token, workspace=self.name)

    @property
    def experiments(self) -> dict[str, Any]:
        """The workspace's experiments by name, as Azure ML's ``ws.experiments``."""
        from runs.sdk.experiment import Experiment

        return {experiment.name: experiment for experiment in Experiment.list(self)}

    def get_run_groups(
        self,
        by: str | list[str],
        metrics: list[str] | None = None,
        *,
        query: str = "",
        include_children: bool = False,
        archived: bool = False,
    ) -> list[dict[str, Any]]:
        """The runs ``query`` matches grouped by one or two keys (``"tags.lr"``, ``["properties.lr",
        "tags.model"]``, ``"experiment"``), each group as ``{"key", "count", "metrics": {"loss":
        {"mean", "std", "min", "max", "count"}}}`` for the ``metrics`` asked for (``"loss"`` is its
        last value; ``"loss.min"``, ``"accuracy.max"``): averaging over seeds. Run Studio's own.
        Archived runs are left out of this and of the exports; ``archived=True`` takes them instead."""
        params = {
            "by": by if isinstance(by, str) else ",".join(by),
            "metrics": ",".join(metrics or []),
            "q": query,
            "include_children": include_children,
            "archived": archived,
        }
        return self._client.get(self._path("runs/groups/"), params=_given(params))["groups"]

    def export_runs(
        self,
        path: str | os.PathLike[str],
        *,
        query: str = "",
        sort: str = "",
        columns: list[str] | None = None,
        include_children: bool = False,
        archived: bool = False,
    ) -> Path:
        """Every run of the workspace that ``query`` (the run query language) matches, not a page,
        as CSV at ``path``: sorted by ``sort`` (``-created`` if none), one line a run with
        ``columns`` (``["name", "status", "tags.team", "metrics.loss.min"]``; the studio's default
        columns if none), exact values. Run Studio's own; Azure ML has no export."""
        params = {
            "q": query,
            "sort": sort,
            "cols": ",".join(columns or []),
            "include_children": include_children,
            "archived": archived,
        }
        return self._client.download(self._path("runs/export/"), Path(path), params=_given(params))

    def export_metrics(
        self,
        path: str | os.PathLike[str],
        *,
        query: str = "",
        names: list[str] | None = None,
        include_children: bool = False,
        archived: bool = False,
    ) -> Path:
        """The metric histories of every run that ``query`` matches, as CSV at ``path``, one line a
        point: ``run_id, metric, step, value, time`` (the metrics ``names``; all of them if none)."""
        params = {"q": query, "names": ",".join(names or []), "include_children": include_children}
        params["archived"] = archived
        return self._client.download(self._path("runs/export/metrics/"), Path(path), params=_given(params))

    def _path(self, suffix: str = "") -> str:
        return f"workspaces/{path_quote(self.name)}/{suffix}"


def find_config(path: str | os.PathLike[str] | None = None) -> Path | None:
    if path is not None:
        given = Path(path)
        if given.is_file():
            return given
        if not given.is_dir():
            raise UserErrorException(f"no studio config at {given}")
        candidates = [given / name for name in CONFIG_NAMES]
        return next((c for c in candidates if c.is_file()), None)
    folder = Path.cwd()
    for directory in (folder, *folder.parents):
        for name in CONFIG_NAMES:
            if (directory / name).is_file():
                return directory / name
    return None


def write_config(path: str | os.PathLike[str], *, url: str, token: str, workspace: str) -> Path:
    """Write an SDK config file readable only by its owner (it holds a token)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"url": url, "workspace": workspace, "token": token}, indent=2) + "\n"
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(body)
    os.chmod(target, 0o600)
    return target


def _given(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters that say something (``include_children`` as the API spells a true flag)."""
    return {key: "true" if value is True else value for key, value in params.items() if value not in ("", False, None)}
