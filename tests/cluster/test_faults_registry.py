"""The registry restarted while an Image builds: the Image ends Succeeded (pushed once the
registry is back) or Failed with a reason that names the push; it never stays Running.

The registry is stopped by the PID hack/cluster.sh recorded for it and started again by
`hack/cluster.sh docker` (which starts whatever of Docker and the registry is not
running), the same way an operator of this cluster would."""

from __future__ import annotations

import json
import os
import secrets
import signal
from pathlib import Path
from typing import Any

from support.faults import (  # type: ignore[import-not-found,unused-ignore]
    image,
    ready_factor_model,
    registry_tags,
    start_docker_and_registry,
)
from support.kaci_operator import run_operator, wait_until  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = ROOT / ".cluster"


def _registry_pid() -> int:
    pid = int((CLUSTER_DIR / "run" / "registry.pid").read_text().strip())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert f"{CLUSTER_DIR}/" in cmdline, f"pid {pid} is not this cluster's registry: {cmdline}"
    return pid


def test_registry_restarted_during_a_build(
    kubectl: Any,
    namespace: str,
    crds: None,
) -> None:
    marker = secrets.token_hex(4)
    img = image("slow", ["factor"], marker)
    # A build step that takes a while, so the restart lands inside the build.
    img["spec"]["dockerSteps"] = f"RUN echo {marker} && sleep 8"
    with run_operator(f"reg-{secrets.token_hex(3)}") as op:
        ready_factor_model(kubectl, namespace, op.label)
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(op.label(img)))

        def state() -> str:
            st = json.loads(kubectl("get", "image", "slow", "-n", namespace, "-o", "json"))
            return str((st.get("status") or {}).get("state") or "")

        wait_until(lambda: state() == "Running" or None, "the build to start", 300, 0.5)
        pid = _registry_pid()
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not Path(f"/proc/{pid}").exists() or None, "the registry to stop")
        start_docker_and_registry()

        final = wait_until(
            lambda: state() if state() in ("Succeeded", "Failed") else None,
            "the Image to leave Running",
            attempts=300,
        )
        got = json.loads(kubectl("get", "image", "slow", "-n", namespace, "-o", "json"))["status"]
        ready = next(c for c in got["conditions"] if c["type"] == "Ready")
        if final == "Succeeded":
            assert ready["status"] == "True"
            assert len(registry_tags(f"kaci/{namespace}/slow")) == 1
            digest = got["imageLocation"].split("@", 1)[1]
            assert digest.startswith("sha256:")
        else:
            assert ready["reason"] == "BuildFailed", ready
            assert "push" in ready["message"] or "registry" in ready["message"], ready
        assert op.alive(), op.log_tail()
