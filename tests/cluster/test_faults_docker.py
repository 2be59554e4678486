"""The Docker engine restarted during a build: the Image is built again once the engine is
back (or ends Failed with a reason naming the engine); it never stays Running. When it
is built, a Webservice deployed from it scores.

dockerd is stopped by the PID hack/cluster.sh recorded for it (SIGTERM, as a restart
does; only when that process is this clone's own) while a build step is running in it,
and started again by `hack/cluster.sh docker`, the same way an operator of this cluster
would. dockerd runs its own containerd, apart from the kubelet's, and the registry is a
separate process: the restart touches builds only, not serving Pods. It does cut every
other build on the machine's engine, so this test is one build long."""

from __future__ import annotations

import json
import os
import secrets
import signal
from pathlib import Path
from typing import Any

import docker
import docker.errors
from kubernetes import client as k8s_client
from support.faults import (  # type: ignore[import-not-found,unused-ignore]
    StateRecorder,
    image,
    own_daemon_pid,
    ready_factor_model,
    registry_tags,
    start_docker_and_registry,
    webservice,
)
from support.kaci_operator import (  # type: ignore[import-not-found,unused-ignore]
    DOCKER_DRIVER,
    first_score,
    run_operator,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = ROOT / ".cluster"


def _build_step_running(docker_client: docker.DockerClient, marker: str) -> bool:
    """Is the engine running the build container of the step that carries `marker`?"""
    try:
        running = docker_client.containers.list(filters={"status": "running"})
    except docker.errors.DockerException:
        return False
    return any(marker in " ".join(c.attrs.get("Args") or []) for c in running)


def test_docker_engine_restarted_during_a_build(
    kubectl: Any,
    namespace: str,
    kube: k8s_client.ApiClient,
    docker_client: docker.DockerClient,
    crds: None,
) -> None:
    marker = secrets.token_hex(4)
    img = image("slow", ["factor"], marker)
    # A step long enough for the engine's stop to land inside it (its container is running).
    img["spec"]["dockerSteps"] = f"RUN echo {marker} && sleep 30"
    with run_operator(f"dkr-{secrets.token_hex(3)}", DOCKER_DRIVER) as op:
        ready_factor_model(kubectl, namespace, op.label)

        def status() -> dict[str, Any]:
            obj = json.loads(kubectl("get", "image", "slow", "-n", namespace, "-o", "json"))
            return obj.get("status") or {}

        with StateRecorder(kube, namespace, "slow", plural="images") as rec:
            kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(op.label(img)))
            wait_until(
                lambda: _build_step_running(docker_client, marker) or None,
                "the build's sleep step to run in the engine",
                attempts=600,
                every_s=0.5,
            )
            assert status().get("state") == "Running", status()
            pid = own_daemon_pid(CLUSTER_DIR, "dockerd")
            os.kill(pid, signal.SIGTERM)
            try:
                wait_until(
                    lambda: not Path(f"/proc/{pid}").exists() or None,
                    "dockerd to stop",
                    attempts=120,
                    every_s=0.5,
                )
            finally:
                start_docker_and_registry()  # whatever happened: the engine is everyone's

            def settled() -> str | None:
                state = status().get("state")
                return state if state in ("Succeeded", "Failed") else None

            final = wait_until(settled, "the Image to be built or to fail", attempts=300)
        got = status()
        ready = next(c for c in got["conditions"] if c["type"] == "Ready")
        events = kubectl(
            "get",
            "events",
            "-n",
            namespace,
            "--field-selector=involvedObject.name=slow",
            "-o",
            "jsonpath={range .items[*]}{.reason}: {.message}{'\\n'}{end}",
        )
        assert op.alive(), op.log_tail()
        if final == "Failed":
            # Allowed, if it says why: the engine, not the user's inputs.
            assert "Docker engine" in ready["message"], (ready, rec.states, op.log_tail())
            return
        assert ready["status"] == "True", ready
        # It was retried: Running, back to NotStarted (reason EngineUnavailable), Running.
        assert rec.states[-1] == "Succeeded", rec.states
        assert "NotStarted" in rec.states[rec.states.index("Running") :], rec.states
        assert "EngineUnavailable: the Docker engine" in events, events
        assert "BuildFailed" not in events, events
        assert got["version"] == 1, got
        assert len(registry_tags(f"kaci/{namespace}/slow")) == 1
        assert got["imageLocation"].split("@", 1)[1].startswith("sha256:")

        # The retried image serves: a Webservice deployed from it (Azure's option 3).
        ws = webservice("after-restart", {"image": {"name": "slow"}}, marker)
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(op.label(ws)))
        kubectl(
            "wait",
            "--for=condition=Ready",
            "webservice/after-restart",
            "-n",
            namespace,
            "--timeout=600s",
            timeout=700,
        )
        ip = kubectl(
            "get", "service", "after-restart", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}"
        )
        resp = first_score(ip, json.dumps({"data": [1, 2.5]}).encode())
        assert resp.status_code == 200, resp.text
        assert resp.json() == [2.0, 5.0]
        assert op.alive(), op.log_tail()
