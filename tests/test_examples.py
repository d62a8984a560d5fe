"""The scripts in examples/ run as a newcomer runs them: a separate Python process, configured
from the environment, against a live server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runs.models import Run
from tests.conftest import token_for

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize(
    ("script", "experiment", "runs"),
    [("hello.py", "hello", 1), ("children.py", "sweep", 4), ("metrics.py", "metrics-tour", 1)],
)
def test_the_example_runs(
    live_server: Any, alice: Any, workspace: Any, tmp_path: Path, script: str, experiment: str, runs: int
) -> None:
    env = {**os.environ, "STUDIO_URL": live_server.url, "STUDIO_TOKEN": token_for(alice), "STUDIO_WORKSPACE": "default"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    made = Run.objects.filter(experiment__name=experiment)
    assert made.count() == runs
    assert set(made.values_list("status", flat=True)) == {Run.Status.COMPLETED}
    assert made.filter(metrics__isnull=False).exists()
