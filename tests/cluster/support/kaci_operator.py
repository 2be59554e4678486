"""Shared by the operator's cluster tests (no tests here): run the operator, label objects.

The operator runs as a subprocess (`python -m kaci.operator`, all namespaces) with a
fresh `KACI_OPERATOR_INSTANCE`, so it handles only objects carrying that label, and
another kaci operator on the same cluster (the Helm chart's) leaves them alone.

It builds on the buildkit driver (the default), against the first of:
1. `KACI_TEST_BUILDKIT_ADDR` (+ `KACI_TEST_BUILDKIT_TLS_DIR` holding ca.crt, tls.crt,
   tls.key, `KACI_TEST_BUILDKIT_TLS_SERVER_NAME`, and `KACI_TEST_REGISTRY`, the
   registry as that buildkitd reaches it, e.g. 10.88.0.1:5000): a buildkitd the
   person running the tests names;
2. with `KACI_TEST_BUILDER=host-buildkit`, a buildkitd of its own on this host
   (tests/shared/hostbuildkit.py), started on first use and stopped at the end of
   the session (`stop_host_buildkitd`);
3. otherwise the chart's rootless buildkitd in the cluster, alone in its release
   (support/buildkit.py), on a NodePort with mTLS: what users run.
`KACI_TEST_BUILDER=docker` runs them on the docker driver instead; a test that is
about the Docker Engine asks for it with `DOCKER_DRIVER`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import processes  # type: ignore[import-not-found,unused-ignore]  # tests/shared
import yaml

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "mnist"
INSTANCE_LABEL = "kaci.dev/operator"
DOCKER_DRIVER = {"KACI_BUILDER": "docker"}

_host_buildkitd: list[Any] = []  # [the context manager, the running daemon]
_host_lock = threading.Lock()


def builder_env() -> dict[str, str]:
    """The KACI_* settings of the builder the test operators use (see the docstring)."""
    if os.environ.get("KACI_TEST_BUILDER") == "docker":
        return dict(DOCKER_DRIVER)
    addr = os.environ.get("KACI_TEST_BUILDKIT_ADDR")
    if addr:
        env = {"KACI_BUILDER": "buildkit", "KACI_BUILDKIT_ADDR": addr}
        tls = os.environ.get("KACI_TEST_BUILDKIT_TLS_DIR")
        if tls:
            env |= {
                "KACI_BUILDKIT_TLS_CA": f"{tls}/ca.crt",
                "KACI_BUILDKIT_TLS_CERT": f"{tls}/tls.crt",
                "KACI_BUILDKIT_TLS_KEY": f"{tls}/tls.key",
            }
        if os.environ.get("KACI_TEST_BUILDKIT_TLS_SERVER_NAME"):
            env["KACI_BUILDKIT_TLS_SERVER_NAME"] = os.environ["KACI_TEST_BUILDKIT_TLS_SERVER_NAME"]
        if os.environ.get("KACI_TEST_BUILDCTL"):
            env["KACI_BUILDCTL"] = os.environ["KACI_TEST_BUILDCTL"]
        registry = os.environ.get("KACI_TEST_REGISTRY")
        if registry:
            # The registry as that buildkitd reaches it (a Pod's 127.0.0.1 is its own:
            # the node address), while the kubelet keeps pulling 127.0.0.1:5000.
            env |= {
                "KACI_REGISTRY": registry,
                "KACI_REGISTRY_PULL": "127.0.0.1:5000",
                "KACI_DEFAULT_BASE_IMAGE": f"{registry}/kaci/python:3.11",
            }
        return env
    if os.environ.get("KACI_TEST_BUILDER") == "host-buildkit":
        daemon = host_buildkitd()
        return {
            "KACI_BUILDER": "buildkit",
            "KACI_BUILDKIT_ADDR": daemon.addr,
            "KACI_BUILDCTL": daemon.buildctl,
        }
    from support import buildkit as in_cluster  # type: ignore[import-not-found,unused-ignore]

    bk = in_cluster.ensure_buildkitd()
    # Base images too come through the node address (a Pod's 127.0.0.1 is its own).
    return {**bk.env(), "KACI_DEFAULT_BASE_IMAGE": f"{in_cluster.NODE_REGISTRY}/kaci/python:3.11"}


def host_buildkitd() -> Any:
    """This session's own buildkitd on the host (started once; it reaches the local
    registry on 127.0.0.1:5000 as the kubelet does). Fails, never skips, without
    the binaries: the cluster tier must not skip the build path."""
    import hostbuildkit  # type: ignore[import-not-found,unused-ignore]

    with _host_lock:
        if not _host_buildkitd:
            folder = hostbuildkit.binaries()
            if folder is None:
                raise RuntimeError(hostbuildkit.skip_reason())
            cm = hostbuildkit.running(folder, ["127.0.0.1:5000"])
            _host_buildkitd.extend([cm, cm.__enter__()])
        return _host_buildkitd[1]


def stop_host_buildkitd() -> None:
    with _host_lock:
        if _host_buildkitd:
            cm, _ = _host_buildkitd
            _host_buildkitd.clear()
            cm.__exit__(None, None, None)


@dataclass
class Operator:
    instance: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 80) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def label(self, manifest: dict[str, Any]) -> dict[str, Any]:
        meta = manifest.setdefault("metadata", {})
        meta.setdefault("labels", {})[INSTANCE_LABEL] = self.instance
        return manifest

    def alive(self) -> bool:
        return self.proc.poll() is None


@contextlib.contextmanager
def run_operator(instance: str, extra_env: dict[str, str] | None = None) -> Iterator[Operator]:
    """Start the operator; stop it by its PID (SIGTERM, then SIGKILL) afterwards."""
    log = Path(tempfile.mkstemp(prefix="kaci-operator-", suffix=".log")[1])
    env = {
        **os.environ,
        "KUBECONFIG": str(ROOT / ".cluster" / "kubeconfig"),
        "KACI_OPERATOR_INSTANCE": instance,
        "KACI_DEFAULT_BASE_IMAGE": "127.0.0.1:5000/kaci/python:3.11",
        "KACI_PIP_FIND_LINKS": "/wheels",
        "KACI_PIP_NO_INDEX": "true",
        "KACI_BUILD_TIMEOUT_S": "900",
        **builder_env_unless_given(extra_env),
        **(extra_env or {}),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kaci.operator"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    op = Operator(instance, proc, log)
    try:
        yield op
    finally:
        processes.stop(proc, 30)


def builder_env_unless_given(extra_env: dict[str, str] | None) -> dict[str, str]:
    """The session's builder, unless the test names one (KACI_BUILDER) itself."""
    if extra_env and "KACI_BUILDER" in extra_env:
        return {}
    return builder_env()


