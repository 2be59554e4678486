"""The MNIST walkthrough of Azure's ACI article on the real cluster: three Webservices
(model files, registered model, built image) applied with `kubectl apply -f`, waited for
with `kubectl wait --for=condition=Ready`, scored, then deleted without leftovers."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from support.kaci_operator import (  # type: ignore[import-not-found,unused-ignore]
    Operator,
    as_stdin,
    example,
    first_score,
    run_operator,
    train,
    wait_until,
)

SERVICES = ["aci-mnist-1", "aci-mnist-2", "aci-mnist-3"]


@pytest.fixture(scope="module")
def op(local_cluster: Path) -> Iterator[Operator]:
    with run_operator(f"walk-{secrets.token_hex(3)}") as operator:
        yield operator


def _diagnose(kubectl: Any, ns: str, op: Operator) -> str:
    try:
        objs = kubectl("get", "kaci,deploy,pods", "-n", ns, "-o", "wide")
        events = kubectl("get", "events", "-n", ns, "--sort-by=.lastTimestamp")
    except Exception as e:  # the diagnosis must never hide the failure
        objs, events = f"(kubectl failed: {e})", ""
    return f"{objs}\n{events[-3000:]}\n--- operator log ---\n{op.log_tail()}"


def wait_ready(kubectl: Any, ns: str, op: Operator, *objects: str, timeout: str = "900s") -> None:
    try:
        kubectl(
            "wait",
            "--for=condition=Ready",
            *objects,
            "-n",
            ns,
            f"--timeout={timeout}",
            timeout=1000,
        )
    except Exception as e:
        raise AssertionError(f"{e}\n{_diagnose(kubectl, ns, op)}") from e


def test_walkthrough_three_ways_score_and_delete(
    kubectl: Any, namespace: str, op: Operator, tmp_path: Path
) -> None:
    model_file, sample = train(tmp_path)
    expected = joblib.load(model_file).predict(np.array(sample["data"])).tolist()
    assert len(sample["data"]) == 5

    kubectl("create", "configmap", "mnist-model", f"--from-file={model_file}", "-n", namespace)
    kubectl(
        "create",
        "configmap",
        "mnist-scoring",
        f"--from-file={Path(__file__).resolve().parents[2] / 'examples/mnist/score.py'}",
        f"--from-file={Path(__file__).resolve().parents[2] / 'examples/mnist/myenv.yml'}",
        "-n",
        namespace,
    )
    docs = [
        op.label(d) for f in ("model.yaml", "image.yaml", "webservices.yaml") for d in example(f)
    ]
    kubectl("apply", "-n", namespace, "-f", "-", input=as_stdin(docs))

    wait_ready(kubectl, namespace, op, *(f"webservice/{s}" for s in SERVICES))
    body = json.dumps(sample).encode()
    for svc in SERVICES:
        ws = json.loads(kubectl("get", "webservice", svc, "-n", namespace, "-o", "json"))
        st = ws["status"]
        assert st["state"] == "Healthy"
        assert st["scoringUri"] == f"http://{svc}.{namespace}.svc.cluster.local/score"
        assert st["models"] == [{"name": "sklearn_mnist", "version": 1}]
        assert st["imageLocation"].startswith(f"127.0.0.1:5000/kaci/{namespace}/")
        assert "@sha256:" in st["imageLocation"]
        assert {c["type"]: c["status"] for c in st["conditions"]} == {
            "Ready": "True",
            "ImageReady": "True",
            "PodReady": "True",
            "ServiceReady": "True",
        }
        ip = kubectl("get", "service", svc, "-n", namespace, "-o", "jsonpath={.spec.clusterIP}")
        resp = first_score(ip, body)
        assert resp.status_code == 200, resp.text
        assert resp.json() == expected, svc
        # and through the API server's service proxy, as a user without cluster networking would
        proxied = kubectl(
            "create",
            "--raw",
            f"/api/v1/namespaces/{namespace}/services/{svc}:80/proxy/score",
            "-f",
            "-",
            input=body.decode(),
        )
        assert json.loads(proxied) == expected

    # Option 3 deploys exactly the Image myimage1; option 1 made its own Model and Image.
    ws3 = json.loads(kubectl("get", "webservice", "aci-mnist-3", "-n", namespace, "-o", "json"))
    img = json.loads(kubectl("get", "image", "myimage1", "-n", namespace, "-o", "json"))
    assert ws3["status"]["imageLocation"] == img["status"]["imageLocation"]
    assert ws3["status"]["image"] == {"name": "myimage1", "version": 1}
    child = json.loads(kubectl("get", "model", "aci-mnist-1", "-n", namespace, "-o", "json"))
    assert child["metadata"]["ownerReferences"][0]["kind"] == "Webservice"
    model = json.loads(kubectl("get", "model", "sklearn-mnist", "-n", namespace, "-o", "json"))
    assert model["status"]["version"] == 1
    assert model["status"]["files"] == ["sklearn_mnist_model.pkl"]
    assert model["status"]["digest"] == child["status"]["digest"]

    # Delete what was applied: owner references take everything else with it.
    kubectl("delete", "-n", namespace, "-f", "-", "--wait=true", input=as_stdin(docs))

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
