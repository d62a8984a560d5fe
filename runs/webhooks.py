"""Where a webhook may go, and calling it at exactly the address that was checked.

A webhook URL is typed by any Contributor, and the server calls it: without a check, that is a way
to make the server request its own network (server-side request forgery): its admin ports on
loopback, the database on a private address, the cloud metadata service at 169.254.169.254. So a
URL's host is resolved once, every address it resolves to must be public (``refusal``), and the
request then goes to one of those very addresses, the URL's name kept in the ``Host`` header, in
SNI and in the certificate check (``post``). Resolving again to connect would let a name that
answered with a public address for the check answer with 127.0.0.1 for the connection (DNS
rebinding). An operator whose receivers live on the private network names them in
``NOTIFY_WEBHOOK_ALLOWED_HOSTS``.

Pure: no Django. ``AlertRule.create_rule`` checks a rule's URL when it is made, and
``runs.notify.send_webhook`` again before every delivery.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = {"http": 80, "https": 443}
ALLOW_SETTING = "NOTIFY_WEBHOOK_ALLOWED_HOSTS"

_PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")]
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: the provider's network, not the internet
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: the last 32 bits are an IPv4 address
_METADATA = ipaddress.ip_address("169.254.169.254")


class RefusedTarget(Exception):
    """The URL leads into the server's own network (or is not http(s)): sending it again never helps."""


def refusal(address: IPAddress) -> str | None:
    """What kind of address this is when a webhook may not go there (None: a public address).

    Refused: unspecified, loopback, link-local, multicast, private (RFC 1918, IPv6 unique local),
    IPv6 site-local, carrier-grade NAT, reserved, and whatever else is not globally routable
    (documentation, benchmarking, broadcast). An IPv6 address that carries an IPv4 one (IPv4-mapped,
    NAT64, 6to4) is judged by the IPv4 address it reaches."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return refusal(embedded)
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address == _METADATA:
        return "link-local (cloud metadata)"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local"
    if any(address in network for network in _PRIVATE):
        return "private"
    if address in _SHARED:
        return "shared (carrier-grade NAT)"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "non-public"
    return None


@dataclass(frozen=True)
class Allowed:
    """The operator's exceptions: host names (the URL's host as written) and addresses or networks."""

    names: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowed:
        names, networks = set(), []
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.add(entry.lower().rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def allows(self, host: str, address: IPAddress) -> bool:
        if host in self.names:
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


@dataclass(frozen=True)
class Target:
    """A webhook URL taken apart, with the addresses its host resolved to, every one of them checked."""

    scheme: str
    host: str  # lower case, ASCII (IDNA), no brackets: what SNI and the certificate check use
    port: int
    host_header: str
    path: str  # with the query
    userinfo: str | None
    addresses: tuple[IPAddress, ...]


def resolve(url: str, allowed_hosts: Iterable[str]) -> Target:
    """Resolve the URL's host once and check every address it has.

    Raises ``RefusedTarget`` when the scheme is not http(s) or any address is refused and not allowed
    (one refused address refuses the whole name: which one a connection would get is the name
    owner's choice), and ``OSError`` when the name does not resolve (that may pass)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise RefusedTarget(f"{url!r} is not an http(s) URL")
    try:
        host = (parts.hostname or "").rstrip(".")
        port = parts.port or SCHEMES[scheme]
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        raise RefusedTarget(f"{url!r} has no valid host and port") from None
    if not host:
        raise RefusedTarget(f"{url!r} has no host")
    if host == "invalid" or host.endswith(".invalid"):
        # RFC 6761: such names never resolve, so no query need leave the machine to learn it.
        raise socket.gaierror(socket.EAI_NONAME, f"{host} is a reserved name that never resolves")
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = tuple(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in found))
    allowed = Allowed.parse(allowed_hosts)
    for address in addresses:
        kind = refusal(address)
        if kind is not None and not allowed.allows(host, address):
            # A name's addresses are not told: that would make rule-making a lookup of internal names.
            where = f"points at {address}," if _is_literal(host) else "resolves to"
            article = "an" if kind[0] in "aeiou" else "a"
            raise RefusedTarget(
                f"{url!r} {where} {article} {kind} address; webhooks go only to public addresses"
                f" unless the server's {ALLOW_SETTING} names the host"
            )
    bracketed = f"[{host}]" if ":" in host else host
    return Target(
        scheme=scheme,
        host=host,
        port=port,
        host_header=bracketed if parts.port is None else f"{bracketed}:{parts.port}",
        path=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        userinfo=unquote(parts.netloc.rpartition("@")[0]) or None,
        addresses=addresses,
    )


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# A delivery is leased to one sender for NOTIFY_LEASE (120 s); connecting to each address may take the
# whole timeout (10 s), so a name with many dead addresses must not outlast the lease and be sent twice.
ADDRESSES_TRIED = 3


def post(target: Target, body: bytes, headers: Mapping[str, str], timeout: float) -> urllib3.BaseHTTPResponse:
    """POST ``body`` to the target's checked addresses, in turn until one takes the connection (the first
    ``ADDRESSES_TRIED``). The name is never looked up again; over https the certificate is still checked
    against the name."""
    headers = {"Host": target.host_header, **headers}
    if target.userinfo:
        headers.update(urllib3.make_headers(basic_auth=target.userinfo))
    error: Exception = OSError(f"{target.host} has no address")
    for address in target.addresses[:ADDRESSES_TRIED]:
        with _pool(target, address, timeout) as pool:
            try:
                # No retries and no redirects: a redirect would take the signed body to an unchecked place.
                return pool.urlopen(
                    "POST",
                    target.path,
                    body=body,
                    headers=headers,
                    retries=False,
                    redirect=False,
                    assert_same_host=False,
                )
            except (NewConnectionError, ConnectTimeoutError) as refused:
                error = refused
    raise error


def _pool(target: Target, address: IPAddress, timeout: float) -> urllib3.HTTPConnectionPool:
    if target.scheme == "http":
        return urllib3.HTTPConnectionPool(str(address), target.port, timeout=timeout, maxsize=1)
    return urllib3.HTTPSConnectionPool(
        str(address),
        target.port,
        timeout=timeout,
        maxsize=1,
        cert_reqs="CERT_REQUIRED",
        # The bundle requests would use (REQUESTS_CA_BUNDLE names an operator's own CA).
        ca_certs=os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or DEFAULT_CA_BUNDLE_PATH,
        server_hostname=target.host,
        assert_hostname=target.host,
    )
