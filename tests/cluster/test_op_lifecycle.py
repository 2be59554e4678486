"""A Webservice's life on the real cluster: keys, rolling updates with a client scoring
throughout, a deleted Pod coming back, and the failures users meet (init() raised, out of
memory, image pull, unschedulable, a failed new revision while the old one serves)."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.kaci_operator import (  # type: ignore[import-not-found,unused-ignore]
    ROOT,
    Operator,
    as_stdin,
    first_score,
    run_operator,
    score,
    train,
    wait_until,
)

GOOD_SCORE = (ROOT / "examples/mnist/score.py").read_text()
INIT_RAISES = """
def init():
    raise ValueError("model file is broken: kaci-lifecycle-test")

def run(raw_data):
    return raw_data
"""
OOM = """
def init():
    global hog
    hog = bytearray(700 * 1024 * 1024)  # more than the 0.25 GB the service gets

def run(raw_data):
    return raw_data
"""


class Env:
    def __init__(self, kubectl: Any, ns: str, op: Operator, sample: dict[str, Any]) -> None:
        self.kubectl, self.ns, self.op, self.sample = kubectl, ns, op, sample
        self.body = json.dumps(sample).encode()

    def apply(self, *docs: dict[str, Any]) -> None:
        self.kubectl(
            "apply", "-n", self.ns, "-f", "-", input=as_stdin([self.op.label(d) for d in docs])
        )

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return json.loads(self.kubectl("get", kind, name, "-n", self.ns, "-o", "json"))  # type: ignore[no-any-return]

    def diagnose(self) -> str:
        try:
            objs = self.kubectl("get", "kaci,deploy,pods", "-n", self.ns, "-o", "wide")
        except Exception as e:
            objs = str(e)
        return f"{objs}\n--- operator log ---\n{self.op.log_tail()}"

    def wait(self, *args: str, timeout: str = "600s") -> None:
        try:
            self.kubectl("wait", *args, "-n", self.ns, f"--timeout={timeout}", timeout=700)
        except Exception as e:
            raise AssertionError(f"{e}\n{self.diagnose()}") from e

    def wait_ready(self, kind: str, name: str) -> None:
        self.wait("--for=condition=Ready", f"{kind}/{name}")

    def wait_state(self, name: str, state: str, contains: str = "") -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            st = self.get("webservice", name).get("status") or {}
            msg = (st.get("error") or {}).get("message") or ""
            return st if st.get("state") == state and contains in msg else None

        try:
            return wait_until(check, f"{name} {state} {contains!r}", attempts=150)  # type: ignore[no-any-return]
        except AssertionError as e:
            st = self.get("webservice", name).get("status")
            raise AssertionError(f"{e}: status {json.dumps(st)}\n{self.diagnose()}") from e

    def delete(self, name: str) -> None:
        """Free the node's CPU for the next test (one node, shared with other tests)."""
        self.kubectl("delete", "webservice", name, "-n", self.ns, "--wait=true")

    def ip(self, name: str) -> str:
        return str(
            self.kubectl("get", "service", name, "-n", self.ns, "-o", "jsonpath={.spec.clusterIP}")
        )


def image(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kaci.dev/v1alpha1",
        "kind": "Image",
        "metadata": {"name": name},
        "spec": {
            "models": [{"name": "sklearn_mnist"}],
            "executionScript": {"inline": script},
            "condaFile": {"configMap": {"name": "mnist-scoring", "key": "myenv.yml"}},
            **extra,
        },
    }


def webservice(name: str, image_name: str, **dc: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kaci.dev/v1alpha1",
        "kind": "Webservice",
        "metadata": {"name": name},
        "spec": {
            "image": {"name": image_name},
            "deploymentConfig": {"cpuCores": 0.1, "memoryGb": 1, **dc},
        },
    }


