"""Which model URLs the operator downloads from (pure checks + the resolution edge).

The operator runs inside the cluster with its own credentials and network
position, so a URL in a user's Model must not make it talk to places the user
could not reach: refused are non-http(s) schemes, credentials in the URL, and
hosts that resolve to
- loopback (127.0.0.0/8, ::1) - the operator's own node or Pod,
- link-local (169.254.0.0/16, fe80::/10) - cloud metadata services live there,
- unspecified / multicast / reserved addresses,
- the cluster's Service range (given as `blocked_networks`, from settings) -
  internal services are not model stores,
unless the operator is configured to allow a network (`allowed_networks`, e.g.
a local test server on 127.0.0.1). The Kubernetes API server's own address and
port (`api_endpoints`) are refused even then. Redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class URLRefusedError(ValueError):
    pass


def parse_networks(text: str | None) -> list[Network]:
    if not text:
        return []
    return [
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    ]


def check_syntax(url: str) -> tuple[str, int]:
    """(host, port) of an acceptable URL, or URLRefusedError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise URLRefusedError(
            f"URL scheme {parts.scheme or '(none)'!r} is refused: use http or https"
        )
    if parts.username or parts.password:
        raise URLRefusedError("URLs with credentials are refused: use a public or pre-signed URL")
    if not parts.hostname:
        raise URLRefusedError(f"URL {url!r} has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise URLRefusedError(f"URL {url!r} has a bad port") from e
    return parts.hostname, port


def check_address(
    addr: Address,
    blocked: Iterable[Network],
    allowed: Iterable[Network],
    api_server: bool = False,
) -> None:
    if api_server:
        raise URLRefusedError(f"{addr} is the Kubernetes API server")
    if any(addr in net for net in allowed):
        return
    if addr.is_loopback:
        raise URLRefusedError(f"{addr} is a loopback address")
    if addr.is_link_local:
        raise URLRefusedError(f"{addr} is link-local (cloud metadata services live there)")
    if addr.is_unspecified or addr.is_multicast or addr.is_reserved:
        raise URLRefusedError(f"{addr} is not a routable unicast address")
    for net in blocked:
        if addr in net:
            raise URLRefusedError(f"{addr} is inside the cluster-internal network {net}")


Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]


def check_url(
    url: str,
    blocked: Iterable[Network],
    allowed: Iterable[Network],
    resolve: Resolver = system_resolver,
    api_endpoints: Iterable[tuple[str, int]] = (),
) -> None:
    """Refuse the URL if any address its host resolves to is refused."""
    host, port = check_syntax(url)
    blocked, allowed = list(blocked), list(allowed)
    api = {(ipaddress.ip_address(a), p) for a, p in api_endpoints}
    try:
        addresses = resolve(host, port)
    except OSError as e:
        raise URLRefusedError(f"host {host!r} does not resolve: {e}") from e
    if not addresses:
        raise URLRefusedError(f"host {host!r} does not resolve")
    for a in addresses:
        ip = ipaddress.ip_address(a.split("%", 1)[0])
        check_address(ip, blocked, allowed, api_server=(ip, port) in api)
