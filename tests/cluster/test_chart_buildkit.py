"""The chart's buildkitd on the real local cluster: no Docker socket anywhere.

- The chart with the local cluster's values (the buildkit driver, the default) runs an
  operator Pod with no hostPath volume and a Running rootless buildkitd (user 1000);
  the operator image carries buildctl.
- buildctl on the host, through the NodePort with the client certificate, builds a
  small Dockerfile FROM the local python base image, pushes it with zstd layers to the
  registry (by its node address, as a Pod reaches it), and the kubelet runs the pushed
  image (pulled by 127.0.0.1:5000: the same registry under its host name).
- Without a client certificate buildkitd refuses the connection (mTLS).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from support.buildkit import NODE_REGISTRY, Buildkitd, buildctl  # type: ignore[import-not-found,unused-ignore]
from support.chart import (  # type: ignore[import-not-found,unused-ignore]
    ChartRelease,
    Kubectl,
    build_operator_image,
    demo_args,
)

pytestmark = pytest.mark.cluster

PULL_REGISTRY = "127.0.0.1:5000"  # the kubelet's name of the same registry
PRIVILEGED = {"pod-security.kubernetes.io/enforce": "privileged"}


def _pods(kubectl: Kubectl, ns: str, selector: str) -> list[dict[str, Any]]:
    got = json.loads(kubectl("get", "pods", "-n", ns, "-l", selector, "-o", "json"))
    return [p for p in got["items"] if "deletionTimestamp" not in p["metadata"]]


def test_default_chart_runs_rootless_buildkitd_and_an_operator_without_host_paths(
    kubectl: Kubectl, make_namespace: Any
) -> None:
    suffix = secrets.token_hex(3)
    ns = make_namespace(f"t-bki-chart-{suffix}", PRIVILEGED)
    rel = ChartRelease(
        name="bki",
        namespace=ns,
        instance=f"t-bki-{suffix}",
        kubectl=kubectl,
        args=demo_args(build_operator_image(), driver="buildkit"),
    )
    try:
        rel.install()
        (operator,) = _pods(
            kubectl, ns, "app.kubernetes.io/instance=bki,app.kubernetes.io/component=operator"
        )
        assert operator["status"]["phase"] == "Running"
        volumes = operator["spec"]["volumes"]
        assert [v["name"] for v in volumes if "hostPath" in v] == []
        env = {e["name"]: e.get("value") for e in operator["spec"]["containers"][0]["env"]}
        assert env["KACI_BUILDER"] == "buildkit"
        assert env["KACI_BUILDKIT_ADDR"] == f"tcp://bki-kaci-buildkitd.{ns}.svc.cluster.local:1234"
        # The operator image carries buildctl, and the client files are where env says.
        name = operator["metadata"]["name"]
        version = kubectl("exec", "-n", ns, name, "--", "buildctl", "--version")
        assert "v0.34.2" in version
        kubectl("exec", "-n", ns, name, "--", "test", "-r", env["KACI_BUILDKIT_TLS_KEY"] or "")

        (bk,) = _pods(
            kubectl, ns, "app.kubernetes.io/instance=bki,app.kubernetes.io/component=builder"
        )
        assert bk["status"]["phase"] == "Running"
        assert all(c["ready"] for c in bk["status"]["containerStatuses"])
        # Every process of the container is user 1000 on the node (rootlesskit, and
        # buildkitd, root only in its user namespace), and that namespace maps its root
        # to 1000 and the rest to the image's subordinate ids.
        bk_name = bk["metadata"]["name"]
        uids = kubectl(
            "exec", "-n", ns, bk_name, "--", "sh", "-c", "grep -h ^Uid: /proc/[0-9]*/status"
        )
        assert uids.strip()
        assert all(line.split()[1:] == ["1000"] * 4 for line in uids.splitlines()), uids
        maps = kubectl("exec", "-n", ns, bk_name, "--", "sh", "-c", "cat /proc/[0-9]*/uid_map")
        rows = {tuple(line.split()) for line in maps.splitlines() if line.strip()}
        assert {("0", "1000", "1"), ("1", "100000", "65536")} <= rows, maps
        # buildkitd answers the operator Pod over mTLS through its Service.
        workers = kubectl(
            "exec",
            "-n",
            ns,
            name,
            "--",
            "buildctl",
            f"--addr={env['KACI_BUILDKIT_ADDR']}",
            f"--tlscacert={env['KACI_BUILDKIT_TLS_CA']}",
            f"--tlscert={env['KACI_BUILDKIT_TLS_CERT']}",
            f"--tlskey={env['KACI_BUILDKIT_TLS_KEY']}",
            "debug",
            "workers",
        )
        assert "linux/amd64" in workers
    except Exception as exc:
        state = kubectl("get", "all", "-n", ns, "-o", "wide")
        raise AssertionError(f"{exc}\n{state}") from exc
    finally:
        rel.uninstall(check=False)


def _manifest(repo: str, ref: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            "curl",
            "-fsS",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            f"http://{PULL_REGISTRY}/v2/{repo}/manifests/{ref}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    doc: dict[str, Any] = json.loads(out)
    return doc


def test_buildctl_builds_and_pushes_zstd_which_the_kubelet_runs(
    buildkitd: Buildkitd, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    marker = secrets.token_hex(6)
    (tmp_path / "Dockerfile").write_text(
        f"FROM {NODE_REGISTRY}/kaci/python:3.11\n"
        f"RUN echo built-{marker} >/marker.txt\n"
        'CMD ["cat", "/marker.txt"]\n'
    )
    repo = f"t-bki/zstd-{marker}"
    metadata = tmp_path / "metadata.json"
    build = subprocess.run(
        [
            buildctl(),
            *buildkitd.buildctl_args(),
            "build",
            "--frontend=dockerfile.v0",
            f"--local=context={tmp_path}",
            f"--local=dockerfile={tmp_path}",
            "--output",
            f"type=image,name={NODE_REGISTRY}/{repo}:1,push=true,registry.insecure=true,"
            "compression=zstd,force-compression=true,oci-mediatypes=true",
            f"--metadata-file={metadata}",
            "--progress=plain",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    digest = json.loads(metadata.read_text())["containerimage.digest"]
    layers = _manifest(repo, digest)["layers"]
    assert layers
    assert {layer["mediaType"] for layer in layers} == {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    }
    # The kubelet pulls it by the registry's host name, by digest.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "zstd"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": f"{PULL_REGISTRY}/{repo}@{digest}"}],
        },
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod))
    phase = ""
    for _ in range(120):
        phase = kubectl("get", "pod", "zstd", "-n", namespace, "-o", "jsonpath={.status.phase}")
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(1)
    assert phase == "Succeeded", kubectl("describe", "pod", "zstd", "-n", namespace)
    assert kubectl("logs", "zstd", "-n", namespace).strip() == f"built-{marker}"


def test_a_client_without_a_certificate_is_refused(buildkitd: Buildkitd) -> None:
    args = [a for a in buildkitd.buildctl_args() if not a.startswith(("--tlscert", "--tlskey"))]
    proc = subprocess.run(
        [buildctl(), *args, "--timeout=20", "debug", "workers"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode != 0
    # TLS 1.3: the server checks the client's certificate after the client finished its
    # side of the handshake, so the refusal reaches buildctl either as the server's
    # alert or as the connection closed under it.
    refusals = ("certificate required", "connection reset", "broken pipe", "EOF")
    assert any(r in proc.stderr for r in refusals), proc.stderr
    # ...and the same call with the certificate answers (the refusal is the TLS, not
    # the address).
    ok = subprocess.run(
        [buildctl(), *buildkitd.buildctl_args(), "debug", "workers"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
