"""Webhooks never reach the server's own network (server-side request forgery): a URL that leads
there is refused when the rule is made and again at delivery, after its name is resolved, before any
connection; and the request goes to the very address that was checked, so a name cannot answer a
public address for the check and 127.0.0.1 for the connection (DNS rebinding).

Every receiver here listens on 127.0.0.1 and every name is localhost or one that never resolves:
no request leaves the machine."""

from __future__ import annotations

import dataclasses
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from urllib3.exceptions import NewConnectionError, SSLError

from runs import notify, webhooks
from runs.models import AlertRule, Delivery, InvalidValue, Workspace
from tests.conftest import make_run
from tests.test_notifications import Receiver, free_port, rule_for

pytestmark = pytest.mark.django_db

ALLOW = "NOTIFY_WEBHOOK_ALLOWED_HOSTS"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver(free_port())
    box.start()
    yield box
    box.stop()


# --- which addresses ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local (cloud metadata)"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.1", "private"),
        ("fc00::1", "private"),
        ("fd00:ec2::254", "private"),  # AWS's IPv6 metadata address
        ("fec0::1", "site-local"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "non-public"),  # documentation
        ("198.18.0.1", "non-public"),  # benchmarking
        ("2001:db8::1", "non-public"),
        # IPv6 addresses that carry an IPv4 one are judged by the IPv4 address they reach.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local (cloud metadata)"),
        ("64:ff9b::a00:1", "private"),  # NAT64 to 10.0.0.1
        ("2002:c0a8:1::", "private"),  # 6to4 of 192.168.0.1
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),
    ],
)
def test_each_kind_of_address_that_is_not_public_is_refused(address: str, kind: str | None) -> None:
    assert webhooks.refusal(ipaddress.ip_address(address)) == kind


# --- when the rule is made ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://127.0.0.1:8000/admin/", "points at 127.0.0.1, a loopback address"),
        ("http://localhost:8000/", "resolves to a loopback address"),
        ("http://LOCALHOST:80/", "resolves to a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local (cloud metadata) address"),
        ("http://[::ffff:169.254.169.254]/", "a link-local (cloud metadata) address"),
        ("http://0.0.0.0:8000/", "an unspecified address"),
        ("http://[::]/", "an unspecified address"),
        ("http://[::1]:6379/", "a loopback address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("https://10.0.0.5/hook", "a private address"),
        ("https://[fd12:3456::1]/hook", "a private address"),
        ("http://224.0.0.251/", "a multicast address"),
        ("http://user:secret@192.168.1.1/", "a private address"),
    ],
)
def test_a_rule_cannot_name_the_servers_network(workspace: Workspace, alice: Any, url: str, said: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        rule_for(workspace, alice, webhook_url=url)
    assert refused.value.target == "webhookUrl"
    assert said in refused.value.message and ALLOW in refused.value.message
    assert not AlertRule.objects.exists()


def test_a_refused_name_is_not_told_its_address(workspace: Workspace, alice: Any) -> None:
    # Otherwise making rules would be a way to look up the internal network's names.
    with pytest.raises(InvalidValue) as refused:
        rule_for(workspace, alice, webhook_url="http://localhost:5432/")
    assert "127.0.0.1" not in refused.value.message


def test_the_operator_allows_hosts_by_name_address_or_network(workspace: Workspace, alice: Any, settings: Any) -> None:
    settings.NOTIFY_WEBHOOK_ALLOWED_HOSTS = ["localhost", "10.0.0.0/8", "::1"]
    for url in ("http://localhost:9/", "http://LOCALHOST:9/x", "http://10.1.2.3/", "http://[::1]:9/"):
        assert rule_for(workspace, alice, webhook_url=url).webhook_url == url
    # Allowing a name allows that name, not the address it has; a network allows no other.
    for url in ("http://127.0.0.1:9/", "http://192.168.0.1/"):
        with pytest.raises(InvalidValue):
            rule_for(workspace, alice, webhook_url=url)


def test_only_http_and_https_are_called() -> None:
    for url in ("ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://localhost:6379/_INFO"):
        with pytest.raises(webhooks.RefusedTarget, match="not an http"):
            webhooks.resolve(url, ["127.0.0.1", "localhost"])


# --- when it is delivered -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_a_delivery_into_the_servers_network_is_refused_before_connecting_and_not_retried(
    workspace: Workspace, alice: Any, receiver: Receiver, settings: Any, host: str
) -> None:
    """The rule was made while the host was allowed (or before this check existed, or while its name
    answered a public address); what counts is where the name leads when the message goes out."""
    settings.NOTIFY_RETRY_BASE = 0.05
    settings.NOTIFY_WEBHOOK_ALLOWED_HOSTS = [host]
    rule_for(workspace, alice, webhook_url=f"http://{host}:{receiver.port}/hooks/studio")
    settings.NOTIFY_WEBHOOK_ALLOWED_HOSTS = []
    make_run(workspace, alice).fail(message="boom")
    assert notify.deliver_due() == 0
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("Failed", 1)
    assert "a loopback address" in delivery.last_error and ALLOW in delivery.last_error
    time.sleep(0.2)  # past any retry's backoff: there is none
    assert notify.deliver_due() == 0
    assert Delivery.objects.get().attempts == 1
    assert receiver.calls == []  # nothing ever reached the receiver listening there


