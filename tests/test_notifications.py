"""Notifications end to end: a real SMTP server (aiosmtpd) and a real HTTP receiver on localhost,
the outbox written with each status event, retries while the receiver is down, exactly one
message per (rule, event, channel), and the Celery path with a real redis-server."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from django.db import transaction

from runs import notify
from runs.models import AlertRule, Delivery, Experiment, Run, RunSpec, RunStatusEvent, Workspace
from tests.conftest import make_run
from tests.test_script_runs import wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MailBox:
    """An SMTP server on localhost that keeps what it is sent; it can be stopped and started again
    on the same port, like a mail relay that goes down for a while."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self._controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def mailbox(settings: Any) -> Iterator[MailBox]:
    """The studio mails through SMTP on localhost; the box is not started yet."""
    box = MailBox(free_port())
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = box.port
    settings.EMAIL_TIMEOUT = 5
    yield box
    box.stop()


@pytest.fixture(autouse=True)
def _fast_retries(settings: Any) -> None:
    settings.NOTIFY_RETRY_BASE = 0.1
    settings.NOTIFY_RETRY_MAX = 0.2
    settings.STUDIO_BASE_URL = "https://studio.example.org"


@pytest.fixture(autouse=True)
def _local_receivers(settings: Any) -> None:
    """The receivers below listen on loopback, where webhooks go only when the operator allows it."""
    settings.NOTIFY_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]


