"""Security on the real cluster: kaci's Pods pass Pod Security `restricted` (the API
server enforces it), keys are demanded and rotate, model URLs cannot point the operator
at the cluster itself, and model file names cannot escape the model folder."""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kaci.azureml.core import Workspace
from kaci.azureml.core.webservice import Webservice
from kaci.edges import kube, urlpolicy
from kaci.edges import sources as modelsource
from kubernetes import config as k8s_config
from support.faults import factor_configmap, model, webservice  # type: ignore[import-not-found,unused-ignore]
from support.kaci_operator import Operator, first_score, run_operator, score, wait_until  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = "kaci-local"
MODEL_BYTES = b"model bytes from the test file server\n"


class FileServer:
    """A local http server (127.0.0.1 only) serving one file; it records every path asked."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(MODEL_BYTES)))
                self.end_headers()
                self.wfile.write(MODEL_BYTES)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def files() -> Iterator[FileServer]:
    server = FileServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture(scope="module")
def op(crds: None) -> Iterator[Operator]:
    # The test file server listens on 127.0.0.1: allow exactly that address, as a user
    # with an in-cluster model store would allow its network. The API server stays
    # refused even so (urlpolicy: its endpoint is checked before the allow list).
    with run_operator(
        f"sec-{secrets.token_hex(3)}", {"KACI_URL_ALLOWED_NETWORKS": "127.0.0.1/32"}
    ) as operator:
        yield operator
        assert operator.alive(), operator.log_tail()


def _apply(kubectl: Any, ns: str, op: Operator, *docs: dict[str, Any]) -> None:
    body = "\n".join(json.dumps(op.label(d)) for d in docs)
    kubectl("apply", "-n", ns, "-f", "-", input=body)


def _get(kubectl: Any, ns: str, kind: str, name: str) -> dict[str, Any]:
    return json.loads(kubectl("get", kind, name, "-n", ns, "-o", "json"))  # type: ignore[no-any-return]


def _wait_ready(kubectl: Any, ns: str, op: Operator, *objects: str) -> None:
    try:
        kubectl("wait", "--for=condition=Ready", *objects, "-n", ns, "--timeout=600s", timeout=700)
    except Exception as e:
        objs = kubectl("get", "kaci,deploy,rs,pods", "-n", ns, "-o", "wide")
        events = kubectl("get", "events", "-n", ns, "--sort-by=.lastTimestamp")
        raise AssertionError(f"{e}\n{objs}\n{events[-3000:]}\n{op.log_tail()}") from e


def _settled_ready(kubectl: Any, ns: str, name: str) -> dict[str, Any]:
    """The Model's Ready condition once the operator has decided (not `Fetching`)."""

    def check() -> dict[str, Any] | None:
        st = _get(kubectl, ns, "model", name).get("status") or {}
        cond = next((c for c in st.get("conditions") or [] if c["type"] == "Ready"), None)
        return cond if cond and cond.get("reason") != "Fetching" else None

    return wait_until(check, f"model {name} to be decided", attempts=90)  # type: ignore[no-any-return]


