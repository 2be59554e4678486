"""The local cluster's add-ons (issue #16, hack/addons.sh): metrics-server and the
ingress controller, each driven for real.

- metrics.k8s.io, served by metrics-server through the API server's aggregation
  layer, answers for a Pod of this test (and `kubectl top` shows it);
- an Ingress of the class kaci-local, with the rewrite the operator's Ingresses
  use, routes a request sent from the host to 127.0.0.1:8080 on Azure's path
  `/api/v1/service/<name>/score` to a test Pod's HTTP server as `/score`, keeping
  the `Authorization` header.

Namespaces start with `t-add-` (this suite's own prefix) and are deleted after.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

BASE_IMAGE = "127.0.0.1:5000/kaci/python:3.11"
INGRESS_URL = "http://127.0.0.1:8080"
INGRESS_CLASS = "kaci-local"
# The shape of the operator's Ingresses (hack/README.md): ingress-nginx's regex path
# and rewrite-target, which ingress-nginx serves as they are; on this cluster's
# Traefik the regex routes and the entry points' middleware does the rewrite.
REWRITE_ANNOTATIONS = {
    "nginx.ingress.kubernetes.io/use-regex": "true",
    "nginx.ingress.kubernetes.io/rewrite-target": "/$2",
}
Kubectl = Callable[..., str]

# Answers every GET and POST with what it received: the path (query included) and
# the Authorization header, so the test sees what the ingress forwarded.
ECHO_PY = """\
import http.server, json, socket
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n else ""
        out = json.dumps({"pod": socket.gethostname(), "path": self.path,
                          "method": self.command, "body": body,
                          "authorization": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = answer
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("", 8000), H).serve_forever()
"""


def echo_pod(name: str) -> dict[str, Any]:
    """A Pod of the local python base image running ECHO_PY on port 8000."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
            "containers": [
                {
                    "name": "echo",
                    "image": BASE_IMAGE,
                    "command": ["python3", "-c", ECHO_PY],
                    "ports": [{"containerPort": 8000, "name": "http"}],
                    "readinessProbe": {"tcpSocket": {"port": 8000}, "periodSeconds": 1},
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "64Mi"},
                        "limits": {"cpu": "200m", "memory": "128Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def apply_json(kubectl: Kubectl, namespace: str, obj: dict[str, Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


def ready_echo(kubectl: Kubectl, namespace: str, name: str) -> None:
    apply_json(kubectl, namespace, echo_pod(name))
    kubectl("wait", "--for=condition=Ready", f"pod/{name}", "-n", namespace, "--timeout=180s")


# ---------------------------------------------------------------- metrics-server


def pod_metrics(kubectl: Kubectl, namespace: str, pod: str) -> dict[str, Any] | None:
    """The PodMetrics of `pod` from metrics.k8s.io, or None while it has none yet."""
    try:
        raw = kubectl(
            "get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{pod}"
        )
    except Exception as e:  # NotFound until metrics-server's first scrape that saw the Pod
        if "NotFound" in str(e) or "not found" in str(e):
            return None
        raise
    return dict(json.loads(raw))


def memory_bytes(quantity: str) -> int:
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "k": 1000, "M": 1000**2}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(quantity[: -len(suffix)]) * factor
    return int(quantity)


def test_metrics_api_answers_for_a_pod(make_namespace: Any, kubectl: Kubectl) -> None:
    """metrics.k8s.io (aggregated, served by metrics-server scraping the kubelet) has
    the test Pod's usage; `kubectl top pod` prints it."""
    registered = kubectl("get", "apiservice", "--ignore-not-found", "-o", "name")
    assert "apiservice.apiregistration.k8s.io/v1beta1.metrics.k8s.io" in registered.split(), (
        "metrics.k8s.io is not registered: hack/addons.sh registers it only when kube-apiserver "
        "runs with the aggregation layer (hack/cluster.sh's --requestheader-*/--proxy-client-* "
        "flags); restart it: kill $(cat .cluster/run/kube-apiserver.pid); hack/cluster.sh up"
    )
    service = kubectl("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "json")
    available = [
        c for c in json.loads(service)["status"].get("conditions", []) if c["type"] == "Available"
    ]
    assert [c["status"] for c in available] == ["True"], available
    namespace = make_namespace(f"t-add-metrics-{secrets.token_hex(3)}")
    ready_echo(kubectl, namespace, "echo")

    # metrics-server scrapes every 15 s; a new Pod shows after one or two scrapes.
    deadline = time.monotonic() + 180
    metrics = pod_metrics(kubectl, namespace, "echo")
    while metrics is None and time.monotonic() < deadline:
        time.sleep(3)
        metrics = pod_metrics(kubectl, namespace, "echo")
    assert metrics is not None, "metrics.k8s.io had no metrics for the Pod after 180 s"

    assert metrics["kind"] == "PodMetrics"
    assert metrics["metadata"] == metrics["metadata"] | {"name": "echo", "namespace": namespace}
    [container] = metrics["containers"]
    assert container["name"] == "echo"
    # A live python process: tens of MiB resident, never zero.
    assert memory_bytes(container["usage"]["memory"]) > 1024 * 1024
    assert "cpu" in container["usage"]

    top = kubectl("top", "pod", "echo", "-n", namespace, "--no-headers")
    assert top.split()[0] == "echo"
    assert top.split()[2].endswith("Mi")


# ---------------------------------------------------------------- the ingress


def http(
    url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_routed(url: str, timeout_s: float = 120) -> tuple[int, bytes]:
    """GET url until the controller has the route (it answers 404 before it read the
    Ingress and its EndpointSlice); the last answer either way."""
    deadline = time.monotonic() + timeout_s
    status, body = http(url)
    while status != 200 and time.monotonic() < deadline:
        time.sleep(1)
        status, body = http(url)
    return status, body


@pytest.fixture(scope="module")
def routed_service(make_namespace: Any, kubectl: Kubectl) -> str:
    """An echo Pod behind a Service and an Ingress of class kaci-local on Azure's AKS
    path for a service named like the namespace; returns that name."""
    name: str = make_namespace(f"t-add-ingress-{secrets.token_hex(3)}")
    ready_echo(kubectl, name, "echo")
    apply_json(
        kubectl,
        name,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "echo"},
            "spec": {"selector": {"app": "echo"}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
    )
    apply_json(
        kubectl,
        name,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "echo", "annotations": REWRITE_ANNOTATIONS},
            "spec": {
                "ingressClassName": INGRESS_CLASS,
                "rules": [
                    {
                        "http": {
                            "paths": [
                                {
                                    "path": f"/api/v1/service/{name}(/|$)(.*)",
                                    "pathType": "ImplementationSpecific",
                                    "backend": {
                                        "service": {"name": "echo", "port": {"number": 80}}
                                    },
                                }
                            ]
                        }
                    }
                ],
            },
        },
    )
    return name


def test_ingress_rewrites_azure_score_path_to_the_service(routed_service: str) -> None:
    """POST http://127.0.0.1:8080/api/v1/service/<name>/score from the host, as the
    notebooks post to scoring_uri: the Pod gets POST /score, with the body and the
    Authorization header untouched."""
    base = f"{INGRESS_URL}/api/v1/service/{routed_service}"
    status, body = wait_routed(f"{base}/score")
    assert status == 200, body

    status, body = http(
        f"{base}/score?verbose=true",
        data=b'{"data": [[1, 2]]}',
        headers={"Content-Type": "application/json", "Authorization": "Bearer k3y"},
    )
    assert status == 200, body
    got = json.loads(body)
    assert got["pod"] == "echo"
    assert got["method"] == "POST"
    assert got["path"] == "/score?verbose=true"
    assert got["authorization"] == "Bearer k3y"
    assert got["body"] == '{"data": [[1, 2]]}'


def test_ingress_rewrites_swagger_and_matches_whole_path_elements(routed_service: str) -> None:
    base = f"{INGRESS_URL}/api/v1/service/{routed_service}"
    assert wait_routed(f"{base}/score")[0] == 200
    status, body = http(f"{base}/swagger.json")
    assert status == 200, body
    assert json.loads(body)["path"] == "/swagger.json"
    # Another service's name that merely starts with this one is not routed here.
    status, _ = http(f"{INGRESS_URL}/api/v1/service/{routed_service}x/score")
    assert status == 404


def test_ingress_status_names_the_loopback_address(routed_service: str, kubectl: Kubectl) -> None:
    """The controller writes where it is reached into the Ingress's status."""
    deadline = time.monotonic() + 60
    address = ""
    while not address and time.monotonic() < deadline:
        address = kubectl(
            "get",
            "ingress",
            "echo",
            "-n",
            routed_service,
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip}",
        )
        if not address:
            time.sleep(1)
    assert address == "127.0.0.1"
