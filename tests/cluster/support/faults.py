"""Shared by the fault and security cluster tests (no tests here): tiny manifests whose
images build in seconds, a status recorder, registry look-ups.

The scoring script is tiny and has no conda file, so an image's dependency layer is the
runtime's own (cached after the first build) and only score.py and the model layers are
new: builds take seconds, and a test can afford a fresh image (a fresh `marker`) per run.
"""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from kubernetes import client as k8s_client
from kubernetes import watch as k8s_watch

API_VERSION = "kaci.dev/v1alpha1"
REGISTRY = "127.0.0.1:5000"
# requests = limits: small enough that many services fit the node, big enough for Python.
TINY = {"cpuCores": 0.05, "memoryGb": 0.25}


def tiny_score(marker: str) -> str:
    """A score.py multiplying numbers by the model's factor.txt; `marker` makes a new image."""
    return f"""# kaci fault/security test {marker}
import json
import os


def init():
    global factor
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "factor.txt")) as f:
        factor = float(f.read())


def run(raw_data):
    return [x * factor for x in json.loads(raw_data)["data"]]
"""


def factor_configmap(name: str, factor: str = "2") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"factor.txt": factor},
    }


def ready_factor_model(
    kubectl: Callable[..., str], namespace: str, label: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    """The ConfigMap `factor` and a Model `factor` made from it (labelled by `label`, for
    the test's own operator), waited for until Ready."""
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(factor_configmap("factor")))
    doc = label(model("factor", {"configMap": {"name": "factor"}}))
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(doc))
    kubectl("wait", "--for=condition=Ready", "model/factor", "-n", namespace, "--timeout=300s")


def model(name: str, source: dict[str, Any], model_name: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Model",
        "metadata": {"name": name},
        "spec": {"modelName": model_name or name, "source": source},
    }


def image(name: str, model_names: list[str], marker: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Image",
        "metadata": {"name": name},
        "spec": {
            "models": [{"name": m} for m in model_names],
            "executionScript": {"inline": tiny_score(marker)},
            "runtime": "python",
        },
    }


def webservice(name: str, source: dict[str, Any], marker: str, **dc: Any) -> dict[str, Any]:
    """A Webservice with one of the three sources: {"modelFiles": ...}, {"models": ...}
    (both get an imageConfig with the tiny score.py) or {"image": ...}."""
    spec: dict[str, Any] = {**source, "deploymentConfig": {**TINY, **dc}}
    if "image" not in source:
        spec["imageConfig"] = {"executionScript": {"inline": tiny_score(marker)}}
    return {
        "apiVersion": API_VERSION,
        "kind": "Webservice",
        "metadata": {"name": name},
        "spec": spec,
    }


# The buildkit driver's registry cache lives beside the image (kaci.edges.buildctl): a
# tag of the repository that is not an image version.
CACHE_TAG = "buildcache"


def registry_tags(repository: str) -> list[str]:
    """Image tags of one repository in the local registry ([] when it has none), the
    build cache's tag left out."""
    url = f"http://{REGISTRY}/v2/{repository}/tags/list"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return sorted(t for t in json.load(resp).get("tags") or [] if t != CACHE_TAG)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise


class StateRecorder:
    """Records every `status.state` a Webservice (or another kaci kind: `plural`) shows,
    from a watch, in order.

    A watch sees each update the API server stores, so a state the operator wrote
    is seen even when it lasted less than a poll interval.
    """

    def __init__(
        self, api: k8s_client.ApiClient, namespace: str, name: str, plural: str = "webservices"
    ) -> None:
        self.api, self.namespace, self.name, self.plural = api, namespace, name, plural
        self.states: list[str] = []
        self._stop = threading.Event()
        self._watch = k8s_watch.Watch()  # type: ignore[no-untyped-call]
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StateRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._watch.stop()  # type: ignore[no-untyped-call]
        self._thread.join(timeout=60)

    def _run(self) -> None:
        custom = k8s_client.CustomObjectsApi(self.api)
        while not self._stop.is_set():
            stream: Callable[..., Any] = self._watch.stream
            try:
                for event in stream(
                    custom.list_namespaced_custom_object,
                    "kaci.dev",
                    "v1alpha1",
                    self.namespace,
                    self.plural,
                    field_selector=f"metadata.name={self.name}",
                    timeout_seconds=30,
                ):
                    state = (event["object"].get("status") or {}).get("state")
                    if state and (not self.states or self.states[-1] != state):
                        self.states.append(state)
                    if self._stop.is_set():
                        return
            except Exception:  # the API server went away for a moment: watch again
                self._stop.wait(1)

    def since(self, index: int) -> list[str]:
        return self.states[index:]


def cluster_owner() -> Path:
    """The clone whose hack/cluster.sh runs this clone's `.cluster`: this clone, or the one
    a symlinked `.cluster` (a second work tree on the same machine) points into."""
    return (Path(__file__).resolve().parents[3] / ".cluster").resolve().parent


def own_daemon_pid(cluster_dir: Path, name: str) -> int:
    """The PID hack/cluster.sh recorded for daemon `name` (run/<name>.pid), after checking
    that the process is this cluster's own (its command line names `cluster_dir`, symlinks
    resolved, as hack/lib.sh's pid_of does in the owning clone): a fault test stops only
    what this cluster's scripts started."""
    cluster_dir = cluster_dir.resolve()
    pid = int((cluster_dir / "run" / f"{name}.pid").read_text().strip())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert f"{cluster_dir}/" in cmdline, f"pid {pid} is not this clone's {name}: {cmdline}"
    return pid


def start_docker_and_registry() -> None:
    """`hack/cluster.sh docker`: start the Docker engine and registry again."""
    _owners_cluster_sh("docker")


def start_cluster() -> None:
    """`hack/cluster.sh up`: start whatever of the cluster is not running again."""
    _owners_cluster_sh("up")


def _owners_cluster_sh(command: str) -> None:
    """Run hack/cluster.sh of the clone that owns the cluster (cluster_owner), so that
    the daemons it starts are that clone's own again (its scripts know their processes
    by its path)."""
    proc = subprocess.run(
        [str(cluster_owner() / "hack" / "cluster.sh"), command],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


class OperatorLog(Protocol):
    instance: str

    def log_tail(self, lines: int = 80) -> str: ...


def wait_ready_or_explain(
    kubectl: Callable[..., str], namespace: str, objects: list[str], *ops: OperatorLog
) -> None:
    """`kubectl wait --for=condition=Ready` on the objects; on a timeout, fail with the
    namespace's kaci objects, Deployments and Pods and the operators' log tails."""
    try:
        kubectl(
            "wait",
            "--for=condition=Ready",
            *objects,
            "-n",
            namespace,
            "--timeout=600s",
            timeout=700,
        )
    except Exception as e:
        state = kubectl("get", "kaci,deploy,pods", "-n", namespace, "-o", "wide")
        tails = "\n".join(f"--- operator {op.instance}\n{op.log_tail()}" for op in ops)
        raise AssertionError(f"{e}\n{state}\n{tails}") from e
