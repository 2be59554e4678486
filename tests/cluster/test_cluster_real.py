"""Proof that the local cluster is a real Kubernetes cluster (issue 2, item 4).

Each test drives a real part: the API server's schema validation and admission
(PodSecurity), the garbage collector, the scheduler + kubelet + containerd
running an image pushed to the local registry with cgroup limits, kube-proxy
(NodePort and ClusterIP from the host), CoreDNS, and in-pod access to the API
server through the `kubernetes` Service.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CLUSTER_DIR = Path(__file__).resolve().parents[2] / ".cluster"
REGISTRY = "127.0.0.1:5000"
BASE_IMAGE = f"{REGISTRY}/kaci/python:3.11"
# The `kubectl` fixture: kubectl(*args, input=None) -> stdout, raising
# subprocess.CalledProcessError with kubectl's message in `.stderr`.
Kubectl = Callable[..., str]
KubectlError = subprocess.CalledProcessError

# A tiny HTTP server: answers GET / with its pod name, so a test knows which
# Pod a request reached.
SERVER_PY = """\
import http.server, json, os, socket

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"pod": socket.gethostname(), "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
"""

DOCKERFILE = f"""\
FROM {BASE_IMAGE}
COPY server.py /srv/server.py
USER 1000:1000
EXPOSE 8080
CMD ["python3", "/srv/server.py"]
"""


@pytest.fixture(scope="module")
def proof_image(tmp_path_factory: pytest.TempPathFactory, local_cluster: Path) -> str:
    """Build the test server image with `docker build` FROM the local base image, push it."""
    ctx = tmp_path_factory.mktemp("proof-image")
    (ctx / "server.py").write_text(SERVER_PY)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    tag = hashlib.sha256((SERVER_PY + DOCKERFILE).encode()).hexdigest()[:12]
    ref = f"{REGISTRY}/kaci-test/proof-server:{tag}"
    subprocess.run(["docker", "build", "-q", "-t", ref, str(ctx)], check=True, capture_output=True)
    subprocess.run(["docker", "push", "-q", ref], check=True, capture_output=True)
    return ref


def server_pod(
    name: str, image: str, *, cpu: str = "250m", memory: str = "128Mi"
) -> dict[str, Any]:
    """A Pod running the proof server, with requests = limits, pulled from the registry."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "containers": [
                {
                    "name": "server",
                    "image": image,
                    # Always: the kubelet's containerd must pull from 127.0.0.1:5000 itself.
                    "imagePullPolicy": "Always",
                    "ports": [{"containerPort": 8080}],
                    "resources": {
                        "requests": {"cpu": cpu, "memory": memory},
                        "limits": {"cpu": cpu, "memory": memory},
                    },
                    "readinessProbe": {
                        "httpGet": {"path": "/", "port": 8080},
                        "periodSeconds": 1,
                    },
                }
            ],
            "terminationGracePeriodSeconds": 1,
        },
    }


def http_get_json(url: str, attempts: int = 60) -> dict[str, Any]:
    """GET url, retrying while kube-proxy programs its rules (a wait, not an assertion)."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return dict(json.loads(resp.read()))
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = exc
            time.sleep(1)
    raise AssertionError(f"{url} did not answer after {attempts} attempts: {last}")


@pytest.fixture
def running_server(
    namespace: str,
    kubectl: Kubectl,
    apply: Callable[[dict[str, Any]], str],
    proof_image: str,
) -> str:
    """A Ready proof-server Pod (500m CPU, 256Mi) in the test namespace; yields its name."""
    apply(server_pod("proof", proof_image, cpu="500m", memory="256Mi"))
    kubectl("wait", "--for=condition=Ready", "pod/proof", "-n", namespace, "--timeout=180s")
    return "proof"


def test_crd_schema_violation_is_rejected_with_its_message(
    kubectl: Kubectl, namespace: str
) -> None:
    group = f"{namespace}.proof.kaci.dev"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["replicas"],
                                    "properties": {
                                        "replicas": {"type": "integer", "minimum": 1},
                                        "color": {"type": "string", "enum": ["red", "blue"]},
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(crd))
    try:
        kubectl("wait", "--for=condition=Established", f"crd/widgets.{group}", "--timeout=60s")

        def widget(name: str, spec: dict[str, Any]) -> str:
            obj = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": name}}
            return json.dumps(obj | {"spec": spec})

        kubectl("apply", "-n", namespace, "-f", "-", input=widget("good", {"replicas": 2}))
        got = json.loads(kubectl("get", f"widgets.{group}", "good", "-n", namespace, "-o", "json"))
        assert got["spec"] == {"replicas": 2}

        bad = widget("bad", {"replicas": 0, "color": "green"})
        with pytest.raises(KubectlError) as err:
            kubectl("apply", "-n", namespace, "-f", "-", input=bad)
        message = err.value.stderr
        assert "is invalid" in message
        assert "spec.replicas: Invalid value: 0" in message
        assert "should be greater than or equal to 1" in message
        assert 'spec.color: Unsupported value: "green"' in message
        with pytest.raises(KubectlError):
            kubectl("get", f"widgets.{group}", "bad", "-n", namespace)
    finally:
        kubectl("delete", "crd", f"widgets.{group}", "--wait=false", "--ignore-not-found")


def read_cgroup_limits(kubectl: Kubectl, namespace: str, pod: str) -> tuple[float, int]:
    """(CPU cores, memory bytes) from the container's own cgroup files (v1 or v2)."""
    v2 = "cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.max"
    v1 = (
        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us"
        " /sys/fs/cgroup/memory/memory.limit_in_bytes"
    )
    script = f"if [ -f /sys/fs/cgroup/cpu.max ]; then {v2}; else {v1}; fi"
    # Both print three numbers: CPU quota, CPU period, memory limit in bytes.
    quota, period, memory = kubectl("exec", "-n", namespace, pod, "--", "sh", "-c", script).split()
    return int(quota) / int(period), int(memory)


