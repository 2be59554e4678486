"""A Webservice's Pod deleted, its container SIGKILLed, and the node's containerd and
kubelet restarted: the service comes back Healthy and serves, and the state it shows on
the way (recorded from a watch) leaves Healthy while it cannot serve."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client
from support.faults import (  # type: ignore[import-not-found,unused-ignore]
    StateRecorder,
    factor_configmap,
    image,
    model,
    own_daemon_pid,
    start_cluster,
    webservice,
)
from support.kaci_operator import Operator, run_operator, score, wait_until  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = ROOT / ".cluster"
CONTAINERD_SOCK = CLUSTER_DIR / "run" / "containerd.sock"
BODY = json.dumps({"data": [1, 2.5]}).encode()
NAME = "faulty"


class Env:
    def __init__(self, kubectl: Any, ns: str, op: Operator, api: k8s_client.ApiClient) -> None:
        self.kubectl, self.ns, self.op, self.api = kubectl, ns, op, api

    def get(self, what: str, *args: str) -> Any:
        return json.loads(self.kubectl("get", what, *args, "-n", self.ns, "-o", "json"))

    def wait_ready(self) -> None:
        try:
            self.kubectl(
                "wait",
                "--for=condition=Ready",
                f"webservice/{NAME}",
                "-n",
                self.ns,
                "--timeout=600s",
                timeout=700,
            )
        except Exception as e:
            objs = self.kubectl("get", "kaci,deploy,pods", "-n", self.ns, "-o", "wide")
            raise AssertionError(f"{e}\n{objs}\n{self.op.log_tail()}") from e

    def pods(self) -> list[dict[str, Any]]:
        items = self.get("pods", f"-l=kaci.dev/webservice={NAME}")["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def serving(self) -> bool:
        ip = self.kubectl("get", "service", NAME, "-n", self.ns, "-o=jsonpath={.spec.clusterIP}")
        try:
            return bool(score(ip, BODY).status_code == 200)
        except OSError:  # refused while the Service has no ready endpoint
            return False

    def serves(self) -> None:
        ip = self.kubectl("get", "service", NAME, "-n", self.ns, "-o=jsonpath={.spec.clusterIP}")
        resp = score(ip, BODY)
        assert resp.status_code == 200, resp.text
        assert resp.json() == [2.0, 5.0]


@pytest.fixture(scope="module")
def env(
    make_namespace: Any,
    crds: None,
    kubectl: Any,
    kube: k8s_client.ApiClient,
) -> Iterator[Env]:
    ns = f"t-faults-pods-{secrets.token_hex(3)}"
    make_namespace(ns)  # ready for Pods (its default ServiceAccount exists)
    try:
        with run_operator(f"pods-{secrets.token_hex(3)}") as op:
            marker = secrets.token_hex(4)
            docs = [
                model("factor", {"configMap": {"name": "factor"}}),
                image("img", ["factor"], marker),
                webservice(NAME, {"image": {"name": "img"}}, marker),
            ]
            kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(factor_configmap("factor")))
            kubectl(
                "apply",
                "-n",
                ns,
                "-f",
                "-",
                input="\n".join(json.dumps(op.label(d)) for d in docs),
            )
            e = Env(kubectl, ns, op, kube)
            e.wait_ready()
            yield e
            assert op.alive(), op.log_tail()
    finally:
        kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found")


def _back_to_healthy(env: Env, rec: StateRecorder, start: int) -> list[str]:
    """Wait until the recorder saw the service leave Healthy and come back; its states."""

    def done() -> list[str] | None:
        seen = rec.since(start)
        return seen if len(seen) >= 2 and seen[-1] == "Healthy" else None

    try:
        return wait_until(done, "the service to leave Healthy and come back", attempts=150)  # type: ignore[no-any-return]
    except AssertionError as e:
        raise AssertionError(f"{e}: states {rec.since(start)}\n{env.op.log_tail()}") from e


def test_deleted_pod_comes_back_through_transitioning(env: Env) -> None:
    env.serves()
    old = env.pods()[0]["metadata"]["name"]
    with StateRecorder(env.api, env.ns, NAME) as rec:
        wait_until(lambda: rec.states == ["Healthy"] or None, "the recorder to see Healthy")
        env.kubectl("delete", "pod", old, "-n", env.ns, "--wait=false")
        states = _back_to_healthy(env, rec, 1)
    assert states[0] == "Transitioning", states
    assert "Failed" not in states, states
    env.wait_ready()
    assert [p["metadata"]["name"] for p in env.pods()] != [old]
    wait_until(lambda: env.serving() or None, "the Service to route to the Pod")
    env.serves()


def _container_id(pod: dict[str, Any]) -> str:
    cid = str(pod["status"]["containerStatuses"][0]["containerID"])
    assert cid.startswith("containerd://"), cid
    return cid.removeprefix("containerd://")


def test_killed_container_restarts_and_service_recovers(env: Env) -> None:
    env.wait_ready()
    pod = env.pods()[0]
    restarts = int(pod["status"]["containerStatuses"][0]["restartCount"])
    with StateRecorder(env.api, env.ns, NAME) as rec:
        wait_until(lambda: rec.states == ["Healthy"] or None, "the recorder to see Healthy")
        # The scoring container of the Pod this test started, killed through containerd.
        subprocess.run(
            [
                "ctr",
                "--address",
                str(CONTAINERD_SOCK),
                "-n",
                "k8s.io",
                "tasks",
                "kill",
                "-s",
                "SIGKILL",
                _container_id(pod),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        states = _back_to_healthy(env, rec, 1)
    # It left Healthy and came back. One exit of a container that was serving is
    # Unhealthy while the kubelet restarts it, never Failed (that is a crash loop).
    assert states[-1] == "Healthy"
    assert states[0] != "Healthy", states
    if restarts == 0:
        assert "Failed" not in states, states
    env.wait_ready()
    (same,) = env.pods()
    assert same["metadata"]["name"] == pod["metadata"]["name"]
    assert int(same["status"]["containerStatuses"][0]["restartCount"]) == restarts + 1
    wait_until(lambda: env.serving() or None, "the Service to route to the Pod")
    env.serves()


def _stop(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not Path(f"/proc/{pid}").exists() or None, f"pid {pid} to exit", 60, 0.5)


def test_containerd_then_kubelet_restarted_services_come_back(env: Env) -> None:
    env.wait_ready()
    env.serves()
    # Each stopped by the PID hack/cluster.sh recorded; `hack/cluster.sh up` starts what is
    # missing again. Containers outlive both (their shims keep running), so the Pod
    # serves throughout.
    for component in ("containerd", "kubelet"):
        _stop(own_daemon_pid(CLUSTER_DIR, component))
        env.serves()
        start_cluster()
        env.kubectl(
            "wait", "--for=condition=Ready", "node/kaci-node", "--timeout=300s", timeout=400
        )
        # A restarted kubelet probes its Pods afresh (not ready until the first probe
        # passes), so the service comes back rather than never leaving: wait for it.
        wait_until(lambda: env.serving() or None, f"the service to serve after {component}")
        env.wait_ready()
    # A Pod created after the restart runs too: the node really works again.
    old = env.pods()[0]["metadata"]["name"]
    env.kubectl("delete", "pod", old, "-n", env.ns, "--wait=false")

    def new_pod_ready() -> bool:
        pods = env.pods()
        return bool(pods) and all(
            p["metadata"]["name"] != old
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions") or []
            )
            for p in pods
        )

    wait_until(new_pod_ready, "a new Pod to turn ready")
    env.wait_ready()
    wait_until(lambda: env.serving() or None, "the Service to route to the Pod")
    env.serves()
