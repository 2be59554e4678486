"""The walkthrough's three Webservices built on the buildkit driver, with an operator
that cannot reach any Docker Engine (KACI_DOCKER_HOST names a socket where nothing
listens): the scoring image is pushed with zstd layers and the kubelet's containerd
runs it, the build's progress is in status.buildLog, and a Model whose source is an
image pushed by the SDK (with no engine anywhere) is read from the registry."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from kaci.azureml._files import ModelFile
from kaci.azureml._registry import RegistryClient
from kaci.registry import reference
from kaci.registry.client import Distribution
from kaci.render import modelfiles
from support.kaci_operator import (  # type: ignore[import-not-found,unused-ignore]
    Operator,
    as_stdin,
    builder_env,
    example,
    first_score,
    run_operator,
    train,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["aci-mnist-1", "aci-mnist-2", "aci-mnist-3"]
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


@pytest.fixture(scope="module")
def op(local_cluster: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    env = builder_env()
    if env.get("KACI_BUILDER") == "docker":
        pytest.skip("KACI_TEST_BUILDER=docker: this module is about the buildkit driver")
    nowhere = tmp_path_factory.mktemp("no-engine") / "docker.sock"
    env["KACI_DOCKER_HOST"] = f"unix://{nowhere}"
    with run_operator(f"bkd-{secrets.token_hex(3)}", env) as operator:
        yield operator


@pytest.fixture(scope="module")
def ns(make_namespace: Any) -> str:
    return str(make_namespace(f"t-bkd-walk-{secrets.token_hex(3)}"))


def _wait_ready(kubectl: Any, ns: str, op: Operator, *objects: str) -> None:
    try:
        kubectl("wait", "--for=condition=Ready", *objects, "-n", ns, "--timeout=900s", timeout=1000)
    except Exception as e:
        events = kubectl("get", "events", "-n", ns, "--sort-by=.lastTimestamp")
        raise AssertionError(f"{e}\n{events[-3000:]}\n--- operator ---\n{op.log_tail()}") from e


def _layers(location: str) -> list[dict[str, Any]]:
    ref = reference.parse(location)
    layers = Distribution({}, [ref.host]).image_manifest(ref)["layers"]
    return list(layers)


def test_walkthrough_on_buildkit_without_an_engine(
    kubectl: Any, ns: str, op: Operator, tmp_path: Path
) -> None:
    model_file, sample = train(tmp_path)
    expected = joblib.load(model_file).predict(np.array(sample["data"])).tolist()
    kubectl("create", "configmap", "mnist-model", f"--from-file={model_file}", "-n", ns)
    kubectl(
        "create",
        "configmap",
        "mnist-scoring",
        f"--from-file={ROOT / 'examples/mnist/score.py'}",
        f"--from-file={ROOT / 'examples/mnist/myenv.yml'}",
        "-n",
        ns,
    )
    docs = [
        op.label(d) for f in ("model.yaml", "image.yaml", "webservices.yaml") for d in example(f)
    ]
    kubectl("apply", "-n", ns, "-f", "-", input=as_stdin(docs))
    _wait_ready(kubectl, ns, op, *(f"webservice/{s}" for s in SERVICES))

    body = json.dumps(sample).encode()
    for svc in SERVICES:
        st = json.loads(kubectl("get", "webservice", svc, "-n", ns, "-o", "json"))["status"]
        assert st["state"] == "Healthy"
        ip = kubectl("get", "service", svc, "-n", ns, "-o", "jsonpath={.spec.clusterIP}")
        resp = first_score(ip, body)
        assert resp.status_code == 200, resp.text
        assert resp.json() == expected
        # the kubelet's containerd pulled and ran an image of zstd layers only
        assert {x["mediaType"] for x in _layers(st["imageLocation"])} == {ZSTD}

    img = json.loads(kubectl("get", "image", "myimage1", "-n", ns, "-o", "json"))["status"]
    assert img["state"] == "Succeeded"
    log = img["buildLog"]
    assert "built and pushed" in log or "reused" in log
    if "built and pushed" in log:
        assert "Step " in log
    model = json.loads(kubectl("get", "model", "sklearn-mnist", "-n", ns, "-o", "json"))["status"]
    # model images stay gzip (Python and older engines read them)
    assert {x["mediaType"].rsplit("+", 1)[-1] for x in _layers(model["location"])} == {"gzip"}


def test_model_from_an_sdk_pushed_image_without_an_engine(
    kubectl: Any, ns: str, op: Operator, tmp_path: Path
) -> None:
    data = secrets.token_bytes(2048)
    src = tmp_path / "weights.bin"
    src.write_bytes(data)
    pushed = RegistryClient("127.0.0.1:5000", insecure=True).push_files(
        f"kaci/{ns}/model-files/sdk",
        "v1",
        [ModelFile("weights.bin", src, len(data), hashlib.sha256(data).hexdigest())],
    )
    doc = {
        "apiVersion": "kaci.dev/v1alpha1",
        "kind": "Model",
        "metadata": {"name": "from-sdk-image", "namespace": ns},
        "spec": {
            "modelName": "from-sdk-image",
            "source": {"image": {"reference": pushed, "path": "/model"}},
        },
    }
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(op.label(doc)))
    _wait_ready(kubectl, ns, op, "model/from-sdk-image")

    def status() -> Any:
        got = json.loads(kubectl("get", "model", "from-sdk-image", "-n", ns, "-o", "json"))
        return got.get("status", {}).get("digest") and got["status"]

    st = wait_until(status, "the Model's digest", attempts=60)
    assert st["files"] == ["weights.bin"]
    assert st["digest"] == modelfiles.digest({"weights.bin": data})
