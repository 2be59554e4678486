"""Model sources beyond ConfigMaps on the real cluster: a path on a PersistentVolumeClaim
(read by a short-lived Pod, streamed back as a tar) and an OCI image holding the files."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kaci.render import modelfiles
from support.kaci_operator import (  # type: ignore[import-not-found,unused-ignore]
    Operator,
    as_stdin,
    run_operator,
    wait_until,
)

API = "kaci.dev/v1alpha1"


@pytest.fixture(scope="module")
def op(local_cluster: Path) -> Iterator[Operator]:
    with run_operator(f"src-{secrets.token_hex(3)}") as operator:
        yield operator


def _model(name: str, source: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Model",
        "metadata": {"name": name},
        "spec": {"source": source},
    }


def _ready(kubectl: Any, ns: str, op: Operator, name: str) -> dict[str, Any]:
    try:
        kubectl(
            "wait",
            "--for=condition=Ready",
            f"model/{name}",
            "-n",
            ns,
            "--timeout=300s",
            timeout=400,
        )
    except Exception as e:
        st = kubectl("get", "model", name, "-n", ns, "-o", "jsonpath={.status}")
        raise AssertionError(f"{e}\n{st}\n{op.log_tail()}") from e
    return json.loads(kubectl("get", "model", name, "-n", ns, "-o", "json"))["status"]  # type: ignore[no-any-return]


def test_pvc_and_image_sources(kubectl: Any, namespace: str, op: Operator, tmp_path: Path) -> None:
    # A folder on this host (the cluster's only node), as a PersistentVolume bound to a claim.
    data = tmp_path / "volume"
    (data / "models" / "sub").mkdir(parents=True)
    files = {"weights.bin": secrets.token_bytes(4096), "sub/config.json": b'{"layers": 3}'}
    for rel, content in files.items():
        (data / "models" / rel).write_bytes(content)
    for p in [tmp_path, data, *data.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    pv = f"kaci-test-{secrets.token_hex(3)}"
    kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": pv},
                "spec": {
                    "capacity": {"storage": "10Mi"},
                    "accessModes": ["ReadOnlyMany"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "",
                    "hostPath": {"path": str(data), "type": "Directory"},
                    "claimRef": {"namespace": namespace, "name": "models"},
                },
            }
        ),
    )
    try:
        kubectl(
            "apply",
            "-n",
            namespace,
            "-f",
            "-",
            input=json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "models"},
                    "spec": {
                        "accessModes": ["ReadOnlyMany"],
                        "storageClassName": "",
                        "volumeName": pv,
                        "resources": {"requests": {"storage": "10Mi"}},
                    },
                }
            ),
        )
        docs = [op.label(_model("from-pvc", {"pvc": {"claimName": "models", "path": "models"}}))]
        kubectl("apply", "-n", namespace, "-f", "-", input=as_stdin(docs))
        st = _ready(kubectl, namespace, op, "from-pvc")
        assert sorted(st["files"]) == sorted(files)
        assert st["digest"] == modelfiles.digest(files)
        # the reader Pod is gone
        wait_until(
            lambda: not kubectl("get", "pods", "-n", namespace, "-o", "name").strip(),
            "the reader Pod to go",
            attempts=60,
        )

        # An OCI image source: the image the first Model was stored as, from folder /sub.
        docs = [
            op.label(_model("from-image", {"image": {"reference": st["location"], "path": "/sub"}}))
        ]
        kubectl("apply", "-n", namespace, "-f", "-", input=as_stdin(docs))
        st2 = _ready(kubectl, namespace, op, "from-image")
        assert st2["files"] == ["config.json"]
        assert st2["digest"] == modelfiles.digest({"config.json": b'{"layers": 3}'})
    finally:
        kubectl("delete", "-n", namespace, "pvc", "models", "--wait=false", "--ignore-not-found")
        kubectl("delete", "pv", pv, "--wait=false", "--ignore-not-found")
