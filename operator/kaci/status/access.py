"""Where a Webservice is reached, and how many replicas it runs (pure).

status.scoringUri and swaggerUri give the outside address when there is one, in this
order: the Ingress (its base URL + Azure's /api/v1/service/<name>/...), a LoadBalancer
Service's ingress IP or hostname, a NodePort Service's port on a node's address;
cluster DNS otherwise (and while a LoadBalancer waits for its address).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kaci import api

CLUSTER = "Cluster"
INGRESS = "Ingress"
NODE_PORT = "NodePort"
LOAD_BALANCER = "LoadBalancer"


@dataclass(frozen=True)
class Access:
    kind: str  # Cluster | Ingress | NodePort | LoadBalancer
    base: str  # scoringUri = base + "/score", swaggerUri = base + "/swagger.json"

    @property
    def scoring_uri(self) -> str:
        return f"{self.base}/score"

    @property
    def swagger_uri(self) -> str:
        return f"{self.base}/swagger.json"


def cluster_base(name: str, namespace: str, cluster_domain: str) -> str:
    return f"http://{name}.{namespace}.svc.{cluster_domain}"


def _load_balancer_host(service: Mapping[str, Any]) -> str | None:
    for entry in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        host = entry.get("ip") or entry.get("hostname")
        if host:
            return str(host)
    return None


def _node_port(service: Mapping[str, Any]) -> int | None:
    for port in (service.get("spec") or {}).get("ports") or []:
        if port.get("nodePort"):
            return int(port["nodePort"])
    return None


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def access(
    name: str,
    namespace: str,
    dc: Mapping[str, Any],
    service: Mapping[str, Any] | None,
    cluster_domain: str,
    ingress_base_url: str | None,
    node_address: str | None,
) -> Access:
    """The address to put into status (see the module's docstring)."""
    inside = Access(CLUSTER, cluster_base(name, namespace, cluster_domain))
    if (dc.get("ingress") or {}).get("enabled") and ingress_base_url:
        return Access(INGRESS, f"{ingress_base_url.rstrip('/')}/api/v1/service/{name}")
    kind = dc.get("serviceType", "ClusterIP")
    if service is None or kind == "ClusterIP":
        return inside
    if kind == LOAD_BALANCER:
        host = _load_balancer_host(service)
        if host:
            return Access(LOAD_BALANCER, f"http://{_host(host)}:{api.SERVICE_PORT}")
    port = _node_port(service)
    if kind == NODE_PORT and port and node_address:
        return Access(NODE_PORT, f"http://{_host(node_address)}:{port}")
    return inside