def test_an_allowed_name_is_called_at_its_checked_address_with_its_own_host_header(
    workspace: Workspace, alice: Any, receiver: Receiver, settings: Any
) -> None:
    settings.NOTIFY_WEBHOOK_ALLOWED_HOSTS = ["localhost"]
    rule_for(workspace, alice, webhook_url=f"http://localhost:{receiver.port}/hooks/studio?team=ml")
    make_run(workspace, alice).fail(message="boom")
    assert notify.deliver_due() == 1
    [(headers, _body)] = receiver.calls
    assert headers["Host"] == f"localhost:{receiver.port}"
    assert Delivery.objects.get().state == "Sent"


def test_the_request_goes_to_the_checked_address_and_the_name_is_not_looked_up_again(receiver: Receiver) -> None:
    """DNS rebinding: a name whose answer passed the check must not be asked again when connecting,
    where it could answer 127.0.0.1. Here the checked answer is 127.0.0.1 (allowed) and the name, in
    the reserved .example domain, resolves nowhere: the call arrives only because there is no second
    lookup, and the receiver sees the name in the Host header."""
    checked = webhooks.resolve(f"http://127.0.0.1:{receiver.port}/hooks/studio", ["127.0.0.1"])
    target = dataclasses.replace(checked, host="rebind.example", host_header=f"rebind.example:{receiver.port}")
    response = webhooks.post(target, b"{}", {"Content-Type": "application/json"}, timeout=5)
    assert response.status == 200
    [(headers, body)] = receiver.calls
    assert (headers["Host"], body) == (f"rebind.example:{receiver.port}", b"{}")


def test_a_delivery_tries_at_most_three_of_a_names_addresses(receiver: Receiver) -> None:
    """Each dead address may cost the whole connect timeout, and the sender's lease on a delivery is
    limited: a name with many dead addresses must not keep it past the lease (and be sent twice). The
    receiver listens on 127.0.0.1 only, so 127.0.0.2-4 refuse the connection on its port."""
    checked = webhooks.resolve(f"http://127.0.0.1:{receiver.port}/hooks/studio", ["127.0.0.0/8"])
    dead = tuple(ipaddress.ip_address(f"127.0.0.{n}") for n in (2, 3, 4))
    third = dataclasses.replace(checked, addresses=(*dead[:2], *checked.addresses))
    assert webhooks.post(third, b"{}", {}, timeout=5).status == 200
    fourth = dataclasses.replace(checked, addresses=(*dead, *checked.addresses))
    with pytest.raises(NewConnectionError):
        webhooks.post(fourth, b"{}", {}, timeout=5)
    assert len(receiver.calls) == 1


class TLSReceiver:
    """An https server on 127.0.0.1 whose certificate (from a test CA) names hooks.example; it notes
    the SNI each client sent and the Host of each request."""

    def __init__(self, ca: trustme.CA) -> None:
        self.sni: list[str | None] = []
        self.hosts: list[str] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("hooks.example").configure_cert(context)
        context.sni_callback = lambda _sock, name, _context: self.sni.append(name)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.hosts.append(self.headers["Host"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls_receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TLSReceiver]:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))  # as an operator names an own CA
    server = TLSReceiver(ca)
    yield server
    server.stop()


def test_https_to_the_checked_address_still_verifies_the_certificate_against_the_name(
    tls_receiver: TLSReceiver,
) -> None:
    checked = webhooks.resolve(f"https://127.0.0.1:{tls_receiver.port}/hook", ["127.0.0.1"])

    def pinned(name: str) -> webhooks.Target:
        return dataclasses.replace(checked, host=name, host_header=f"{name}:{tls_receiver.port}")

    assert webhooks.post(pinned("hooks.example"), b"{}", {}, timeout=5).status == 204
    assert (tls_receiver.sni, tls_receiver.hosts) == (["hooks.example"], [f"hooks.example:{tls_receiver.port}"])
    with pytest.raises(SSLError, match="hostname|match"):
        webhooks.post(pinned("other.example"), b"{}", {}, timeout=5)  # the certificate names someone else
    assert tls_receiver.hosts == [f"hooks.example:{tls_receiver.port}"]  # nothing sent to the wrong name
