"""Run Studio's Python SDK. Names and behaviour follow Azure ML v1's ``azureml.core``, so code
written for it ports by changing the import line:

    from runs.sdk import Workspace, Experiment, Run, ScriptRunConfig

    ws = Workspace.from_config()
    exp = Experiment(workspace=ws, name="explore-runs")
    with exp.start_logging() as run:
        run.log("loss", 0.5)

It talks to the studio over its REST API only and imports nothing from Django.
"""

from __future__ import annotations

from runs.sdk.exceptions import (
    ActivityFailedException,
    AuthenticationException,
    ConflictException,
    NotFoundException,
    PermissionDeniedException,
    PropertyConflictException,
    ServiceException,
    StudioException,
    UserErrorException,
)
from runs.sdk.experiment import Experiment
from runs.sdk.run import OfflineRun, Run
from runs.sdk.script_run_config import ScriptRunConfig
from runs.sdk.workspace import Workspace

__all__ = [
    "ActivityFailedException",
    "AuthenticationException",
    "ConflictException",
    "Experiment",
    "NotFoundException",
    "OfflineRun",
    "PermissionDeniedException",
    "PropertyConflictException",
    "Run",
    "ScriptRunConfig",
    "ServiceException",
    "StudioException",
    "UserErrorException",
    "Workspace",
]
