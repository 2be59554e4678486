"""Calling a Webservice's /score from outside the cluster, without an ingress.

Two ways through the Kubernetes API server, both with the kubeconfig's credentials:

- the service proxy `/api/v1/namespaces/<ns>/services/<name>:80/proxy/score`:
  goes through the Service exactly like an in-cluster client. But the API server's
  authentication filter deletes the `Authorization` header of every request it
  authenticated (k8s.io/apiserver, filters/authentication.go), so a service key
  sent this way never reaches the runtime.
- a port-forward (pods/portforward, over a websocket) to a ready Pod of the
  Webservice: raw TCP to the container's port 5001, so the request arrives
  byte for byte, `Authorization: Bearer <key>` included.

run() uses the service proxy, and on a 401 from a service with auth enabled
retries once with the key through the port-forward (Azure's retry-on-401); a token
(token auth) goes through the port-forward from the start.

A Webservice with an outside address (status.access Ingress, NodePort or
LoadBalancer) is called at that address directly, as Azure's notebooks do: `direct`.
"""

from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kaci.azureml.exceptions import ClusterUnreachableException, WebserviceException

if TYPE_CHECKING:  # the kubernetes client is imported only when a request is made
    from kaci.azureml._kube import Kube

CONTAINER_PORT = 5001
SERVICE_PORT = 80


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def proxy_path(namespace: str, name: str, path: str = "score") -> str:
    return f"/api/v1/namespaces/{namespace}/services/{name}:{SERVICE_PORT}/proxy/{path}"


def via_service_proxy(
    kube: Kube,
    name: str,
    body: bytes,
    headers: dict[str, str],
    path: str = "score",
    method: str = "POST",
    timeout: float = 120.0,
) -> Response:
    api = kube.api
    resource = proxy_path(kube.namespace, name, path)
    hdrs: dict[str, Any] = dict(headers)
    api.update_params_for_auth(hdrs, [], ["BearerToken"], resource, method, None)
    url = api.configuration.host.rstrip("/") + resource
    try:
        resp = api.rest_client.pool_manager.request(
            method,
            url,
            body=body if method != "GET" else None,
            headers=hdrs,
            timeout=timeout,
            preload_content=True,
            retries=False,
        )
    except Exception as exc:  # urllib3 errors: the API server is unreachable
        raise ClusterUnreachableException(f"POST {resource}: {exc}") from None
    return Response(resp.status, resp.data, {k.lower(): v for k, v in resp.headers.items()})


def direct(url: str, body: bytes, headers: dict[str, str], timeout: float = 120.0) -> Response:
    """POST to an outside scoring URI (http or https), any answer returned as it is."""
    import urllib.error
    import urllib.request

    if not url.startswith(("http://", "https://")):
        raise WebserviceException(f"scoring_uri {url!r} is not an http(s) URL")
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return Response(
                resp.status, resp.read(), {k.lower(): v for k, v in resp.headers.items()}
            )
    except urllib.error.HTTPError as err:
        data = err.read()
        return Response(err.code, data, {k.lower(): v for k, v in err.headers.items()})
    except (urllib.error.URLError, OSError) as exc:
        raise ClusterUnreachableException(f"POST {url}: {exc}") from None


class _SocketConnection(http.client.HTTPConnection):
    """An HTTPConnection over an already-open socket (the port-forward's)."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        super().__init__("localhost", CONTAINER_PORT, timeout=timeout)
        self.sock = sock

    def connect(self) -> None:  # already connected
        return None


def ready_pod(kube: Kube, name: str) -> str:
    from kaci.azureml._names import LABEL_WEBSERVICE

    pods = kube.list_pods(f"{LABEL_WEBSERVICE}={name}")
    for pod in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True):
        conds = pod.get("status", {}).get("conditions") or []
        if pod["metadata"].get("deletionTimestamp"):
            continue
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
            return str(pod["metadata"]["name"])
    raise WebserviceException(f"webservice {name} has no ready Pod to send the request to")


def via_port_forward(
    kube: Kube,
    name: str,
    body: bytes,
    headers: dict[str, str],
    path: str = "score",
    method: str = "POST",
    timeout: float = 120.0,
) -> Response:
    from kubernetes.stream import portforward

    pod = ready_pod(kube, name)
    try:
        pf = portforward(
            kube.core.connect_get_namespaced_pod_portforward,
            pod,
            kube.namespace,
            ports=str(CONTAINER_PORT),
        )
    except Exception as exc:
        raise ClusterUnreachableException(f"port-forward to pod/{pod}: {exc}") from None
    try:
        sock = pf.socket(CONTAINER_PORT)
        sock.setblocking(True)
        conn = _SocketConnection(sock, timeout)
        hdrs = {"Connection": "close", **headers}
        conn.request(method, f"/{path}", body=body if method != "GET" else None, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        out = Response(resp.status, data, {k.lower(): v for k, v in resp.getheaders()})
        conn.close()
        return out
    except (OSError, http.client.HTTPException) as exc:
        raise WebserviceException(
            f"request to pod/{pod} through a port-forward failed: {exc}"
        ) from None
    finally:
        pf.close()
