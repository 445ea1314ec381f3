"""Where a webhook may go: resolved once, checked, and connected to exactly the address that was checked.

A receiver URL is refused when any address its host resolves to is not a public unicast address: loopback,
private, link-local (169.254.169.254, the metadata service), CGNAT, multicast, reserved, unspecified, and
the same hidden inside IPv6 (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4, Teredo). An IPv6
address must be global unicast (``2000::/3``) or the well-known NAT64 prefix, so IPv4-compatible
``::a.b.c.d``, local-use NAT64 ``64:ff9b:1::/48``, site-local ``fec0::/10`` and every other range are refused.
Odd IPv4 spellings (decimal ``2852039166``, octal ``0251.0376.0251.0376``) resolve to their real address
first, so they meet the same check. Resolving at connect time and pinning the connection to the checked
address defeats DNS rebinding. Loopback alone can be allowed for local development.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")
GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")


class BlockedDestination(Exception):
    """The webhook URL is not allowed; the message says why (it is recorded on the task)."""


def _embedded(ip: IPAddress) -> list[IPAddress]:
    """The address itself and any IPv4 address an IPv6 form carries."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]  # ::ffff:a.b.c.d is only another spelling of a.b.c.d
    found: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in NAT64:
            found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None:
            found.append(ip.sixtofour)
        if ip.teredo is not None:
            found.extend(ip.teredo)
    return found


def check_address(ip: IPAddress, allow_loopback: bool = False) -> None:
    if (
        isinstance(ip, ipaddress.IPv6Address)
        and ip.ipv4_mapped is None
        and ip not in GLOBAL_UNICAST
        and ip not in NAT64
        and not (allow_loopback and ip.is_loopback)
    ):
        raise BlockedDestination(f"{ip} is not a global unicast address")
    for candidate in _embedded(ip):
        if allow_loopback and candidate.is_loopback:
            continue
        if not candidate.is_global or candidate.is_multicast:
            raise BlockedDestination(f"{ip} is not a public address")


def check_registered(url: str, allow_loopback: bool = False) -> None:
    """What can be refused when a webhook is registered, before any lookup: credentials in the URL and a
    literal address that is not public. Host names are checked when connecting (they may change)."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise BlockedDestination("the URL must not carry credentials")
    host = (parts.hostname or "").strip("[]")
    try:
        literal = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return
    check_address(literal, allow_loopback)


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    target: str  # path and query
    address: str  # the checked address the connection goes to


def resolve(url: str, allow_loopback: bool = False, https_only: bool = False) -> Destination:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or (https_only and parts.scheme != "https"):
        raise BlockedDestination(
            "only https URLs are allowed" if https_only else "only http(s) URLs are allowed"
        )
    if not parts.hostname or parts.username or parts.password:
        raise BlockedDestination("the URL needs a host and no credentials")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as error:
        raise BlockedDestination(f"{parts.hostname} does not resolve") from error
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        check_address(address, allow_loopback)
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    return Destination(parts.scheme, parts.hostname, port, target, str(addresses[0]))


class PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to the checked address, whatever the host name resolves to now."""

    def __init__(self, destination: Destination, timeout: float) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout)
        self._address = destination.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the checked address; the certificate is still verified against the host name."""

    def __init__(self, destination: Destination, timeout: float) -> None:
        super().__init__(
            destination.host, destination.port, timeout=timeout, context=ssl.create_default_context()
        )
        self._address = destination.address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def connection(destination: Destination, timeout: float) -> http.client.HTTPConnection:
    if destination.scheme == "https":
        return PinnedHTTPSConnection(destination, timeout)
    return PinnedHTTPConnection(destination, timeout)