def test_pod_runs_pushed_image_with_cgroup_limits(
    kubectl: Kubectl, namespace: str, running_server: str, proof_image: str
) -> None:
    pod = json.loads(kubectl("get", "pod", running_server, "-n", namespace, "-o", "json"))
    status = pod["status"]["containerStatuses"][0]
    assert status["image"] == proof_image
    assert status["imageID"].startswith(f"{proof_image.rsplit(':', 1)[0]}@sha256:")
    assert pod["status"]["qosClass"] == "Guaranteed"
    cpu, memory = read_cgroup_limits(kubectl, namespace, running_server)
    assert cpu == 0.5
    assert memory == 256 * 1024 * 1024
    # The image's numeric user, not root.
    assert kubectl("exec", "-n", namespace, running_server, "--", "id", "-u").strip() == "1000"


def test_pod_reached_through_service_from_host(
    kubectl: Kubectl,
    namespace: str,
    apply: Callable[[dict[str, Any]], str],
    running_server: str,
) -> None:
    apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "proof"},
            "spec": {
                "type": "NodePort",
                "selector": {"app": running_server},
                "ports": [{"port": 80, "targetPort": 8080}],
            },
        }
    )
    svc = json.loads(kubectl("get", "service", "proof", "-n", namespace, "-o", "json"))
    node_port = svc["spec"]["ports"][0]["nodePort"]
    cluster_ip = svc["spec"]["clusterIP"]
    # NodePort on the host's loopback (kube-proxy's route_localnet rules).
    via_node_port = http_get_json(f"http://127.0.0.1:{node_port}/np")
    assert via_node_port == {"pod": running_server, "path": "/np"}
    # ClusterIP, DNAT-ed by kube-proxy's iptables rules on the host.
    via_cluster_ip = http_get_json(f"http://{cluster_ip}/cip")
    assert via_cluster_ip == {"pod": running_server, "path": "/cip"}


def test_garbage_collector_removes_owned_configmap(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "configmap", "owner", "-n", namespace, "--from-literal=a=1")
    owner_uid = kubectl(
        "get", "configmap", "owner", "-n", namespace, "-o", "jsonpath={.metadata.uid}"
    )
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "child",
            "namespace": namespace,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}
            ],
        },
        "data": {"b": "2"},
    }
    kubectl("create", "-f", "-", input=json.dumps(child))
    kubectl("get", "configmap", "child", "-n", namespace)
    # Background deletion: the API server removes the owner at once; the
    # controller-manager's garbage collector then removes the dependent.
    kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=background")
    kubectl("wait", "--for=delete", "configmap/child", "-n", namespace, "--timeout=120s")
    with pytest.raises(KubectlError) as err:
        kubectl("get", "configmap", "child", "-n", namespace)
    assert "NotFound" in err.value.stderr


def test_kubectl_wait_for_ready_pod_returns(
    kubectl: Kubectl,
    namespace: str,
    apply: Callable[[dict[str, Any]], str],
    proof_image: str,
) -> None:
    apply(server_pod("waited", proof_image))
    out = kubectl("wait", "--for=condition=Ready", "pod/waited", "-n", namespace, "--timeout=180s")
    assert out.strip() == "pod/waited condition met"
    ready = kubectl(
        "get", "pod", "waited", "-n", namespace,
        "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
    )  # fmt: skip
    assert ready == "True"


