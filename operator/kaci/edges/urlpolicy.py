"""Which model URLs the operator downloads from (pure checks + the resolution edge).

The operator runs inside the cluster with its own credentials and network
position, so a URL in a user's Model must not make it talk to places the user
could not reach: refused are non-http(s) schemes, credentials in the URL, and
hosts that resolve to
- the Kubernetes API server: the address and port the operator's own client
  uses (in a Pod, the `kubernetes` Service IP) and its real endpoints (the
  `default/kubernetes` Endpoints object) - on any port of those hosts, as they
  run the rest of the control plane too,
- a cluster node (Node status.addresses), on any port - the kubelet (:10250),
  node exporters and host-network Pods listen there,
- loopback (127.0.0.0/8, ::1) - the operator's own node or Pod,
- link-local (169.254.0.0/16, fe80::/10) - cloud metadata services live there,
- unspecified / multicast / reserved addresses,
- the cluster's Service range (given as `blocked_networks`, from settings) -
  internal services are not model stores,
- the cluster's Pod network (Node spec.podCIDRs) and any address a Pod of the
  cluster has now (CNIs that do not set podCIDRs still give every Pod an IP),
unless the operator is configured to allow a network (`allowed_networks`, e.g.
a local test file server on 127.0.0.1, or a model store run as a Pod on
purpose). The API server and the nodes are refused even then: the allow list
says where model stores are, and a control-plane host or kubelet never is one.
Redirects are not followed, and the download connects to an address checked
here (kaci.download) rather than resolving the host again (DNS rebinding).

What the cluster's own addresses are comes from the Kubernetes API (the edge in
modelsource); this module only decides.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class URLRefusedError(ValueError):
    pass


@dataclass(frozen=True)
class ClusterAddresses:
    """The cluster's own addresses, as read from the Kubernetes API.

    `api_server`: the (address, port) pairs the API server answers on; `api_hosts`: the
    hosts of its real endpoints (every port refused); `pod_networks`: the nodes'
    podCIDRs (empty when the CNI sets none).
    """

    api_server: frozenset[tuple[Address, int]] = frozenset()
    api_hosts: frozenset[Address] = frozenset()
    nodes: frozenset[Address] = frozenset()
    pod_networks: tuple[Network, ...] = ()


# Is this address a Pod's IP right now? (an API look-up at the edge)
PodLookup = Callable[[Address], bool]


def _no_pods(_: Address) -> bool:
    return False


def parse_networks(text: str | None) -> list[Network]:
    if not text:
        return []
    return [
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    ]


def parse_address(text: str) -> Address | None:
    """An IP address without its zone (`fe80::1%eth0`), or None for a name."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


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
    port: int,
    blocked: Iterable[Network],
    allowed: Iterable[Network],
    cluster: ClusterAddresses = ClusterAddresses(),
    is_pod: PodLookup = _no_pods,
) -> None:
    # Never overridden by the allow list: these are the cluster itself.
    if (addr, port) in cluster.api_server:
        raise URLRefusedError(f"{addr} is the Kubernetes API server")
    if addr in cluster.nodes:
        raise URLRefusedError(f"{addr} is a cluster node (its kubelet and host services)")
    if addr in cluster.api_hosts:
        raise URLRefusedError(f"{addr} is the Kubernetes API server's host")
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
    for net in cluster.pod_networks:
        if addr in net:
            raise URLRefusedError(f"{addr} is in the cluster's Pod network {net}")
    # Last, as it may cost an API call: only addresses nothing above decided.
    if is_pod(addr):
        raise URLRefusedError(f"{addr} is a Pod in the cluster")


Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]


def check_url(
    url: str,
    blocked: Iterable[Network],
    allowed: Iterable[Network],
    resolve: Resolver = system_resolver,
    cluster: ClusterAddresses = ClusterAddresses(),
    is_pod: PodLookup = _no_pods,
) -> list[str]:
    """Refuse the URL if any address its host resolves to is refused; else the addresses.

    The caller connects to one of the returned addresses instead of resolving the host
    again, so a DNS answer that changes between check and download cannot slip past.
    """
    host, port = check_syntax(url)
    blocked, allowed = list(blocked), list(allowed)
    try:
        addresses = resolve(host, port)
    except OSError as e:
        raise URLRefusedError(f"host {host!r} does not resolve: {e}") from e
    if not addresses:
        raise URLRefusedError(f"host {host!r} does not resolve")
    for a in addresses:
        ip = parse_address(a)
        if ip is None:
            raise URLRefusedError(f"host {host!r} resolved to {a!r}, not an IP address")
        check_address(ip, port, blocked, allowed, cluster, is_pod)
    return [str(parse_address(a)) for a in addresses]
