from __future__ import annotations

import ipaddress
import re

import pytest
from kaci.edges import urlpolicy as up

BLOCKED = up.parse_networks("10.96.0.0/12,10.0.0.1/32")


def fixed(*addrs: str) -> up.Resolver:
    return lambda host, port: list(addrs)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://x/y", "gopher://x", "x/y", "http://user:pw@host/m"]
)
def test_bad_syntax_refused(url: str) -> None:
    with pytest.raises(up.URLRefusedError):
        up.check_url(url, BLOCKED, [], fixed("93.184.216.34"))


@pytest.mark.parametrize(
    "addr",
    [
        "127.0.0.1",
        "::1",
        "169.254.169.254",
        "10.96.0.1",
        "10.0.0.1",
        "0.0.0.0",  # noqa: S104
        "fe80::1",
        "224.0.0.1",
    ],
)
def test_internal_addresses_refused(addr: str) -> None:
    with pytest.raises(up.URLRefusedError):
        up.check_url("https://models.example/m.pkl", BLOCKED, [], fixed(addr))


def test_any_bad_address_among_several_refuses() -> None:
    with pytest.raises(up.URLRefusedError):
        up.check_url("https://m.example/x", BLOCKED, [], fixed("93.184.216.34", "127.0.0.1"))


def test_public_and_allowed_pass() -> None:
    up.check_url("https://m.example/x", BLOCKED, [], fixed("93.184.216.34"))
    allowed = up.parse_networks("127.0.0.1/32")
    up.check_url("http://127.0.0.1:8000/x", BLOCKED, allowed, fixed("127.0.0.1"))


def test_unresolvable_refused() -> None:
    def boom(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(up.URLRefusedError, match="does not resolve"):
        up.check_url("https://nope.invalid/x", [], [], boom)


def test_syntax_gives_default_ports() -> None:
    assert up.check_syntax("https://h/x") == ("h", 443)
    assert up.check_syntax("http://h:81/x") == ("h", 81)
    assert up.parse_networks("") == []
    assert up.parse_networks("10.0.0.0/8")[0] == ipaddress.ip_network("10.0.0.0/8")


def _ip(text: str) -> up.Address:
    return ipaddress.ip_address(text)


# This local cluster as the operator sees it: its client talks to 127.0.0.1:6443, the
# `default/kubernetes` Endpoints name the node address, and the CNI sets no podCIDR.
# A managed control plane (not a node) at 172.20.0.9 stands for other clusters.
CLUSTER = up.ClusterAddresses(
    api_server=frozenset(
        {(_ip("127.0.0.1"), 6443), (_ip("10.88.0.1"), 6443), (_ip("172.20.0.9"), 443)}
    ),
    api_hosts=frozenset({_ip("10.88.0.1"), _ip("172.20.0.9")}),
    nodes=frozenset({_ip("10.88.0.1"), _ip("192.168.5.7")}),
)
WITH_POD_RANGE = up.ClusterAddresses(
    api_server=CLUSTER.api_server,
    api_hosts=CLUSTER.api_hosts,
    nodes=CLUSTER.nodes,
    pod_networks=tuple(up.parse_networks("10.244.0.0/16")),
)


def pods(*ips: str) -> up.PodLookup:
    running = {_ip(a) for a in ips}
    return lambda addr: addr in running


def test_api_server_refused_even_when_its_network_is_allowed() -> None:
    allowed = up.parse_networks("127.0.0.1/32")
    with pytest.raises(up.URLRefusedError, match="API server"):
        up.check_url("https://127.0.0.1:6443/api", [], allowed, fixed("127.0.0.1"), CLUSTER)
    # The client's address is refused on the API server's port only: a test file server
    # on another port of an allowed loopback address is still reachable.
    up.check_url("http://127.0.0.1:8000/m.pkl", [], allowed, fixed("127.0.0.1"), CLUSTER)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://10.88.0.1:6443/api", "10.88.0.1 is the Kubernetes API server"),
        # the same host is a node too: its other ports are the node's
        ("https://10.88.0.1:10250/pods", "10.88.0.1 is a cluster node"),
        ("https://172.20.0.9/api", "172.20.0.9 is the Kubernetes API server"),
        # a control-plane host that is no node: every port (etcd, schedulers...)
        ("http://172.20.0.9:2379/v2/keys", "172.20.0.9 is the Kubernetes API server's host"),
    ],
)
def test_api_server_refused_on_every_port_even_when_allowed(url: str, why: str) -> None:
    allowed = up.parse_networks("10.88.0.0/16,172.16.0.0/12")
    host = url.split("//", 1)[1].split(":", 1)[0].split("/", 1)[0]
    with pytest.raises(up.URLRefusedError, match=re.escape(why)):
        up.check_url(url, BLOCKED, allowed, fixed(host), CLUSTER)