@pytest.fixture(scope="module")
def env(
    make_namespace: Any, local_cluster: Path, kubectl: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    ns = f"t-op-life-{secrets.token_hex(3)}"
    make_namespace(ns)  # ready for Pods (its default ServiceAccount exists)
    model_file, sample = train(tmp_path_factory.mktemp("mnist"))
    try:
        with run_operator(f"life-{secrets.token_hex(3)}") as op:
            e = Env(kubectl, ns, op, sample)
            kubectl("create", "configmap", "mnist-model", f"--from-file={model_file}", "-n", ns)
            kubectl(
                "create",
                "configmap",
                "mnist-scoring",
                f"--from-file={ROOT / 'examples/mnist/myenv.yml'}",
                "-n",
                ns,
            )
            e.apply(
                {
                    "apiVersion": "kaci.dev/v1alpha1",
                    "kind": "Model",
                    "metadata": {"name": "sklearn-mnist"},
                    "spec": {
                        "modelName": "sklearn_mnist",
                        "source": {"configMap": {"name": "mnist-model"}},
                    },
                },
                image("good", GOOD_SCORE),
                image("init-raises", INIT_RAISES),
                image("oom", OOM),
            )
            e.wait_ready("image", "good")
            yield e
            assert op.alive(), op.log_tail()
    finally:
        kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found")


def test_auth_keys_demanded(env: Env) -> None:
    env.apply(webservice("ws-auth", "good", authEnabled=True))
    env.wait_ready("webservice", "ws-auth")
    st = env.get("webservice", "ws-auth")["status"]
    assert st["keysSecret"] == "ws-auth-keys"
    secret = env.get("secret", "ws-auth-keys")
    import base64

    keys = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(keys) == {"primaryKey", "secondaryKey"}
    assert keys["primaryKey"] != keys["secondaryKey"]
    ip = env.ip("ws-auth")
    assert first_score(ip, env.body).status_code == 401
    assert score(ip, env.body, {"Authorization": "Bearer wrong"}).status_code == 401
    for key in keys.values():
        resp = score(ip, env.body, {"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200, resp.text
    # keys survive a reconcile (a spec change) unchanged
    env.apply(webservice("ws-auth", "good", authEnabled=True, description="touched"))
    env.wait("--for=jsonpath={.status.observedGeneration}=2", "webservice/ws-auth")
    again = env.get("secret", "ws-auth-keys")["data"]
    assert again == secret["data"]
    env.delete("ws-auth")


def test_rolling_update_serves_throughout_and_pod_comes_back(env: Env) -> None:
    env.apply(webservice("ws-roll", "good"))
    env.wait_ready("webservice", "ws-roll")
    ip = env.ip("ws-roll")
    # The Service answers steadily before the update starts (kube-proxy has the Pod).
    for _ in range(10):
        wait_until(lambda: _ok(ip, env.body), "the Service to answer", attempts=30, every_s=1)
    results: list[int | str] = []
    stop = threading.Event()

    def client() -> None:
        for _ in range(5000):  # bounded; stopped by the event long before
            if stop.is_set():
                return
            try:
                results.append(score(ip, env.body).status_code)
            except Exception as e:  # a refused or reset connection is a failed request
                results.append(repr(e))

    t = threading.Thread(target=client)
    t.start()
    mark = -1
    try:
        wait_until(lambda: len(results) >= 5, "the client to start", attempts=60, every_s=0.5)
        mark = len(results)
        # A new memory size is a new Pod template: a rolling update.
        env.apply(webservice("ws-roll", "good", memoryGb=1.25))
        env.wait("--for=jsonpath={.status.observedGeneration}=2", "webservice/ws-roll")
        env.kubectl(
            "rollout", "status", "deployment/ws-roll", "-n", env.ns, "--timeout=600s", timeout=700
        )
        env.wait_ready("webservice", "ws-roll")
        wait_until(
            lambda: (
                len(
                    env.kubectl(
                        "get",
                        "pods",
                        "-n",
                        env.ns,
                        "-l",
                        "kaci.dev/webservice=ws-roll",
                        "-o",
                        "name",
                    ).split()
                )
                == 1
            ),
            "the old Pod to go",
        )
    finally:
        stop.set()
        t.join()
    failed = [r for r in results if r != 200]
    if failed:
        pods = env.kubectl("get", "pods", "-n", env.ns, "-o", "wide")
        events = env.kubectl("get", "events", "-n", env.ns, "--sort-by=.lastTimestamp")
        where = [i for i, r in enumerate(results) if r != 200]
        print(f"failed at {where[:3]}..{where[-3:]} of {len(results)}; update began at {mark}")
        print(pods, events[-5000:])
    assert len(results) > 10
    assert failed == [], f"{len(failed)} of {len(results)} requests failed: {failed[:5]}"
    dep = env.get("deployment", "ws-roll")
    limits = dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "100m", "memory": "1280Mi"}

    # A deleted Pod is recreated and the service turns Healthy again.
    selector = "kaci.dev/webservice=ws-roll"
    old = env.kubectl("get", "pods", "-n", env.ns, "-l", selector, "-o", "name").split()
    env.kubectl("delete", "pods", "-n", env.ns, "-l", selector, "--wait=true")

    def new_pod_ready() -> bool:
        pods = json.loads(env.kubectl("get", "pods", "-n", env.ns, "-l", selector, "-o", "json"))
        return any(
            f"pod/{p['metadata']['name']}" not in old
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", [])
            )
            for p in pods["items"]
        )

    wait_until(new_pod_ready, "a new ready Pod")
    env.wait_state("ws-roll", "Healthy")
    # kube-proxy follows the new endpoint a moment after the Pod turns ready
    wait_until(lambda: _ok(ip, env.body), "the Service to answer again", attempts=30, every_s=1)

    # A new revision that fails while the old one still serves says so, and still serves.
    env.apply(webservice("ws-roll", "init-raises", memoryGb=1.25))
    st = env.wait_state("ws-roll", "Failed", "previous one still serves")
    assert "model file is broken" in st["error"]["message"] or "exited" in st["error"]["message"]
    assert score(ip, env.body).status_code == 200
    env.delete("ws-roll")


def _ok(ip: str, body: bytes) -> bool:
    try:
        return bool(score(ip, body).status_code == 200)
    except Exception:
        return False


def test_init_raised_shows_the_reason(env: Env) -> None:
    env.apply(webservice("ws-init", "init-raises"))
    st = env.wait_state("ws-init", "Failed", "model file is broken: kaci-lifecycle-test")
    assert st["error"]["code"] == "ContainerFailed"
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    # it keeps failing the same way: a crash loop, still with the reason
    env.wait_state("ws-init", "Failed", "crash loop")
    env.delete("ws-init")


def test_out_of_memory_says_raise_memory(env: Env) -> None:
    env.apply(webservice("ws-oom", "oom", memoryGb=0.25))
    st = env.wait_state("ws-oom", "Failed", "raise memoryGb")
    assert st["error"]["code"] == "OOMKilled"
    env.delete("ws-oom")


def test_unschedulable_says_lower_cpu(env: Env) -> None:
    env.apply(webservice("ws-huge", "good", cpuCores=64))
    st = env.wait_state("ws-huge", "Unschedulable", "lower cpuCores/memoryGb")
    assert "Insufficient cpu" in st["error"]["message"]
    env.delete("ws-huge")


def test_image_pull_error(env: Env) -> None:
    # An Image whose pushed image vanished from the registry: its status says Succeeded
    # (set by hand here; labelled for an operator instance that does not run, so no
    # operator touches it).
    ghost = image("vanished", GOOD_SCORE)
    ghost["metadata"]["labels"] = {"kaci.dev/operator": "nobody"}
    env.kubectl("apply", "-n", env.ns, "-f", "-", input=json.dumps(ghost))
    missing = "127.0.0.1:5000/kaci/nowhere/vanished@sha256:" + "0" * 64
    env.kubectl(
        "patch",
        "image",
        "vanished",
        "-n",
        env.ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"state": "Succeeded", "version": 1, "imageLocation": missing}}),
    )
    env.apply(webservice("ws-pull", "vanished"))
    st = env.wait_state("ws-pull", "Failed", "could not be pulled")
    assert st["error"]["code"] == "ImagePullFailed"
    env.delete("ws-pull")
