"""Fixtures of the cluster tier: the real local cluster from `hack/cluster.sh up`.

Every test here runs against the cluster in this work tree's `.cluster/`
(context `kaci-local`). The session fixture brings it up (idempotent) and a
cluster that cannot come up FAILS the tests: they are never skipped. When
`.cluster` is a symlink to another clone's `.cluster/` (a second work tree sharing
one machine's cluster), that clone owns the cluster: it is checked, never started
from here. Each test that asks for `namespace` gets a fresh namespace, deleted
afterwards.

The cluster may be shared with a user's own kaci releases (`make demo`'s `kaci` in
`kaci-system`) and with other test runs: tests create only namespaces, releases and
cluster-scoped objects with names of their own, label the kaci objects they create
for an operator instance of their own, and delete only what they created.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import docker
import pytest
from kaci.azureml.core import Workspace
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from support.buildkit import Buildkitd, ensure_buildkitd  # type: ignore[import-not-found,unused-ignore]
from support.kaci_operator import (  # type: ignore[import-not-found,unused-ignore]
    run_operator,
    stop_host_buildkitd,
)

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = ROOT / ".cluster"
KUBECONFIG = CLUSTER_DIR / "kubeconfig"
CONTEXT = "kaci-local"
API_SERVER = "https://127.0.0.1:6443"
REGISTRY = "127.0.0.1:5000"
BASE_IMAGE = f"{REGISTRY}/kaci/python:3.11"
DOCKER_HOST = "unix:///var/run/docker.sock"


class Kubectl(Protocol):
    def __call__(self, *args: str, input: str | None = None, timeout: float = 300) -> str: ...


class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; `stderr` holds what it said (the API server's message).

    A CalledProcessError, so tests catch it without importing this conftest.
    """

    def __str__(self) -> str:
        return f"{super().__str__()}: {str(self.stderr).strip()}"


def kubectl(*args: str, input: str | None = None, timeout: float = 300) -> str:
    """Run kubectl against the local cluster only; return stdout, raise KubectlError."""
    cmd = ["kubectl", f"--kubeconfig={KUBECONFIG}", f"--context={CONTEXT}", *args]
    proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise KubectlError(proc.returncode, cmd, proc.stdout, proc.stderr)
    return proc.stdout


def _check_context() -> None:
    """Refuse anything but the local test cluster: these tests create and delete objects."""
    cfg = json.loads(kubectl("config", "view", "--minify", "--raw", "-o", "json"))
    current = cfg.get("current-context")
    server = cfg["clusters"][0]["cluster"]["server"]
    if current != CONTEXT or server != API_SERVER:
        pytest.fail(
            f"refusing to run cluster tests against context {current!r} ({server}); "
            f"they only run against {CONTEXT!r} at {API_SERVER} from {KUBECONFIG}",
            pytrace=False,
        )


def cluster_owner() -> Path:
    """The clone whose hack/cluster.sh started the cluster in `.cluster`: this one, or the
    clone a symlinked `.cluster` points into. Its scripts are the ones that may start or
    stop the cluster's daemons (they recognise their processes by that path)."""
    return CLUSTER_DIR.resolve().parent


def _check_shared_cluster(owner: Path) -> None:
    """Another clone's cluster: it must already run (its owner brings it up)."""
    try:
        kubectl("get", "--raw", "/readyz", timeout=30)
        kubectl("wait", "--for=condition=Ready", "node/kaci-node", "--timeout=60s", timeout=90)
    except (KubectlError, subprocess.TimeoutExpired) as e:
        pytest.fail(
            f"{CLUSTER_DIR} is {owner}'s cluster and it is not up ({e}); "
            f"start it there: {owner}/hack/cluster.sh up",
            pytrace=False,
        )


@pytest.fixture(scope="session", autouse=True)
def local_cluster() -> Path:
    """Bring the local cluster up (reusing what runs); fail, never skip, when it cannot."""
    owner = cluster_owner()
    if owner != ROOT.resolve():
        _check_shared_cluster(owner)
        _check_context()
        return KUBECONFIG
    proc = subprocess.run(
        [str(ROOT / "hack" / "cluster.sh"), "up"],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        pytest.fail(f"hack/cluster.sh up failed ({proc.returncode}):\n{tail}", pytrace=False)
    _check_context()
    return KUBECONFIG


@pytest.fixture(scope="session", name="kubectl")
def kubectl_fixture(local_cluster: Path) -> Kubectl:
    """`kubectl(*args, input=None)` -> stdout; raises subprocess.CalledProcessError
    (KubectlError) whose `.stderr` is kubectl's message."""
    return kubectl


@pytest.fixture(scope="session")
def buildkitd(local_cluster: Path) -> Buildkitd:
    """The in-cluster buildkitd (the chart's, alone, on a NodePort) for host-side operators
    and buildctl: its 127.0.0.1 address and mTLS client files (support/buildkit.py).
    Shared by every test process; left running."""
    return ensure_buildkitd()


@pytest.fixture(scope="session")
def kube(local_cluster: Path) -> Iterator[k8s_client.ApiClient]:
    """A kubernetes ApiClient for the local cluster (context kaci-local only)."""
    api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(KUBECONFIG), context=CONTEXT
    )
    yield api
    api.close()