def test_webservice_pods_admitted_under_restricted_and_keys_rotate(
    kubectl: Any, namespace: str, op: Operator
) -> None:
    kubectl(
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )
    # The namespace really enforces: a root Pod is refused by the API server.
    root_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root-pod"},
        "spec": {"containers": [{"name": "c", "image": "127.0.0.1:5000/kaci/pause:3.9"}]},
    }
    with pytest.raises(Exception, match="violates PodSecurity"):
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(root_pod))

    marker = secrets.token_hex(4)
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(factor_configmap("factor")))
    _apply(
        kubectl,
        namespace,
        op,
        webservice(
            "sec-files", {"modelFiles": {"configMap": {"name": "factor"}}}, marker, authEnabled=True
        ),
    )
    _wait_ready(kubectl, namespace, op, "webservice/sec-files")
    # Option 3 with the Image option 1 built: a second Pod, no key needed.
    _apply(kubectl, namespace, op, webservice("sec-image", {"image": {"name": "sec-files"}}, ""))
    _wait_ready(kubectl, namespace, op, "webservice/sec-image")
    pods = json.loads(
        kubectl(
            "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/managed-by=kaci", "-o=json"
        )
    )["items"]
    assert len(pods) == 2
    assert all(p["status"]["phase"] == "Running" for p in pods)
    events = kubectl("get", "events", "-n", namespace, "--field-selector=reason=FailedCreate")
    assert "PodSecurity" not in events

    body = json.dumps({"data": [1, 2.5]}).encode()
    ip_open = kubectl(
        "get", "service", "sec-image", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}"
    )
    opened = first_score(ip_open, body)
    assert opened.status_code == 200, opened.text
    assert opened.json() == [2.0, 5.0]

    ip = kubectl("get", "service", "sec-files", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}")
    data = _get(kubectl, namespace, "secret", "sec-files-keys")["data"]
    primary = base64.b64decode(data["primaryKey"]).decode()
    secondary = base64.b64decode(data["secondaryKey"]).decode()
    assert first_score(ip, body).status_code == 401
    assert score(ip, body, {"Authorization": "Bearer not-a-key"}).status_code == 401
    for key in (primary, secondary):
        resp = score(ip, body, {"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200, resp.text
        assert resp.json() == [2.0, 5.0]

    # Azure's regen_key through the SDK: it waits until the serving Pods use the new key.
    ws = Workspace(
        context=CONTEXT,
        namespace=namespace,
        kubeconfig=str(ROOT / ".cluster" / "kubeconfig"),
        operator=op.instance,
    )
    Webservice(ws, "sec-files").regen_key("Primary")
    new_primary, same_secondary = Webservice(ws, "sec-files").get_keys()
    assert new_primary != primary
    assert same_secondary == secondary
    # The old Pod drains for a few seconds after the new one turned ready (preStop sleep),
    # so the old key dies once it is gone: wait for that, then it must stay refused.
    wait_until(
        lambda: score(ip, body, {"Authorization": f"Bearer {primary}"}).status_code == 401,
        "the old primary key to be refused",
        attempts=60,
    )
    for _ in range(5):
        assert score(ip, body, {"Authorization": f"Bearer {primary}"}).status_code == 401
    for key in (new_primary, secondary):
        resp = score(ip, body, {"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200, resp.text
    assert score(ip, body).status_code == 401


def test_model_urls_into_the_cluster_are_refused(
    kubectl: Any, namespace: str, op: Operator, files: FileServer
) -> None:
    service_ip = kubectl(
        "get", "service", "kubernetes", "-n", "default", "-o=jsonpath={.spec.clusterIP}"
    )
    refused = {
        # the API server as the operator reaches it (its kubeconfig's address)
        "api-server": ("https://127.0.0.1:6443/api/v1/secrets", "is the Kubernetes API server"),
        # the `kubernetes` Service and any other ClusterIP
        "service-ip": (f"https://{service_ip}/api/v1/secrets", "cluster-internal network"),
        # link-local: where cloud metadata services answer (nothing is sent: refused first)
        "link-local": ("http://169.254.0.1:9/latest/meta-data/", "link-local"),
        # loopback other than the one address this operator allows
        "loopback": (f"http://127.0.0.2:{files.port}/model.bin", "loopback"),
        "credentials": (
            f"http://user:pw@127.0.0.1:{files.port}/model.bin",
            "credentials are refused",
        ),
    }
    docs = [model(name, {"url": {"url": url}}) for name, (url, _) in refused.items()]
    docs.append(model("allowed", {"url": {"url": files.url("/model.bin")}}))
    _apply(kubectl, namespace, op, *docs)

    for name, (_, why) in refused.items():
        cond = _settled_ready(kubectl, namespace, name)
        assert cond["status"] == "False", (name, cond)
        assert cond["reason"] == "BadSource", (name, cond)
        assert "model URL refused" in cond["message"], (name, cond)
        assert why in cond["message"], (name, cond)
    # The control: a URL the policy allows is downloaded and stored.
    _wait_ready(kubectl, namespace, op, "model/allowed")
    assert _get(kubectl, namespace, "model", "allowed")["status"]["files"] == ["model.bin"]
    assert files.requests.count("/model.bin") >= 1
    assert all(r == "/model.bin" for r in files.requests), files.requests


def _model_file_pod() -> dict[str, Any]:
    """A Pod serving MODEL_BYTES over http on :8080 (a model store run as a Pod)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "model-store", "labels": {"app": "model-store"}},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "files",
                    "image": "127.0.0.1:5000/kaci/python:3.11",
                    "command": [
                        "sh",
                        "-c",
                        "mkdir -p /tmp/srv && printf '%s' \"$BYTES\" > /tmp/srv/model.bin"
                        " && exec python3 -m http.server 8080 --directory /tmp/srv",
                    ],
                    "env": [{"name": "BYTES", "value": MODEL_BYTES.decode()}],
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                    "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def test_model_urls_at_the_cluster_itself_are_refused_by_default(
    kubectl: Any,
    namespace: str,
    crds: None,
) -> None:
    # The cluster's own addresses, read from the cluster as the operator reads them.
    ep = json.loads(kubectl("get", "endpoints", "kubernetes", "-n", "default", "-o", "json"))
    subset = ep["subsets"][0]
    api_ip, api_port = subset["addresses"][0]["ip"], subset["ports"][0]["port"]
    nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
    node_ip = next(
        a["address"] for a in nodes[0]["status"]["addresses"] if a["type"] == "InternalIP"
    )
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_model_file_pod()))
    kubectl("wait", "--for=condition=Ready", "pod/model-store", "-n", namespace, "--timeout=300s")
    pod_ip = kubectl(
        "get", "pod", "model-store", "-n", namespace, "-o", "jsonpath={.status.podIP}"
    ).strip()
    pod_url = f"http://{pod_ip}:8080/model.bin"
    # The Pod really serves the file: what the policy refuses would have worked.
    probe = kubectl(
        "exec",
        "model-store",
        "-n",
        namespace,
        "--",
        "python3",
        "-c",
        f"import urllib.request; print(urllib.request.urlopen({pod_url!r}).read().decode())",
    )
    assert probe.strip() == MODEL_BYTES.decode().strip()

    refused = {
        # the API server's real endpoint (here the node's address, port 6443)
        "api-endpoint": (
            f"https://{api_ip}:{api_port}/api/v1/secrets",
            "is the Kubernetes API server",
        ),
        # the kubelet on a node
        "node": (f"https://{node_ip}:10250/pods", "is a cluster node"),
        # a running Pod (this cluster's CNI sets no podCIDR: the Pod's own IP is looked up)
        "pod": (pod_url, "is a Pod in the cluster"),
    }
    with run_operator(f"secd-{secrets.token_hex(3)}") as op:  # the default settings
        docs = [model(name, {"url": {"url": url}}) for name, (url, _) in refused.items()]
        _apply(kubectl, namespace, op, *docs)
        for name, (_, why) in refused.items():
            cond = _settled_ready(kubectl, namespace, name)
            assert (cond["status"], cond["reason"]) == ("False", "BadSource"), (name, cond)
            assert "model URL refused" in cond["message"], (name, cond)
            assert why in cond["message"], (name, cond)
        assert op.alive(), op.log_tail()

    # An operator told that the Pod network holds a model store downloads from the Pod,
    # and still refuses the API server and the node inside that network.
    allow = {"KACI_URL_ALLOWED_NETWORKS": f"{pod_ip}/32,{api_ip}/32,{node_ip}/32"}
    with run_operator(f"seca-{secrets.token_hex(3)}", allow) as op:
        docs = [
            model(f"allowed-{name}", {"url": {"url": url}}) for name, (url, _) in refused.items()
        ]
        _apply(kubectl, namespace, op, *docs)
        for name, (_, why) in refused.items():
            if name == "pod":
                continue
            cond = _settled_ready(kubectl, namespace, f"allowed-{name}")
            assert (cond["status"], cond["reason"]) == ("False", "BadSource"), (name, cond)
            assert why in cond["message"], (name, cond)
        _wait_ready(kubectl, namespace, op, "model/allowed-pod")
        assert _get(kubectl, namespace, "model", "allowed-pod")["status"]["files"] == ["model.bin"]
        assert op.alive(), op.log_tail()


def test_model_file_names_cannot_escape(
    kubectl: Any, namespace: str, op: Operator, files: FileServer
) -> None:
    # The API server itself refuses ConfigMap keys that are paths.
    with pytest.raises(Exception, match="valid config key"):
        kubectl(
            "create",
            "configmap",
            "evil",
            "--from-literal=../../etc/passwd=x",
            "-n",
            namespace,
        )
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(factor_configmap("factor")))
    # A claim that never binds: the path is checked before any reader Pod is made.
    kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "models"},
                "spec": {
                    "accessModes": ["ReadOnlyMany"],
                    "storageClassName": "",
                    "resources": {"requests": {"storage": "1Mi"}},
                },
            }
        ),
    )
    before = len(files.requests)
    cases = {
        "cm-key-dotdot": ({"configMap": {"name": "factor", "keys": ["../factor.txt"]}}, "no key"),
        "cm-key-abs": ({"configMap": {"name": "factor", "keys": ["/etc/passwd"]}}, "no key"),
        "url-filename": (
            {"url": {"url": files.url("/m.bin"), "fileName": "../../etc/cron.d/evil"}},
            "escapes the model folder",
        ),
        "url-abs-filename": (
            {"url": {"url": files.url("/m.bin"), "fileName": "/etc/passwd"}},
            "is absolute",
        ),
        "url-path-dotdot": ({"url": {"url": files.url("/a/..")}}, "escapes the model folder"),
        "pvc-path": ({"pvc": {"claimName": "models", "path": "../../etc"}}, "escapes"),
    }
    _apply(kubectl, namespace, op, *(model(n, src) for n, (src, _) in cases.items()))
    for name, (_, why) in cases.items():
        cond = _settled_ready(kubectl, namespace, name)
        assert (cond["status"], cond["reason"]) == ("False", "BadSource"), (name, cond)
        assert why in cond["message"], (name, cond)
    # Refused before anything was downloaded or any Pod was started.
    assert files.requests[before:] == []
    pods = kubectl("get", "pods", "-n", namespace, "-o", "name")
    assert pods.strip() == ""


def test_url_policy_without_rbac_logs_once_and_keeps_the_settings(
    local_cluster: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator with namespaced RBAC cannot read Endpoints, Nodes or all Pods: the
    real API server answers 403, the policy says so once per read and goes on with
    what the settings block (it neither fails every Model nor retries forever)."""
    api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(local_cluster), context=CONTEXT
    )
    api.set_default_header("Impersonate-User", "system:serviceaccount:default:kaci-no-rbac")
    monkeypatch.setattr(kube, "_api", api)
    monkeypatch.setattr(modelsource, "_cluster_cache", None)
    monkeypatch.setattr(modelsource, "_pod_cache", {})
    monkeypatch.setattr(modelsource, "_warned", set())
    caplog.set_level("WARNING", logger="kaci.edges.sources")

    found = modelsource.cluster_addresses()
    # Only what the client itself knows: the address it talks to.
    assert found.api_server == {(ipaddress.ip_address("127.0.0.1"), 6443)}
    assert (found.api_hosts, found.nodes, found.pod_networks) == (frozenset(), frozenset(), ())
    for host in ("10.88.7.1", "10.88.7.2"):
        assert modelsource.is_pod_ip(ipaddress.ip_address(host)) is False
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 3, warnings
    assert all("HTTP 403" in w for w in warnings), warnings
    # The Service range from the settings is still refused.
    with pytest.raises(urlpolicy.URLRefusedError, match="cluster-internal network"):
        urlpolicy.check_url(
            "http://10.96.0.1/m.pkl",
            urlpolicy.parse_networks("10.96.0.0/12"),
            [],
            cluster=found,
            is_pod=modelsource.is_pod_ip,
        )
    api.close()
