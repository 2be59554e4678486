"""The operator SIGKILLed at random (seeded) moments while it deploys each of the three
Azure options, and started again each time: everything converges to Ready, nothing is
built or pushed twice, nothing is orphaned or lost, and a converged deployment survives
more kills untouched (same Pod, same image, no new build).

Kill moments are drawn from a seeded generator (one stream per option), so a failure
names the schedule that caused it; the images are new each run (a fresh marker in
score.py), so the kills land in real builds, pushes and rollouts.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import signal
import time
from typing import Any

import pytest
from support.faults import (  # type: ignore[import-not-found,unused-ignore]
    factor_configmap,
    image,
    model,
    registry_tags,
    wait_ready_or_explain,
    webservice,
)
from support.kaci_operator import INSTANCE_LABEL, first_score, run_operator, score, wait_until  # type: ignore[import-not-found,unused-ignore]

SEED = 20261125
KILLS_WHILE_DEPLOYING = 6  # per option: 18 over the three
KILLS_WHEN_CONVERGED = 2  # per option: 6 more
SVC = "svc"


def _docs(option: str, marker: str) -> tuple[list[dict[str, Any]], str, str]:
    """(kaci objects to apply, the Image's imageName, the modelName) for one option."""
    if option == "modelFiles":
        ws = webservice(SVC, {"modelFiles": {"configMap": {"name": "factor"}}}, marker)
        return [ws], SVC, SVC
    if option == "models":
        ws = webservice(SVC, {"models": [{"name": "factor"}]}, marker)
        return [model("factor", {"configMap": {"name": "factor"}}), ws], SVC, "factor"
    ws = webservice(SVC, {"image": {"name": "img"}}, marker)
    return (
        [
            model("factor", {"configMap": {"name": "factor"}}),
            image("img", ["factor"], marker),
            ws,
        ],
        "img",
        "factor",
    )


def _labelled(doc: dict[str, Any], instance: str) -> dict[str, Any]:
    """For this test's operator instance; Webservices demand keys (a Secret to keep)."""
    doc["metadata"].setdefault("labels", {})[INSTANCE_LABEL] = instance
    if doc["kind"] == "Webservice":
        doc["spec"]["deploymentConfig"]["authEnabled"] = True
    return doc


def _get(kubectl: Any, ns: str, what: str, *args: str) -> Any:
    return json.loads(kubectl("get", what, *args, "-n", ns, "-o", "json"))


def _push_events(kubectl: Any, ns: str, image_obj: str) -> int:
    """How many pushes the operator reported for that Image (Events, counted)."""
    events = _get(kubectl, ns, "events", f"--field-selector=involvedObject.name={image_obj}")
    return sum(
        int(e.get("count") or 1)
        for e in events["items"]
        if e["involvedObject"].get("kind") == "Image" and e.get("message", "").startswith("pushed ")
    )


def _kill_cycles(instance: str, rng: random.Random, n: int, low: float, high: float) -> list[str]:
    """Start the operator, SIGKILL it after a drawn delay, n times; the logs of each run."""
    logs = []
    for _ in range(n):
        with run_operator(instance) as op:
            time.sleep(rng.uniform(low, high))
            assert op.alive(), f"the operator died by itself:\n{op.log_tail()}"
            op.proc.send_signal(signal.SIGKILL)
            op.proc.wait(timeout=30)
            logs.append(op.log_path.read_text(errors="replace"))
            op.log_path.unlink()
    return logs


@pytest.mark.parametrize("option", ["modelFiles", "models", "image"])
def test_operator_sigkilled_while_deploying_converges(
    option: str,
    kubectl: Any,
    namespace: str,
    crds: None,
) -> None:
    rng = random.Random(f"{SEED}-{option}")
    instance = f"kill-{secrets.token_hex(3)}"
    docs, image_obj, model_name = _docs(option, secrets.token_hex(4))
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(factor_configmap("factor")))
    kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input="\n".join(json.dumps(_labelled(d, instance)) for d in docs),
    )
    kaci_objects = sorted(
        [f"{d['kind'].lower()}.kaci.dev/{d['metadata']['name']}" for d in docs]
        + (
            [f"model.kaci.dev/{SVC}", f"image.kaci.dev/{SVC}"]
            if option == "modelFiles"
            else [f"image.kaci.dev/{SVC}"]
            if option == "models"
            else []
        )
    )

    _kill_cycles(instance, rng, KILLS_WHILE_DEPLOYING, 1.0, 6.0)

    with run_operator(instance) as op:
        wait_ready_or_explain(kubectl, namespace, kaci_objects, op)

        # Nothing lost, nothing extra: exactly the objects applied and their children.
        names = kubectl("get", "models,images,webservices", "-n", namespace, "-o", "name")
        assert sorted(names.split()) == kaci_objects
        ws = _get(kubectl, namespace, "webservice", SVC)
        assert ws["status"]["state"] == "Healthy"
        assert ws["status"]["observedGeneration"] == ws["metadata"]["generation"]

        # Built once: version 1 of the model and the image, one tag each in the registry,
        # at most one push reported for the image.
        img = _get(kubectl, namespace, "image", image_obj)["status"]
        mdl = [
            m["status"]
            for m in _get(kubectl, namespace, "models")["items"]
            if m["spec"]["modelName"] == model_name
        ]
        assert img["version"] == 1, img
        assert [m["version"] for m in mdl] == [1]
        assert len(mdl[0]["versions"]) == 1, mdl
        assert len(registry_tags(f"kaci/{namespace}/{image_obj}")) == 1
        assert len(registry_tags(f"kaci-models/{namespace}/{model_name}")) == 1
        assert ws["status"]["imageLocation"] == img["imageLocation"]
        pushes = _push_events(kubectl, namespace, image_obj)
        assert pushes <= 1, f"{pushes} pushes of one image"

        # Its children: one Deployment, Service, keys Secret and serving Pod, all owned.
        uid = ws["metadata"]["uid"]
        children = _get(
            kubectl,
            namespace,
            "deployments,services,secrets",
            "-l",
            "app.kubernetes.io/managed-by=kaci",
        )["items"]
        assert sorted(f"{c['kind']}/{c['metadata']['name']}" for c in children) == sorted(
            [f"Deployment/{SVC}", f"Service/{SVC}", f"Secret/{SVC}-keys"]
        )
        for c in children:
            assert [o["uid"] for o in c["metadata"]["ownerReferences"]] == [uid], c["metadata"]
        pods = wait_until(
            lambda: (
                [
                    p
                    for p in _get(kubectl, namespace, "pods", f"-l=kaci.dev/webservice={SVC}")[
                        "items"
                    ]
                    if not p["metadata"].get("deletionTimestamp")
                ]
                or None
            ),
            "the serving Pod",
        )
        assert len(pods) == 1
        pod_name = pods[0]["metadata"]["name"]

        keys = _get(kubectl, namespace, "secret", f"{SVC}-keys")["data"]
        key = base64.b64decode(keys["primaryKey"]).decode()
        ip = kubectl("get", "service", SVC, "-n", namespace, "-o", "jsonpath={.spec.clusterIP}")
        body = json.dumps({"data": [1, 2.5]}).encode()
        resp = first_score(ip, body, {"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200, resp.text
        assert resp.json() == [2.0, 5.0]
        op.proc.send_signal(signal.SIGKILL)
        op.proc.wait(timeout=30)

    # Converged: more kills change nothing (no rebuild, no new Pod, same keys).
    _kill_cycles(instance, rng, KILLS_WHEN_CONVERGED, 1.0, 5.0)
    with run_operator(instance) as op:
        # Once the operator has looked at every object again (its log says so, once
        # per object), compare with before.
        def resumed() -> bool:
            text: str = op.log_path.read_text(errors="replace")
            return text.count("first pass over ") >= len(kaci_objects)

        wait_until(resumed, "the operator to resume every object", attempts=90)
        kubectl(
            "wait",
            "--for=condition=Ready",
            f"webservice/{SVC}",
            "-n",
            namespace,
            "--timeout=300s",
            timeout=400,
        )
        assert (
            _get(kubectl, namespace, "image", image_obj)["status"]["imageLocation"]
            == (img["imageLocation"])
        )
        assert _push_events(kubectl, namespace, image_obj) == pushes
        assert len(registry_tags(f"kaci/{namespace}/{image_obj}")) == 1
        now_pods = [
            p["metadata"]["name"]
            for p in _get(kubectl, namespace, "pods", f"-l=kaci.dev/webservice={SVC}")["items"]
        ]
        assert now_pods == [pod_name]
        assert _get(kubectl, namespace, "secret", f"{SVC}-keys")["data"] == keys
        assert score(ip, body, {"Authorization": f"Bearer {key}"}).status_code == 200

        # Deleting what was applied leaves nothing behind (owner references, no stuck
        # finalizer from an interrupted handler).
        kubectl(
            "delete",
            "-n",
            namespace,
            *(f"{d['kind'].lower()}.kaci.dev/{d['metadata']['name']}" for d in docs),
            "--wait=true",
            "--timeout=300s",
            timeout=400,
        )

        def leftovers() -> list[str]:
            out = kubectl(
                "get",
                "kaci,deployments,replicasets,services,pods,secrets",
                "-n",
                namespace,
                "-l",
                "app.kubernetes.io/managed-by=kaci",
                "-o",
                "name",
            )
            more = kubectl("get", "kaci,pods", "-n", namespace, "-o", "name")
            return sorted(set(out.split() + more.split()))

        wait_until(lambda: not leftovers() or None, f"nothing left in {namespace}", attempts=90)
        assert op.alive(), op.log_tail()
