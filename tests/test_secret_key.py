"""The generated SECRET_KEY of the embedded default: made once, readable by its owner only, the same for
every server process, even ones that start at the same moment (gunicorn's workers)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRINT_KEY = (
    "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'studio.settings'; django.setup()\n"
    "from django.conf import settings; print(settings.SECRET_KEY)"
)


def test_processes_starting_together_make_one_key_that_only_its_owner_reads(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL")}
    env["STUDIO_DATA_DIR"] = str(tmp_path)
    processes = [
        subprocess.Popen([sys.executable, "-c", PRINT_KEY], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    keys = {process.communicate(timeout=120)[0].strip() for process in processes}
    path = tmp_path / "secret_key"
    assert keys == {path.read_text().strip()} and len(keys.pop()) >= 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no temporary file left behind
