"""The demo's objects and the three options' objects applied in seeded random orders,
with random delays, on the real cluster: every order converges to Ready with the
right predictions (the lost wake-up `make demo` once hit, and its kin)."""

from __future__ import annotations

import json
import random
import secrets
import time
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
from test_op_walkthrough import SERVICES, wait_ready  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parents[2]
RUNS = 10


@pytest.fixture(scope="module")
def op(local_cluster: Path) -> Iterator[Operator]:
    with run_operator(f"races-{secrets.token_hex(3)}") as operator:
        yield operator


@pytest.fixture(scope="module")
def shared_namespace(make_namespace: Any, kubectl: Any) -> Iterator[str]:
    """One namespace for every order: the registry keeps the images built for it, so a
    later order's Images find theirs (same inputs, same tag) and the runs are about
    ordering, not build time. Emptied before each run."""
    ns = make_namespace(f"t-races-{secrets.token_hex(3)}")
    yield ns
    kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found")


def empty(kubectl: Any, namespace: str) -> None:
    kubectl(
        "delete", "webservices,images,models,configmaps", "--all", "-n", namespace, "--wait=true"
    )
    wait_until(
        lambda: not kubectl("get", "pods", "-n", namespace, "-o", "name").strip(),
        "the previous run's Pods to go",
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], list[Any]]:
    model_file, sample = train(tmp_path_factory.mktemp("mnist"))
    expected = joblib.load(model_file).predict(np.array(sample["data"])).tolist()
    return model_file, sample, expected


@pytest.mark.parametrize("seed", range(RUNS))
def test_any_order_converges(
    kubectl: Any,
    shared_namespace: str,
    op: Operator,
    trained: tuple[Path, dict[str, Any], list[Any]],
    seed: int,
) -> None:
    namespace = shared_namespace
    empty(kubectl, namespace)
    rnd = random.Random(seed)
    model_file, sample, expected = trained
    docs = [
        op.label(d) for f in ("model.yaml", "image.yaml", "webservices.yaml") for d in example(f)
    ]
    steps: list[tuple[str, Any]] = [("doc", d) for d in docs]
    steps += [("configmap", "model"), ("configmap", "scoring")]
    rnd.shuffle(steps)
    order = []
    for what, item in steps:
        if what == "doc":
            kubectl("apply", "-n", namespace, "-f", "-", input=as_stdin([item]))
            order.append(f"{item['kind']}/{item['metadata']['name']}")
        elif item == "model":
            kubectl(
                "create", "configmap", "mnist-model", f"--from-file={model_file}", "-n", namespace
            )
            order.append("ConfigMap/mnist-model")
        else:
            kubectl(
                "create",
                "configmap",
                "mnist-scoring",
                f"--from-file={ROOT / 'examples/mnist/score.py'}",
                f"--from-file={ROOT / 'examples/mnist/myenv.yml'}",
                "-n",
                namespace,
            )
            order.append("ConfigMap/mnist-scoring")
        time.sleep(rnd.uniform(0, 1.5))
    print(f"seed {seed}: {' -> '.join(order)}")
    wait_ready(kubectl, namespace, op, *(f"webservice/{s}" for s in SERVICES), timeout="600s")
    body = json.dumps(sample).encode()
    for svc in SERVICES:
        ip = kubectl("get", "service", svc, "-n", namespace, "-o", "jsonpath={.spec.clusterIP}")
        resp = first_score(ip, body)
        assert resp.status_code == 200, (svc, ip, resp.status_code, resp.headers, resp.text, order)
        assert resp.json() == expected, (svc, order)
    # Until the registered Model is stored, aci-mnist-2 and myimage1 may take
    # aci-mnist-1's files (the README's rule); once it is, they name it.
    want = {
        "aci-mnist-1": "aci-mnist-1",
        "aci-mnist-2": "sklearn-mnist",
        "myimage1": "sklearn-mnist",
    }

    def chosen() -> dict[str, Any]:
        images = json.loads(kubectl("get", "images", "-n", namespace, "-o", "json"))["items"]
        return {
            i["metadata"]["name"]: ((i.get("status") or {}).get("models") or [{}])[0].get("object")
            for i in images
        }

    deadline = time.monotonic() + 120
    while chosen() != want:
        assert time.monotonic() < deadline, (order, chosen())
        time.sleep(1)