def test_restricted_namespace_rejects_privileged_pod(
    kubectl: Kubectl, namespace: str, proof_image: str
) -> None:
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    privileged = server_pod("privileged", proof_image)
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    with pytest.raises(KubectlError) as err:
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(privileged))
    message = err.value.stderr
    assert 'violates PodSecurity "restricted:latest"' in message
    assert 'privileged (container "server" must not set securityContext.privileged=true)' in message
    # The same namespace admits a Pod that meets the restricted profile.
    compliant = server_pod("compliant", proof_image)
    compliant["spec"]["securityContext"] = {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    compliant["spec"]["containers"][0]["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    out = kubectl(
        "apply", "-n", namespace, "--dry-run=server", "-f", "-", input=json.dumps(compliant)
    )
    assert "pod/compliant created (server dry run)" in out


def run_to_completion(kubectl: Kubectl, namespace: str, name: str, image: str, code: str) -> str:
    """Run `python3 -c code` in a Pod until it succeeds; return its log."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": image, "command": ["python3", "-c", code]}],
        },
    }
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod))
    try:
        kubectl(
            "wait", "--for=jsonpath={.status.phase}=Succeeded", f"pod/{name}",
            "-n", namespace, "--timeout=180s",
        )  # fmt: skip
    finally:
        log = kubectl("logs", "-n", namespace, name)
    return log


def test_pod_resolves_cluster_dns_names(
    kubectl: Kubectl,
    namespace: str,
    apply: Callable[[dict[str, Any]], str],
    proof_image: str,
) -> None:
    apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "named"},
            "spec": {"selector": {"app": "nothing"}, "ports": [{"port": 80}]},
        }
    )
    named_ip = kubectl(
        "get", "service", "named", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}"
    )
    api_ip = kubectl(
        "get", "service", "kubernetes", "-n", "default", "-o", "jsonpath={.spec.clusterIP}"
    )
    code = (
        "import socket\n"
        "print(socket.gethostbyname('kubernetes.default.svc.cluster.local'))\n"
        f"print(socket.gethostbyname('named.{namespace}.svc.cluster.local'))\n"
        "print(socket.gethostbyname('named'))\n"  # the namespace's search domain
    )
    log = run_to_completion(kubectl, namespace, "resolver", proof_image, code)
    assert log.split() == [api_ip, named_ip, named_ip]


def test_pod_reaches_api_server_through_kubernetes_service(
    kubectl: Kubectl, namespace: str, proof_image: str
) -> None:
    # What the in-cluster operator does: its ServiceAccount token and the
    # cluster CA, to https://kubernetes.default.svc (kube-proxy -> the host).
    code = (
        "import json, ssl, urllib.request\n"
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
        "ctx = ssl.create_default_context(cafile=sa + '/ca.crt')\n"
        "token = open(sa + '/token').read()\n"
        "req = urllib.request.Request('https://kubernetes.default.svc/version',"
        " headers={'Authorization': 'Bearer ' + token})\n"
        "print(json.load(urllib.request.urlopen(req, context=ctx))['gitVersion'])\n"
    )
    log = run_to_completion(kubectl, namespace, "apiclient", proof_image, code)
    server = json.loads(kubectl("version", "-o", "json"))["serverVersion"]["gitVersion"]
    assert log.strip() == server == "v1.30.14"


def test_pods_run_on_the_local_pause_image(
    kubectl: Kubectl, namespace: str, running_server: str
) -> None:
    # The sandbox image is ours (gcc -static, FROM scratch), pulled from the local
    # registry by the kubelet's containerd: ask containerd about the Pod's sandbox.
    sandboxes = subprocess.run(
        [
            "ctr", "--address", str(CLUSTER_DIR / "run" / "containerd.sock"), "-n", "k8s.io",
            "containers", "ls",
            'labels."io.cri-containerd.kind"==sandbox,'
            f'labels."io.kubernetes.pod.namespace"=={namespace}',
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()[1:]  # fmt: skip
    assert sandboxes, "no sandbox container for the test Pod"
    assert {line.split()[1] for line in sandboxes} == {f"{REGISTRY}/kaci/pause:3.9"}
    node = json.loads(kubectl("get", "node", "kaci-node", "-o", "json"))
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.30.14"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://1.6")


def test_base_image_installs_scoring_packages_with_no_network(local_cluster: Path) -> None:
    # The contract scoring images rely on: python3 with /opt/venv on PATH, pip
    # pointed at the /wheels wheelhouse, user 1000 — and no network needed.
    script = (
        "set -e; id -u kaci; command -v python3; echo $PIP_NO_INDEX $PIP_FIND_LINKS;"
        " python3 -m venv /tmp/v;"
        " /tmp/v/bin/pip install -q numpy scikit-learn joblib httptools orjson inference-schema;"
        " /tmp/v/bin/python -c 'import sklearn, numpy, joblib, httptools, orjson;"
        " print(numpy.array([1, 2]).sum())'"
    )
    out = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--user", "1000:1000", BASE_IMAGE,
         "sh", "-c", script],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()  # fmt: skip
    assert out == ["1000", "/opt/venv/bin/python3", "1", "/wheels", "3"]