@pytest.mark.parametrize("url", ["https://192.168.5.7:10250/pods", "http://192.168.5.7/m.pkl"])
def test_node_refused_on_every_port_even_when_allowed(url: str) -> None:
    allowed = up.parse_networks("192.168.0.0/16")
    with pytest.raises(up.URLRefusedError, match=re.escape("192.168.5.7 is a cluster node")):
        up.check_url(url, BLOCKED, allowed, fixed("192.168.5.7"), CLUSTER)


def test_node_name_resolving_to_a_node_address_refused() -> None:
    with pytest.raises(up.URLRefusedError, match="is a cluster node"):
        up.check_url("http://kaci-node:10255/metrics", BLOCKED, [], fixed("192.168.5.7"), CLUSTER)


def test_running_pod_ip_refused_by_default() -> None:
    with pytest.raises(up.URLRefusedError, match=r"^10\.88\.3\.4 is a Pod in the cluster$"):
        up.check_url(
            "http://10.88.3.4:8080/m.pkl",
            BLOCKED,
            [],
            fixed("10.88.3.4"),
            CLUSTER,
            pods("10.88.3.4"),
        )
    # Another address of the same range that no Pod has now passes (no podCIDR known).
    up.check_url(
        "http://10.88.3.5/m.pkl", BLOCKED, [], fixed("10.88.3.5"), CLUSTER, pods("10.88.3.4")
    )


def test_pod_range_refused_when_nodes_have_pod_cidrs() -> None:
    with pytest.raises(up.URLRefusedError, match=re.escape("Pod network 10.244.0.0/16")):
        up.check_url("http://10.244.1.9/m.pkl", BLOCKED, [], fixed("10.244.1.9"), WITH_POD_RANGE)


def test_allow_list_lets_a_model_store_pod_through() -> None:
    # A model store run as a Pod on purpose: allowing its address is the admin's choice.
    allowed = up.parse_networks("10.88.3.4/32,10.244.1.0/24")
    up.check_url(
        "http://10.88.3.4/m.pkl", BLOCKED, allowed, fixed("10.88.3.4"), CLUSTER, pods("10.88.3.4")
    )
    up.check_url("http://10.244.1.9/m.pkl", BLOCKED, allowed, fixed("10.244.1.9"), WITH_POD_RANGE)


def test_pod_lookup_only_for_addresses_nothing_else_decided() -> None:
    asked: list[up.Address] = []

    def lookup(addr: up.Address) -> bool:
        asked.append(addr)
        return False

    allowed = up.parse_networks("127.0.0.1/32")
    up.check_url("http://127.0.0.1:8000/m", [], allowed, fixed("127.0.0.1"), CLUSTER, lookup)
    for addr in ("10.96.0.1", "169.254.169.254", "10.88.0.1"):
        with pytest.raises(up.URLRefusedError):
            up.check_url(f"http://{addr}/m", BLOCKED, [], fixed(addr), CLUSTER, lookup)
    assert asked == []
    up.check_url("https://m.example/x", BLOCKED, [], fixed("93.184.216.34"), CLUSTER, lookup)
    assert asked == [_ip("93.184.216.34")]


def test_every_resolved_address_is_checked_against_the_cluster() -> None:
    with pytest.raises(up.URLRefusedError, match="is a cluster node"):
        up.check_url(
            "https://m.example/x", BLOCKED, [], fixed("93.184.216.34", "192.168.5.7"), CLUSTER
        )


def test_a_resolver_answer_that_is_no_address_is_refused() -> None:
    with pytest.raises(up.URLRefusedError, match="not an IP address"):
        up.check_url("https://m.example/x", BLOCKED, [], fixed("m.example"))
