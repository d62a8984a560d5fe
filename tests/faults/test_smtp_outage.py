"""The mail relay down when a run ends, then back: the studio's own senders (the background thread of
each gunicorn worker, as `make run` starts them) keep retrying with backoff, and once the relay
answers the mail arrives exactly once, not zero times and not once per sender or per attempt.

The relay is aiosmtpd in a process of its own, storing what it takes in a Maildir; it is SIGKILLed
(no goodbye to anyone) and later started again on the same port."""

from __future__ import annotations

import mailbox
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runs import sdk
from tests.faults.server import StudioServer, database_configurations, free_port
from tests.test_script_runs import wait_until

RETRY_BASE = 0.2  # seconds: the first retry; it doubles up to RETRY_MAX
RETRY_MAX = 0.8


class Relay:
    """``python -m aiosmtpd`` on 127.0.0.1:``port``, delivering into the Maildir ``directory``."""

    def __init__(self, port: int, directory: Path) -> None:
        self.port, self.directory = port, directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}",
             "-c", "aiosmtpd.handlers.Mailbox", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._answers, timeout=15, what="the SMTP relay")

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, "the relay exited"
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=2) as client:
                return client.noop()[0] == 250
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def messages(self) -> list[Any]:
        return list(mailbox.Maildir(self.directory, create=True))


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    box = Relay(free_port(), tmp_path / "maildir")
    yield box
    box.kill()


@pytest.fixture
def studio(tmp_path: Path, relay: Relay) -> Iterator[StudioServer]:
    """gunicorn with 2 workers, each with its sender thread, mailing through the relay."""
    data = tmp_path / "data"
    data.mkdir()
    with StudioServer(data, database_configurations()[0], workers=2, threads=2) as server:
        server.env.pop("CELERY_BROKER_URL", None)  # the embedded senders, not a Celery queue
        server.env |= {
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(relay.port),
            "EMAIL_TIMEOUT": "5",
            "NOTIFY_INTERVAL": "0.2",
            "NOTIFY_RETRY_BASE": str(RETRY_BASE),
            "NOTIFY_RETRY_MAX": str(RETRY_MAX),
            "STUDIO_NOTIFY": "True",
        }
        server.start()
        yield server


def deliveries(server: StudioServer) -> list[dict[str, Any]]:
    response = server.session().get(f"{server.url}/api/v1/workspaces/default/deliveries/", timeout=10)
    response.raise_for_status()
    return response.json()["results"]


def test_a_run_ending_while_the_relay_is_down_is_mailed_once_it_is_back(studio: StudioServer, relay: Relay) -> None:
    relay.start()
    relay.kill()  # it was up; now it is gone, with nobody told
    answer = studio.session().post(
        f"{studio.url}/api/v1/workspaces/default/alerts/",
        json={"statuses": ["Failed"], "emails": ["ops@example.org"]},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text

    run = sdk.Experiment(sdk.Workspace("default", url=studio.url, token=studio.token), "train").start_logging()
    started = time.monotonic()
    run.fail(error_details="diverged")  # the status change does not wait for the relay
    assert time.monotonic() - started < 5
    assert run.get_status() == "Failed"

    # Both workers' senders try, fail and back off while the relay is down.
    wait_until(lambda: deliveries(studio)[0]["attempts"] >= 3, timeout=30, what="three failed attempts")
    [owed] = deliveries(studio)
    assert owed["state"] == "Pending" and owed["lastError"], owed
    assert relay.messages() == []

    relay.start()
    wait_until(lambda: relay.messages(), timeout=30, what="the mail, once the relay is back")
    wait_until(lambda: deliveries(studio)[0]["state"] == "Sent", timeout=10, what="the delivery marked Sent")
    time.sleep(6 * RETRY_MAX)  # several more rounds of both senders: nothing more goes out
    [sent] = deliveries(studio)
    assert (sent["state"], sent["lastError"]) == ("Sent", "")
    [message] = relay.messages()
    assert message["To"] == "ops@example.org"
    assert "is Failed (train)" in message["Subject"]
    assert message["Message-ID"].startswith(f"<delivery-{sent['id']}.")
