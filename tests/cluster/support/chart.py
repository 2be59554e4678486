"""Shared by the chart's cluster tests (no tests here): build the operator image, install
a release of the chart with real helm, deploy a tiny Webservice through it.

Every release made here has names of the test's own (release namespaces `t-...`) and an
operator instance of its own (`operator.instance`), so its operator handles only the
objects labelled for it: a user's release on the same cluster (`make demo`'s `kaci` in
`kaci-system`, which handles unlabelled objects) and the tests' releases leave each
other's objects alone.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from support.faults import (  # type: ignore[import-not-found,unused-ignore]
    factor_configmap,
    image,
    model,
    webservice,
)
from support.kaci_operator import INSTANCE_LABEL, first_score  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "kaci"
LOCAL_VALUES = CHART / "ci" / "local-values.yaml"  # the buildkit driver
LOCAL_DOCKER_VALUES = CHART / "ci" / "local-docker-values.yaml"  # the docker driver
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
CONTEXT = "kaci-local"  # tests/cluster/conftest.py refuses any other context
DOCKER_SOCKET = Path("/var/run/docker.sock")
Kubectl = Callable[..., str]  # the `kubectl` fixture of tests/cluster/conftest.py


def helm(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["helm", f"--kubeconfig={KUBECONFIG}", f"--kube-context={CONTEXT}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"helm {' '.join(args)}: {proc.stderr}"
    return proc


def build_operator_image() -> str:
    """hack/build-operator-image.sh: the pushed reference with its content-hash tag (it
    also pushes the chart's appVersion tag)."""
    build = subprocess.run(
        [str(ROOT / "hack" / "build-operator-image.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    return build.stdout.strip().splitlines()[-1]


def demo_args(image_ref: str, driver: str = "buildkit") -> list[str]:
    """What hack/demo.sh passes to `helm upgrade --install` on the local cluster, for one
    builder driver: `docker` (the host's engine through its socket) or `buildkit` (the
    chart's rootless buildkitd, its image from hack/base-images.sh; the default)."""
    repository, tag = image_ref.rsplit(":", 1)
    image = ["--set", f"image.repository={repository}", "--set", f"image.tag={tag}"]
    if driver == "buildkit":
        from support.buildkit import buildkit_image  # type: ignore[import-not-found,unused-ignore]

        bk_repository, bk_tag = buildkit_image().rsplit(":", 1)
        return [
            "-f",
            str(LOCAL_VALUES),
            *image,
            "--set",
            f"buildkit.image.repository={bk_repository}",
            "--set",
            f"buildkit.image.tag={bk_tag}",
        ]
    assert driver == "docker", driver
    return [
        "-f",
        str(LOCAL_DOCKER_VALUES),
        *image,
        "--set",
        f"podSecurityContext.supplementalGroups[0]={DOCKER_SOCKET.stat().st_gid}",
    ]


@dataclass
class ChartRelease:
    """One `helm install` of the chart, for one operator instance."""

    name: str
    namespace: str
    instance: str
    kubectl: Kubectl
    args: list[str] = field(default_factory=list)

    def install(self, timeout: str = "5m") -> subprocess.CompletedProcess[str]:
        return helm(
            "install",
            self.name,
            str(CHART),
            "--namespace",
            self.namespace,
            *self.args,
            "--set",
            f"operator.instance={self.instance}",
            "--wait",
            "--timeout",
            timeout,
        )

    def uninstall(self, check: bool = True) -> None:
        helm(
            "uninstall",
            self.name,
            "-n",
            self.namespace,
            "--ignore-not-found",
            "--wait",
            check=check,
        )

    def manifest(self) -> list[dict[str, Any]]:
        """What the release installed (helm get manifest), as objects."""
        text = helm("get", "manifest", self.name, "-n", self.namespace).stdout
        return [d for d in yaml.safe_load_all(text) if d]

    def pods(self) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/instance={self.name},app.kubernetes.io/name=kaci"
        got = json.loads(
            self.kubectl("get", "pods", "-n", self.namespace, "-l", selector, "-o", "json")
        )
        return [p for p in got["items"] if "deletionTimestamp" not in p["metadata"]]

    def log(self, tail: int = -1) -> str:
        """Every operator Pod's log, each under its name (never raises: also a diagnostic)."""
        out = []
        for pod in self.pods():
            name = pod["metadata"]["name"]
            try:
                text = self.kubectl("logs", "-n", self.namespace, name, f"--tail={tail}")
            except Exception as exc:
                text = f"(no log: {exc})"
            out.append(f"--- {self.namespace}/{name}\n{text}")
        return "\n".join(out)

    def label(self, doc: dict[str, Any]) -> dict[str, Any]:
        doc["metadata"].setdefault("labels", {})[INSTANCE_LABEL] = self.instance
        return doc


def deploy_tiny(rel: ChartRelease, ns: str, name: str, marker: str | None = None) -> str:
    """A Model, a freshly built Image (a new `marker`: a build the engine has not done) and
    a Webservice from it, for `rel`'s operator, in `ns`; waits until the Webservice is
    Ready and scores it (factor 2). Returns the marker."""
    marker = marker or secrets.token_hex(4)
    kubectl = rel.kubectl
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(factor_configmap("factor")))
    docs = [
        model("factor", {"configMap": {"name": "factor"}}),
        image(name, ["factor"], marker),
        webservice(name, {"image": {"name": name}}, marker),
    ]
    kubectl("apply", "-n", ns, "-f", "-", input="\n".join(json.dumps(rel.label(d)) for d in docs))
    try:
        kubectl(
            "wait",
            "--for=condition=Ready",
            f"image/{name}",
            f"webservice/{name}",
            "-n",
            ns,
            "--timeout=600s",
            timeout=700,
        )
    except Exception as exc:
        state = kubectl("get", "kaci,deploy,pods", "-n", ns, "-o", "wide")
        raise AssertionError(f"{exc}\n{state}\n{rel.log()[-4000:]}") from exc
    ip = kubectl("get", "service", name, "-n", ns, "-o", "jsonpath={.spec.clusterIP}")
    resp = first_score(ip, json.dumps({"data": [1, 2.5]}).encode())
    assert resp.status_code == 200, resp.text
    assert resp.json() == [2.0, 5.0]
    return marker