def example(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


def as_stdin(docs: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(d) for d in docs)


def train(out: Path) -> tuple[Path, dict[str, Any]]:
    """Run the walkthrough's train.py; the model file and the sample request."""
    subprocess.run(
        [sys.executable, str(EXAMPLES / "train.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out / "sklearn_mnist_model.pkl", json.loads((out / "sample-request.json").read_text())


def wait_until(check: Any, what: str, attempts: int = 120, every_s: float = 2.0) -> Any:
    """Poll `check()` until it returns something truthy (a bounded wait, not a speed test)."""
    import time

    for _ in range(attempts):
        got = check()
        if got:
            return got
        time.sleep(every_s)
    raise AssertionError(f"gave up waiting for {what}")


def score(cluster_ip: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    """POST /score on a Service's ClusterIP (kube-proxy routes it from the host)."""
    import requests

    return requests.post(
        f"http://{cluster_ip}/score",
        data=body,
        headers={"Content-Type": "application/json", "Connection": "close", **(headers or {})},
        timeout=30,
    )


def first_score(cluster_ip: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    """score() for the first request after a Pod turned Ready: right then kube-proxy may
    not have programmed the Service's new endpoint yet (it rejects connections to a
    Service without one), so a refused connection is tried again for up to 30 s. Never
    for requests that check availability (a rolling update): those use score()."""
    import time

    import requests

    deadline = time.monotonic() + 30
    while True:
        try:
            return score(cluster_ip, body, headers)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
