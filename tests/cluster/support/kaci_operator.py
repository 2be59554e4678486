"""Shared by the operator's cluster tests (no tests here): run the operator, label objects.

The operator runs as a subprocess (`python -m kaci.operator`, all namespaces) with a
fresh `KACI_OPERATOR_INSTANCE`, so it handles only objects carrying that label, and
another kaci operator on the same cluster (the Helm chart's) leaves them alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "mnist"
INSTANCE_LABEL = "kaci.dev/operator"


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
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


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
