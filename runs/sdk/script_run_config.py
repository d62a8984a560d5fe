"""ScriptRunConfig: what to run, with what arguments, where."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runs.sdk._snapshot import build_snapshot
from runs.sdk.exceptions import StudioException, UserErrorException

if TYPE_CHECKING:
    from runs.sdk.experiment import Experiment
    from runs.sdk.run import Run

LOCAL = "local"


@dataclass
class ScriptRunConfig:
    """``ScriptRunConfig(source_directory=".", script="train.py", arguments=["--lr", 0.01],
    compute_target="local")``, submitted with ``experiment.submit(config)``.

    The source folder is zipped as the run's snapshot (``.studioignore``, else ``.gitignore``,
    says what to leave out; at most ``STUDIO_SNAPSHOT_MAX_MB``, default 300). ``local`` runs the
    script on this machine under a detached runner, so the run outlives this process; a named
    compute target runs it on that target's workers.
    """

    source_directory: str | os.PathLike[str] = "."
    script: str | None = None
    arguments: list[Any] = field(default_factory=list)
    compute_target: str = LOCAL
    display_name: str | None = None
    cancel_grace_seconds: int = 10  # after a cancel: SIGTERM, then SIGKILL this many seconds later

    def _submit(self, experiment: Experiment, *, tags: dict[str, Any] | None, parent: Run | None) -> Run:
        from runs.sdk.run import Run, _as_strings

        source = Path(self.source_directory).resolve()
        if not self.script:
            raise UserErrorException("ScriptRunConfig needs a script")
        if not (source / self.script).is_file():
            raise UserErrorException(f"no script {self.script!r} in {source}")
        max_bytes = int(os.environ.get("STUDIO_SNAPSHOT_MAX_MB", "300")) * 2**20
        archive = build_snapshot(source, max_bytes)
        client = experiment.workspace._client
        try:
            details = client.post(
                experiment._path("runs/"),
                {
                    "type": "script",
                    "script": Path(self.script).as_posix(),
                    "arguments": [str(argument) for argument in self.arguments],
                    "target": self.compute_target,
                    "displayName": self.display_name,
                    "tags": _as_strings(tags, allow_none=True),
                    "cancelGraceSeconds": self.cancel_grace_seconds,
                    "parentRunId": parent.id if parent else None,
                },
            )
            run = Run._from_details(experiment, details)
            try:
                with archive.open("rb") as snapshot:
                    client.put(run._path("snapshot/"), data=snapshot)
                run._details = client.post(run._path("status/"), {"status": "Queued"})
            except StudioException as error:  # the run would wait forever for its snapshot
                with contextlib.suppress(StudioException):  # the studio may have ended it already
                    run.fail(error_details=f"the submission did not finish: {error.message}", error_code="SubmitFailed")
                raise
        finally:
            archive.unlink()
        if self.compute_target == LOCAL:
            start_local_runner(experiment.workspace, run.id)
        return run


def start_local_runner(workspace: Any, run_id: str) -> None:
    """Start ``python -m runs.runner`` detached from this process (its own session, a double
    fork), so the run goes on when a notebook or terminal that submitted it exits."""
    env = {
        **os.environ,
        "STUDIO_URL": workspace.url,
        "STUDIO_TOKEN": workspace._token,
        "STUDIO_WORKSPACE": workspace.name,
    }
    # The runner's own messages (not the script's output, which goes to the run's log).
    folder = Path(tempfile.gettempdir()) / "run-studio"
    folder.mkdir(exist_ok=True)
    with (folder / f"runner-{run_id}.log").open("ab") as runner_log:
        subprocess.run(
            [sys.executable, "-m", "runs.runner", "--detach", run_id],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=runner_log,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=60,
        )
