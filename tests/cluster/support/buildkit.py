"""An in-cluster buildkitd for host-side operators and tests (no tests here).

`ensure_buildkitd()` installs the chart with only its buildkitd (operator.enabled=false,
no CRDs) as release `kaci-test-buildkit` in namespace `kaci-test-buildkit`, behind a
NodePort, waits until buildkitd answers through it (`buildctl debug workers`), and
returns its address on 127.0.0.1 and the client certificate files, read from the
release's Secret. A host-side operator subprocess uses it with `Buildkitd.env()`.

Idempotent across test processes: a file lock makes one process at a time look, and a
release that already runs with the same values (the buildkitd image by its content
hash, a hash of the chart's files) is reused as it is, so concurrent sessions share one
buildkitd and its cache. The release is left running for the next session; `helm
uninstall kaci-test-buildkit -n kaci-test-buildkit` removes it.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from support.chart import CHART, CONTEXT, KUBECONFIG, LOCAL_VALUES, ROOT, helm  # type: ignore[import-not-found,unused-ignore]

NAMESPACE = "kaci-test-buildkit"
RELEASE = "kaci-test-buildkit"  # contains "kaci": the chart's fullname is the release name
SERVICE = f"{RELEASE}-buildkitd"
CLIENT_SECRET = f"{RELEASE}-buildkit-client-tls"
LOCK = Path(tempfile.gettempdir()) / "kaci-test-buildkit.lock"
# The registry as Pods reach it (hack/cluster.sh runs it on the node address too).
# KACI_TEST_NODE_REGISTRY names another one, e.g. a second registry on another port.
NODE_REGISTRY = os.environ.get("KACI_TEST_NODE_REGISTRY", "10.88.0.1:5000")
READY_TIMEOUT_S = 180


@dataclass(frozen=True)
class Buildkitd:
    """A reachable buildkitd with mTLS: where it listens and the client's files."""

    address: str  # tcp://127.0.0.1:<nodePort>
    ca: Path
    cert: Path
    key: Path
    server_name: str  # a name in buildkitd's certificate (127.0.0.1 is one too)

    def buildctl_args(self) -> list[str]:
        """The connection flags of `buildctl` for this buildkitd."""
        return [
            f"--addr={self.address}",
            f"--tlscacert={self.ca}",
            f"--tlscert={self.cert}",
            f"--tlskey={self.key}",
            f"--tlsservername={self.server_name}",
        ]

    def env(self) -> dict[str, str]:
        """The operator's builder settings (#13's contract) for this buildkitd."""
        return {
            "KACI_BUILDER": "buildkit",
            "KACI_BUILDKIT_ADDR": self.address,
            "KACI_BUILDKIT_TLS_CA": str(self.ca),
            "KACI_BUILDKIT_TLS_CERT": str(self.cert),
            "KACI_BUILDKIT_TLS_KEY": str(self.key),
            "KACI_BUILDKIT_TLS_SERVER_NAME": self.server_name,
            "KACI_BUILDCTL": buildctl(),
            "KACI_REGISTRY": NODE_REGISTRY,
            "KACI_REGISTRY_PULL": "127.0.0.1:5000",
            "KACI_REGISTRY_INSECURE": "true",
        }


def _last_line(cmd: list[str], timeout: float) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}: {proc.stderr[-3000:]}"
    return proc.stdout.strip().splitlines()[-1]


def buildctl() -> str:
    """hack/buildkit.sh's buildctl (built once, cached under /var/cache/kaci)."""
    return str(Path(_last_line([str(ROOT / "hack" / "buildkit.sh")], 1800)) / "buildctl")


def buildkit_image() -> str:
    """The local buildkitd image by its content-hash tag (made and pushed if missing)."""
    return _last_line([str(ROOT / "hack" / "base-images.sh"), "buildkit"], 1800)


