"""The Argo CD health checks (charts/kaci/docs/argocd-health/*.lua), run by a real Lua.

Argo CD evaluates a health script with the live object bound to the global
`obj` and reads the table it returns. Here Debian's `lua5.4` does the same with
sample objects: each sample is turned into a Lua table literal, bound to `obj`,
and the script's {status, message} is printed back.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HEALTH = ROOT / "charts" / "kaci" / "docs" / "argocd-health"
SCRIPTS = {"Model": "model.lua", "Image": "image.lua", "Webservice": "webservice.lua"}


def lua_literal(value: Any) -> str:
    """A Python value (from JSON) as a Lua expression, the way Argo CD hands `obj` over."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid Lua escapes for this text
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        fields = (f"[{json.dumps(k)}] = {lua_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(fields) + "}"
    raise TypeError(type(value))


def health(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    lua = shutil.which("lua5.4")
    if lua is None:
        pytest.fail("lua5.4 is not installed: hack/install-deps.sh installs it")
    harness = (
        f"obj = {lua_literal(obj)}\n"
        f"local hs = assert(loadfile({json.dumps(str(HEALTH / SCRIPTS[kind]))}))()\n"
        'io.write(hs.status, "\\n", hs.message or "")\n'
    )
    proc = subprocess.run([lua, "-"], input=harness, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    status, _, message = proc.stdout.partition("\n")
    return status, message


def obj(generation: int = 2, status: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "kaci.dev/v1alpha1",
        "metadata": {"name": "aci-mnist-1", "namespace": "demo", "generation": generation},
        "spec": {},
    }
    if status is not None:
        body["status"] = status
    return body


def ready(status: str, reason: str = "", message: str = "", generation: int = 2) -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


WEBSERVICE_CASES = [
    ("no status yet", obj(), "Progressing", "Waiting for the kaci operator"),
    (
        "observedGeneration lags the spec",
        obj(3, {"state": "Healthy", "observedGeneration": 2, "conditions": [ready("True")]}),
        "Progressing",
        "generation 3",
    ),
    (
        "Ready condition observed an older generation",
        obj(3, {"state": "Healthy", "observedGeneration": 3, "conditions": [ready("True")]}),
        "Progressing",
        "generation 3",
    ),
    (
        "no observedGeneration at all",
        obj(1, {"state": "Healthy", "conditions": [ready("True", generation=1)]}),
        "Progressing",
        "generation 1",
    ),
    (
        "healthy",
        obj(
            2,
            {
                "state": "Healthy",
                "observedGeneration": 2,
                "scoringUri": "http://aci-mnist-1.demo.svc.cluster.local/score",
                "conditions": [ready("True", "Healthy")],
            },
        ),
        "Healthy",
        "http://aci-mnist-1.demo.svc.cluster.local/score",
    ),
    (
        "state Healthy but Ready=False (a new revision rolling out)",
        obj(2, {"state": "Healthy", "observedGeneration": 2, "conditions": [ready("False")]}),
        "Progressing",
        "",
    ),
    (
        "transitioning",
        obj(
            2,
            {
                "state": "Transitioning",
                "observedGeneration": 2,
                "conditions": [ready("False", "ImageBuilding", "Building image aci-mnist-1")],
            },
        ),
        "Progressing",
        "Building image aci-mnist-1",
    ),
    (
        "failed with an error",
        obj(
            2,
            {
                "state": "Failed",
                "observedGeneration": 2,
                "error": {"code": "InitFailed", "message": "init() raised: no model file"},
                "conditions": [ready("False", "InitFailed", "init() raised")],
            },
        ),
        "Degraded",
        "Failed: init() raised: no model file",
    ),
    (
        "unhealthy, reason only in the condition",
        obj(
            2,
            {
                "state": "Unhealthy",
                "observedGeneration": 2,
                "conditions": [ready("False", "CrashLoopBackOff", "the container keeps exiting")],
            },
        ),
        "Degraded",
        "Unhealthy: the container keeps exiting",
    ),
    (
        "unschedulable",
        obj(
            2,
            {
                "state": "Unschedulable",
                "observedGeneration": 2,
                "error": {"code": "Unschedulable", "message": "lower cpuCores/memoryGb"},
                "conditions": [ready("False", "Unschedulable")],
            },
        ),
        "Degraded",
        "lower cpuCores/memoryGb",
    ),
]

IMAGE_CASES = [
    ("no status yet", obj(), "Progressing", "Waiting"),
    (
        "not started",
        obj(
            1,
            {
                "state": "NotStarted",
                "observedGeneration": 1,
                "conditions": [ready("False", generation=1)],
            },
        ),
        "Progressing",
        "NotStarted",
    ),
    (
        "running",
        obj(
            1,
            {
                "state": "Running",
                "observedGeneration": 1,
                "conditions": [ready("False", generation=1)],
            },
        ),
        "Progressing",
        "Running",
    ),
    (
        "succeeded",
        obj(
            1,
            {
                "state": "Succeeded",
                "observedGeneration": 1,
                "imageLocation": "127.0.0.1:5000/kaci/demo/mnist@sha256:abc",
                "conditions": [ready("True", generation=1)],
            },
        ),
        "Healthy",
        "127.0.0.1:5000/kaci/demo/mnist@sha256:abc",
    ),
    (
        "failed",
        obj(
            1,
            {
                "state": "Failed",
                "observedGeneration": 1,
                "conditions": [
                    ready("False", "BuildFailed", "No matching distribution for nopkg", 1)
                ],
            },
        ),
        "Degraded",
        "No matching distribution for nopkg",
    ),
    (
        "succeeded, but the spec changed since",
        obj(
            4,
            {
                "state": "Succeeded",
                "observedGeneration": 3,
                "conditions": [ready("True", generation=3)],
            },
        ),
        "Progressing",
        "generation 4",
    ),
]

MODEL_CASES = [
    ("no status yet", obj(), "Progressing", "Waiting"),
    (
        "ready",
        obj(
            1,
            {
                "version": 2,
                "digest": "sha256:abcd",
                "observedGeneration": 1,
                "conditions": [ready("True", "Stored", generation=1)],
            },
        ),
        "Healthy",
        "Version 2 (sha256:abcd)",
    ),
    (
        "fetching",
        obj(
            1,
            {
                "observedGeneration": 1,
                "conditions": [ready("False", "Fetching", "copying files", 1)],
            },
        ),
        "Progressing",
        "copying files",
    ),
    (
        "source failed",
        obj(
            1,
            {
                "observedGeneration": 1,
                "conditions": [ready("False", "SourceNotFound", "ConfigMap mnist not found", 1)],
            },
        ),
        "Degraded",
        "SourceNotFound: ConfigMap mnist not found",
    ),
    (
        "checksum mismatch",
        obj(
            1,
            {
                "observedGeneration": 1,
                "conditions": [ready("False", "DigestMismatch", "sha256 differs", 1)],
            },
        ),
        "Degraded",
        "sha256 differs",
    ),
    *(
        (
            f"operator reason {reason}",
            obj(1, {"observedGeneration": 1, "conditions": [ready("False", reason, "why", 1)]}),
            "Degraded",
            f"{reason}: why",
        )
        for reason in (
            "BadSource",
            "ConfigMapNotFound",
            "PVCNotFound",
            "DownloadFailed",
            "ImageReadFailed",
        )
    ),
    (
        "reader Pod not running yet",
        obj(
            1,
            {
                "observedGeneration": 1,
                "conditions": [ready("False", "ReaderPodNotRunning", "Pending", 1)],
            },
        ),
        "Progressing",
        "Pending",
    ),
    (
        "status from an older spec",
        obj(2, {"observedGeneration": 1, "conditions": [ready("True", generation=1)]}),
        "Progressing",
        "generation 2",
    ),
]

CASES = [
    *(("Webservice", *c) for c in WEBSERVICE_CASES),
    *(("Image", *c) for c in IMAGE_CASES),
    *(("Model", *c) for c in MODEL_CASES),
]


@pytest.mark.parametrize(
    ("kind", "name", "body", "status", "message"),
    CASES,
    ids=[f"{c[0]}: {c[1]}" for c in CASES],
)
def test_health(kind: str, name: str, body: dict[str, Any], status: str, message: str) -> None:
    got_status, got_message = health(kind, body)
    assert got_status == status, name
    assert message in got_message, name


def test_every_state_of_the_api_has_a_case() -> None:
    """A new state in the CRDs needs a health rule (and a case here)."""
    for kind, cases in (("Webservice", WEBSERVICE_CASES), ("Image", IMAGE_CASES)):
        crd = yaml.safe_load((ROOT / "crds" / f"kaci.dev_{kind.lower()}s.yaml").read_text())
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        states = set(schema["properties"]["status"]["properties"]["state"]["enum"])
        covered = {c[1]["status"]["state"] for c in cases if "status" in c[1]}
        assert states <= covered, f"{kind}: no case for {states - covered}"


def test_argocd_cm_patch_carries_the_scripts_unchanged() -> None:
    patch = yaml.safe_load((HEALTH / "argocd-cm.yaml").read_text())
    assert patch["metadata"]["name"] == "argocd-cm"
    for kind, script in SCRIPTS.items():
        key = f"resource.customizations.health.kaci.dev_{kind}"
        assert patch["data"][key] == (HEALTH / script).read_text(), f"{key} is stale"