@pytest.fixture(scope="session")
def docker_client(local_cluster: Path) -> Iterator[docker.DockerClient]:
    """The real Docker engine `hack/cluster.sh` runs (it builds and pushes images)."""
    dc = docker.DockerClient(base_url=DOCKER_HOST)
    yield dc
    dc.close()


def _slug(text: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:limit].rstrip("-")


def wait_created(kind_name: str, namespace: str | None = None, timeout_s: int = 60) -> None:
    """Wait until an object another controller makes exists (`kubectl wait --for=create`,
    kubectl >= 1.31: it waits for a missing object, where `--for=condition`/`jsonpath`
    answer NotFound at once)."""
    where = ["-n", namespace] if namespace else []
    kubectl(
        "wait",
        "--for=create",
        kind_name,
        *where,
        f"--timeout={timeout_s}s",
        timeout=timeout_s + 30,
    )


def create_namespace(name: str, labels: dict[str, str] | None = None) -> str:
    """Create a namespace of the caller's own (fails if the name is taken: never adopt
    someone else's), and wait until Pods can be admitted there: the
    controller-manager's ServiceAccount controller makes its `default` ServiceAccount
    a moment after the namespace, and Pods are refused until then."""
    kubectl(
        "create",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": {"kaci.dev/test": "true", **(labels or {})}},
            }
        ),
    )
    wait_created("serviceaccount/default", name)
    return name


def delete_namespace(name: str) -> None:
    """Delete a namespace the caller created (and everything in it), without waiting."""
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


class NamespaceMaker(Protocol):
    def __call__(self, name: str, labels: dict[str, str] | None = None) -> str: ...


@pytest.fixture(scope="module")
def make_namespace(local_cluster: Path) -> Iterator[NamespaceMaker]:
    """`make_namespace(name)`: create a namespace of the caller's own, ready for Pods
    (see create_namespace); every one made is deleted (with its Pods) when the module's
    tests are done, if its maker has not deleted it before."""
    made: list[str] = []

    def make(name: str, labels: dict[str, str] | None = None) -> str:
        made.append(create_namespace(name, labels))
        return name

    yield make
    for name in made:
        delete_namespace(name)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace for one test, deleted (with everything in it) afterwards."""
    name = create_namespace(f"t-{_slug(request.node.name, 40)}-{secrets.token_hex(3)}")
    yield name
    delete_namespace(name)


@pytest.fixture
def apply(kubectl: Kubectl, namespace: str) -> Callable[[dict[str, Any]], str]:
    """Apply one manifest (a dict) with kubectl, into the test's namespace unless it names
    one; returns kubectl's output."""

    def _apply(manifest: dict[str, Any]) -> str:
        ns = manifest.get("metadata", {}).get("namespace", namespace)
        return kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest))

    return _apply


# --- the CRDs and an SDK workspace (used across the tier) ------------------------


@pytest.fixture(scope="session")
def crds(local_cluster: Path) -> None:
    """The CRDs from crds/ (idempotent server-side apply)."""
    subprocess.run(
        [
            "kubectl",
            f"--kubeconfig={KUBECONFIG}",
            f"--context={CONTEXT}",
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(ROOT / "crds"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        [
            "kubectl",
            f"--kubeconfig={KUBECONFIG}",
            f"--context={CONTEXT}",
            "wait",
            "--for=condition=Established",
            "crd/models.kaci.dev",
            "crd/images.kaci.dev",
            "crd/webservices.kaci.dev",
            "--timeout=60s",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture
def sdk_workspace(crds: None, namespace: str) -> Iterator[Workspace]:
    """A Workspace on a fresh namespace, with an operator instance of its own running."""
    with run_operator(f"sdk-{secrets.token_hex(4)}") as op:
        ws = Workspace(
            context=CONTEXT, namespace=namespace, kubeconfig=str(KUBECONFIG), operator=op.instance
        )
        try:
            yield ws
        finally:
            # Delete what the test left while the operator still runs (kopf finalizers).
            for kind in ("webservices", "images", "models"):
                subprocess.run(
                    [
                        "kubectl",
                        f"--kubeconfig={KUBECONFIG}",
                        f"--context={CONTEXT}",
                        "-n",
                        namespace,
                        "delete",
                        f"{kind}.kaci.dev",
                        "--all",
                        "--timeout=120s",
                    ],
                    capture_output=True,
                    timeout=180,
                    check=False,
                )
            # Shown by pytest when the test failed.
            print("operator log (tail):\n" + op.log_tail())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The test operators' own host buildkitd (if one was started) stops with the session."""
    stop_host_buildkitd()