def chart_hash() -> str:
    """A hash of the chart's files: a changed template means a new release revision."""
    digest = hashlib.sha256()
    for path in sorted(p for p in CHART.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(CHART)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def desired_values(image: str) -> dict[str, Any]:
    """The release's values: the local cluster's (ci/local-values.yaml) with only
    buildkitd, on a NodePort."""
    values: dict[str, Any] = yaml.safe_load(LOCAL_VALUES.read_text())
    repository, tag = image.rsplit(":", 1)
    buildkit = values.setdefault("buildkit", {})
    buildkit.setdefault("image", {}).update({"repository": repository, "tag": tag})
    buildkit["service"] = {"type": "NodePort"}
    buildkit["podAnnotations"] = {"kaci.dev/test-chart-hash": chart_hash()}
    # Left running for every session on a 2-core node: it books almost no CPU, so it
    # never makes the tests' own Pods unschedulable.
    buildkit["resources"] = {"requests": {"cpu": "10m", "memory": "64Mi"}}
    values["operator"] = {"enabled": False}
    values["registry"] = {**values.get("registry", {}), "url": NODE_REGISTRY}
    return values


def kubectl(
    *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    cmd = ["kubectl", f"--kubeconfig={KUBECONFIG}", f"--context={CONTEXT}", *args]
    proc = subprocess.run(
        cmd, input=input, capture_output=True, text=True, check=False, timeout=300
    )
    if check:
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc


def _ensure_namespace() -> None:
    """buildkitd's seccomp/AppArmor Unconfined need Pod Security level `privileged`."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NAMESPACE,
            "labels": {"pod-security.kubernetes.io/enforce": "privileged"},
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(manifest))


def _deployed_values() -> dict[str, Any] | None:
    status = helm("status", RELEASE, "-n", NAMESPACE, "-o", "json", check=False)
    if status.returncode != 0 or json.loads(status.stdout)["info"]["status"] != "deployed":
        return None
    got: dict[str, Any] = json.loads(
        helm("get", "values", RELEASE, "-n", NAMESPACE, "-o", "json").stdout
    )
    return got


def _install(values: dict[str, Any]) -> None:
    _ensure_namespace()
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(values, f)
        f.flush()
        helm(
            "upgrade",
            "--install",
            RELEASE,
            str(CHART),
            "-n",
            NAMESPACE,
            "--skip-crds",
            "-f",
            f.name,
            "--wait",
            "--timeout",
            "5m",
        )


def _client_files(folder: Path) -> tuple[Path, Path, Path]:
    got = json.loads(kubectl("get", "secret", CLIENT_SECRET, "-n", NAMESPACE, "-o", "json").stdout)
    paths = []
    for key in ("ca.crt", "tls.crt", "tls.key"):
        path = folder / key
        path.write_bytes(base64.b64decode(got["data"][key]))
        path.chmod(0o600)
        paths.append(path)
    return paths[0], paths[1], paths[2]


def _node_port() -> int:
    svc = json.loads(kubectl("get", "service", SERVICE, "-n", NAMESPACE, "-o", "json").stdout)
    return int(svc["spec"]["ports"][0]["nodePort"])


def answers(bk: Buildkitd) -> tuple[bool, str]:
    """buildkitd answers with a worker (`buildctl debug workers`); and what it said."""
    proc = subprocess.run(
        [buildctl(), *bk.buildctl_args(), "debug", "workers"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return proc.returncode == 0 and "linux/amd64" in proc.stdout, proc.stderr.strip()


def ensure_buildkitd() -> Buildkitd:
    """The shared test buildkitd, installed or reused (see the module docstring)."""
    image = buildkit_image()
    values = desired_values(image)
    LOCK.touch(exist_ok=True)
    with LOCK.open("r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if _deployed_values() != values:
            _install(values)
        folder = Path(tempfile.mkdtemp(prefix="kaci-test-buildkit-"))
        ca, cert, key = _client_files(folder)
        bk = Buildkitd(f"tcp://127.0.0.1:{_node_port()}", ca, cert, key, SERVICE)
        # Bounded: a Pod restarting (a new node, a killed container) answers again soon.
        deadline = time.monotonic() + READY_TIMEOUT_S
        ok, said = answers(bk)
        while not ok and time.monotonic() < deadline:
            time.sleep(1)
            ok, said = answers(bk)
        pods = kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide", check=False).stdout
        assert ok, (
            f"buildkitd at {bk.address} did not answer in {READY_TIMEOUT_S} s: {said}\n{pods}"
        )
        return bk
