"""A studio server in a process of its own, as `make run` starts it: gunicorn over its own database.

Fault tests kill, restart and overload it; the suite's in-process live server cannot be killed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_configurations() -> list[str]:
    """The configurations a fault is tried on: the database engine this run of the suite is on, named each
    way an operator may name it. SQLite: the embedded default (no DATABASE_URL) and a DATABASE_URL."""
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return ["sqlite-default", "sqlite-url"]
    return ["postgresql"]


class StudioServer:
    """gunicorn serving the studio from ``data_dir``, over a database of its own made by ``migrate``.

    ``configuration`` is one of ``database_configurations()``. The admin user's token is in ``token``."""

    def __init__(self, data_dir: Path, configuration: str, *, workers: int = 2, threads: int = 4) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers, self.threads = workers, threads
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"
        self.env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        self.env |= {"STUDIO_DATA_DIR": str(data_dir), "STUDIO_BASE_URL": self.url, "PYTHONUNBUFFERED": "1"}
        self._postgres_name = ""
        if configuration == "sqlite-url":
            self.env["DATABASE_URL"] = f"sqlite:///{data_dir / 'elsewhere' / 'studio.sqlite3'}"
            (data_dir / "elsewhere").mkdir(parents=True, exist_ok=True)
        elif configuration == "postgresql":
            self._postgres_name = f"studio_faults_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            self.env["DATABASE_URL"] = _postgres_url(self._postgres_name)
            _postgres_admin(f'CREATE DATABASE "{self._postgres_name}"')
        elif configuration != "sqlite-default":
            raise ValueError(f"unknown database configuration {configuration!r}")
        self.manage("migrate", "--noinput", "-v0")
        config = data_dir / "config.json"
        self.manage("bootstrap", "--config", str(config), "--url", self.url)
        self.token: str = json.loads(config.read_text())["token"]

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)}: {done.stderr}"
        return done.stdout

    def python(self, code: str) -> str:
        """Run ``code`` in a Django process configured as the server is; returns what it printed."""
        setup = "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'studio.settings'; django.setup()\n"
        done = subprocess.run(
            [sys.executable, "-c", setup + code], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self) -> None:
        command = [sys.executable, "-m", "gunicorn", "studio.wsgi", "--bind", f"127.0.0.1:{self.port}"]
        command += ["--workers", str(self.workers), "--threads", str(self.threads), "--log-level", "warning"]
        with self.log_path.open("ab") as log:
            # A process group of its own, so kill() reaches the master and every worker at once.
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self._wait_until_it_answers()
        except BaseException:
            self.kill()  # a server that never came up must not outlive the test that started it
            raise

    def _wait_until_it_answers(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited: {self.log()}"
            try:
                # A worker's first request loads the whole studio: on a busy machine, seconds.
                self.session().get(f"{self.url}/api/v1/workspaces/", timeout=30).raise_for_status()
                return
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        raise AssertionError(f"the server did not answer within 60 s: {self.log()}")

    def kill(self) -> None:
        """SIGKILL the whole server: the gunicorn master and its workers, with no chance to clean up."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):  # the master may have exited already
            os.killpg(self.process.pid, signal.SIGKILL)  # its own process group: see start()
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None

    def close(self) -> None:
        self.stop()
        if self._postgres_name:
            _postgres_admin(f'DROP DATABASE IF EXISTS "{self._postgres_name}" WITH (FORCE)')

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def session(self) -> requests.Session:
        """A plain HTTP session with the admin's token: no retries, so every failure is seen."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        return session

    def __enter__(self) -> StudioServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _postgres_url(name: str) -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/studio")
    return base.rsplit("/", 1)[0] + f"/{name}"


def _postgres_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(_postgres_url("postgres"), autocommit=True) as connection:
        connection.execute(sql)