class Receiver:
    """An HTTP server on localhost that records webhook calls and answers with the given codes in
    turn (the last one from then on)."""

    def __init__(self, port: int, codes: list[int] | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/hooks/studio"
        self.codes = codes or [200]
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append((dict(self.headers), body))
                code = receiver.codes[min(len(receiver.calls), len(receiver.codes)) - 1]
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver(free_port())
    yield box
    box.stop()


def deliver_until(predicate: Any, what: str, timeout: float = 20) -> None:
    """Run the sender until ``predicate`` holds (retries wait for their backoff)."""

    def attempt() -> Any:
        notify.deliver_due()
        return predicate()

    wait_until(attempt, timeout=timeout, what=what)


def rule_for(workspace: Workspace, by: Any, **fields: Any) -> AlertRule:
    fields.setdefault("statuses", ["Failed"])
    return AlertRule.create_rule(workspace, by=by, **fields)


def text_and_html(message: email.message.EmailMessage) -> tuple[str, str]:
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


# --- the outbox ---------------------------------------------------------------------------------------------


def test_a_matching_status_change_writes_its_delivery_with_the_event(workspace: Workspace, alice: Any) -> None:
    Experiment.ensure(workspace, "train")
    rule = rule_for(
        workspace, alice, experiments=["train"], statuses=["Failed", "Canceled"], emails=["ops@example.org"]
    )
    run = make_run(workspace, alice, "train")
    run.fail(message="CUDA out of memory")
    (delivery,) = Delivery.objects.all()
    assert (delivery.rule, delivery.channel, delivery.state) == (rule, "email", "Pending")
    assert (delivery.event.from_status, delivery.event.to_status) == ("Running", "Failed")


def test_runs_starting_owe_their_first_change_too(workspace: Workspace, alice: Any) -> None:
    """A new run's first event (NotStarted -> Running) is written by create_runs, not transition."""
    exp, _ = Experiment.ensure(workspace, "train")
    rule = rule_for(workspace, alice, experiments=["train"], statuses=["Running"], webhook_url="http://127.0.0.1:9/")
    runs = exp.create_runs([RunSpec(), RunSpec()], by=alice)
    make_run(workspace, alice, "other")  # another experiment: nothing
    deliveries = Delivery.objects.order_by("event__run_id")
    assert [(d.rule, d.channel, d.event.run) for d in deliveries] == [(rule, "webhook", run) for run in runs]


def test_a_rolled_back_status_change_owes_nothing(workspace: Workspace, alice: Any) -> None:
    rule_for(workspace, alice, emails=["ops@example.org"])
    run = make_run(workspace, alice)
    with pytest.raises(RuntimeError), transaction.atomic():
        run.fail(message="boom")
        raise RuntimeError("the request failed after the change")
    assert not Delivery.objects.exists()
    assert not RunStatusEvent.objects.filter(to_status="Failed").exists()


def test_other_experiments_and_other_statuses_stay_silent(
    workspace: Workspace, alice: Any, mailbox: MailBox, receiver: Receiver
) -> None:
    mailbox.start()
    receiver.start()
    Experiment.ensure(workspace, "train")
    rule_for(workspace, alice, experiments=["train"], emails=["ops@example.org"], webhook_url=receiver.url)
    make_run(workspace, alice, "evaluate").fail(message="not watched")  # another experiment
    make_run(workspace, alice, "train").transition(Run.Status.COMPLETED)  # a status the rule does not name
    assert notify.deliver_due() == 0
    assert not Delivery.objects.exists()
    assert mailbox.messages == [] and receiver.calls == []


def test_rules_of_another_workspace_stay_silent(
    workspace: Workspace, other_workspace: Workspace, alice: Any, charlie: Any
) -> None:
    rule_for(other_workspace, charlie, emails=["charlie@example.org"])
    make_run(workspace, alice).fail(message="boom")
    assert not Delivery.objects.exists()


# --- email --------------------------------------------------------------------------------------------------


def test_a_failed_run_is_mailed_once_with_text_and_html(
    workspace: Workspace, alice: Any, carol: Any, mailbox: MailBox
) -> None:
    mailbox.start()
    Experiment.ensure(workspace, "train")
    rule_for(
        workspace, alice, name="train failures", experiments=["train"], emails=["ops@example.org"], members=["carol"]
    )
    run = make_run(workspace, alice, "train", display_name="resnet <50> lr=3e-4")
    run.fail(code="UserError", message="CUDA out of memory <tried to allocate>")
    assert notify.deliver_due() == 1
    assert notify.deliver_due() == 0  # nothing owed any more
    ((recipients, message),) = mailbox.messages
    assert sorted(recipients) == ["carol@example.org", "ops@example.org"]
    assert message["Subject"] == "[Run Studio] resnet <50> lr=3e-4 is Failed (train)"
    text, html = text_and_html(message)
    link = f"https://studio.example.org/w/default/runs/{run.run_id}/"
    for body in (text, html):
        assert run.run_id in body and "train" in body and "Running" in body and "Failed" in body
        assert link in body
        assert "Duration" in body
    assert "CUDA out of memory <tried to allocate>" in text
    assert "CUDA out of memory &lt;tried to allocate&gt;" in html  # user text is escaped in HTML
    assert "resnet &lt;50&gt;" in html
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("Sent", 1, "")


def test_smtp_down_then_up_still_gets_the_mail_once(workspace: Workspace, alice: Any, mailbox: MailBox) -> None:
    rule_for(workspace, alice, emails=["ops@example.org"])
    run = make_run(workspace, alice)
    started = time.monotonic()
    run.fail(message="boom")  # the mail relay is down: the status change does not wait for it
    assert time.monotonic() - started < 1
    assert Run.objects.get(pk=run.pk).status == "Failed"
    deliver_until(lambda: Delivery.objects.get().attempts >= 3, "three failed attempts")
    delivery = Delivery.objects.get()
    assert delivery.state == "Pending" and delivery.sent_at is None
    assert "refused" in delivery.last_error.lower() or "connect" in delivery.last_error.lower()
    mailbox.start()
    deliver_until(lambda: Delivery.objects.get().state == "Sent", "the mail to go out")
    for _ in range(3):
        time.sleep(0.25)
        notify.deliver_due()
    assert len(mailbox.messages) == 1
    assert Delivery.objects.get().last_error == ""


def test_a_watch_mails_only_the_watcher_and_only_for_that_run(
    workspace: Workspace, alice: Any, bob: Any, mailbox: MailBox
) -> None:
    mailbox.start()
    watched, other = make_run(workspace, alice), make_run(workspace, alice)
    AlertRule.watch(watched, bob)  # a Reader may watch a run for themselves
    AlertRule.watch(watched, bob)  # asking twice is one watch
    other.fail(message="not watched")
    watched.transition(Run.Status.COMPLETED)
    deliver_until(lambda: mailbox.messages, "the watcher's mail")
    ((recipients, message),) = mailbox.messages
    assert recipients == ["bob@example.org"]
    assert watched.run_id in message["Subject"] or watched.run_id in text_and_html(message)[0]
    assert "is Completed" in message["Subject"]


def test_a_rule_whose_members_all_left_gives_up_at_once(
    workspace: Workspace, alice: Any, carol: Any, mailbox: MailBox
) -> None:
    mailbox.start()
    rule_for(workspace, alice, members=["carol"])
    workspace.memberships.get(user=carol).leave()
    make_run(workspace, alice).fail(message="boom")
    assert notify.deliver_due() == 0
    delivery = Delivery.objects.get()
    assert delivery.state == "Failed" and delivery.attempts == 1
    assert "member" in delivery.last_error
    assert mailbox.messages == []


def test_it_gives_up_after_notify_give_up_after(
    workspace: Workspace, alice: Any, mailbox: MailBox, settings: Any
) -> None:
    settings.NOTIFY_GIVE_UP_AFTER = 0
    rule_for(workspace, alice, emails=["ops@example.org"])
    make_run(workspace, alice).fail(message="boom")
    notify.deliver_due()
    delivery = Delivery.objects.get()
    assert delivery.state == "Failed" and delivery.last_error
    mailbox.start()
    notify.deliver_due()
    assert mailbox.messages == []


# --- webhooks -----------------------------------------------------------------------------------------------


def test_a_webhook_is_signed_and_retried_until_it_is_taken(
    workspace: Workspace, alice: Any, receiver: Receiver
) -> None:
    receiver.codes = [500, 503, 204]
    receiver.start()
    rule = rule_for(workspace, alice, statuses=["Failed", "Canceled"], webhook_url=receiver.url)
    assert len(rule.webhook_secret) == 64
    run = make_run(workspace, alice, "train", display_name="resnet")
    run.fail(code="UserError", message="CUDA out of memory")
    deliver_until(lambda: Delivery.objects.get().state == "Sent", "the webhook to be taken")
    assert len(receiver.calls) == 3
    delivery = Delivery.objects.get()
    assert delivery.attempts == 3
    for headers, body in receiver.calls:
        expected = "sha256=" + hmac.new(rule.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Studio-Signature-256"], expected)
        assert headers["X-Studio-Delivery"] == str(delivery.pk)
        assert headers["Content-Type"] == "application/json"
    payload = json.loads(receiver.calls[-1][1])
    assert payload["event"] == "run.status_changed"
    assert (payload["fromStatus"], payload["toStatus"]) == ("Running", "Failed")
    assert payload["run"]["runId"] == run.run_id and payload["run"]["displayName"] == "resnet"
    assert payload["run"]["url"] == f"https://studio.example.org/w/default/runs/{run.run_id}/"
    assert payload["experiment"] == "train" and payload["workspace"] == "default"
    assert payload["error"] == {"code": "UserError", "message": "CUDA out of memory"}
    for _ in range(3):
        time.sleep(0.25)
        notify.deliver_due()
    assert len(receiver.calls) == 3


def test_a_webhook_receiver_down_then_up_gets_it_once(workspace: Workspace, alice: Any, receiver: Receiver) -> None:
    rule_for(workspace, alice, statuses=["Canceled"], webhook_url=receiver.url)
    make_run(workspace, alice).transition(Run.Status.CANCELED)
    deliver_until(lambda: Delivery.objects.get().attempts >= 2, "two failed attempts")
    assert Delivery.objects.get().state == "Pending"
    receiver.start()
    deliver_until(lambda: Delivery.objects.get().state == "Sent", "the webhook to be taken")
    time.sleep(0.5)
    notify.deliver_due()
    assert len(receiver.calls) == 1
    assert json.loads(receiver.calls[0][1])["error"] is None


@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_send_each_delivery_once(workspace: Workspace, alice: Any, receiver: Receiver) -> None:
    receiver.start()
    rule_for(workspace, alice, webhook_url=receiver.url)
    for _ in range(12):
        make_run(workspace, alice).fail(message="boom")
    barrier = threading.Barrier(2)

    def sender() -> None:
        from django.db import connection

        barrier.wait()
        try:
            notify.deliver_due()
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    delivered = [headers["X-Studio-Delivery"] for headers, _ in receiver.calls]
    assert len(delivered) == 12 and len(set(delivered)) == 12
    assert set(Delivery.objects.values_list("state", flat=True)) == {"Sent"}


# --- who sends: the server's own thread, or a Celery worker -------------------------------------------------


@pytest.fixture
def sender(settings: Any) -> Iterator[Any]:
    """The in-server sender thread, looking every 0.1 s."""
    notify.start_in_background(0.1)
    yield notify
    notify.stop()


@pytest.mark.django_db(transaction=True)
def test_the_server_sends_by_itself_when_a_run_fails_over_the_sdk(
    ws: Any, alice: Any, workspace: Workspace, mailbox: MailBox, sender: Any
) -> None:
    from runs import sdk

    mailbox.start()
    rule_for(workspace, alice, emails=["ops@example.org"])
    run = sdk.Experiment(ws, "train").start_logging(display_name="overnight")
    run.fail(error_details="diverged", error_code="UserError")
    deliver = wait_until(lambda: mailbox.messages, timeout=15, what="the mail")
    assert "overnight is Failed" in deliver[0][1]["Subject"]
    # The SMTP server has the mail a moment before the sender records it as sent.
    wait_until(lambda: Delivery.objects.get().state == "Sent", timeout=15, what="the delivery recorded as sent")


BROKER = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")


@pytest.mark.django_db(transaction=True)
def test_with_a_broker_a_celery_worker_sends(workspace: Workspace, alice: Any, mailbox: MailBox, settings: Any) -> None:
    """The server only queues the task; a real Celery worker on a real redis-server sends."""
    from celery.contrib.testing.worker import start_worker

    try:
        redis.Redis.from_url(BROKER).ping()
    except redis.ConnectionError as error:  # make test starts one: never skip silently
        raise AssertionError(f"no Redis at {BROKER} ({error}); run scripts/ensure-services.sh redis") from None
    settings.CELERY_BROKER_URL = BROKER
    settings.NOTIFY_QUEUE = f"studio.notifications.test-{os.getpid()}"  # this test process's own queue
    mailbox.start()
    rule_for(workspace, alice, emails=["ops@example.org"])
    make_run(workspace, alice).fail(message="boom")
    assert notify.look_once() == 0  # with a broker the server sends nothing itself...
    assert Delivery.objects.get().state == "Pending" and mailbox.messages == []
    app = notify.make_app(BROKER)
    with start_worker(app, pool="solo", perform_ping_check=False, queues=[settings.NOTIFY_QUEUE], loglevel="WARNING"):
        wait_until(lambda: mailbox.messages, timeout=30, what="the worker to send the mail")  # ...the worker does
        wait_until(lambda: Delivery.objects.get().state == "Sent", timeout=15, what="the delivery recorded as sent")
    assert len(mailbox.messages) == 1


def test_notifyworker_needs_a_broker(settings: Any) -> None:
    from django.core.management import CommandError, call_command

    settings.CELERY_BROKER_URL = ""
    with pytest.raises(CommandError, match="CELERY_BROKER_URL"):
        call_command("notifyworker")
