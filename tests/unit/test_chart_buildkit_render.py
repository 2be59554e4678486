"""The chart's buildkitd and the builder drivers, rendered by the real `helm` (no cluster).

What the cluster tier cannot show for every combination: the rootless Pod's security
context, the privileged mode, the remote driver's wiring, cert-manager Certificates
(no cert-manager on the local cluster), the operator switched off, and the
certificates' names. tests/cluster/test_chart_buildkit.py runs the default for real.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_chart_render import (  # type: ignore[import-not-found,unused-ignore]
    CHART,
    buildkitd_deployment,
    env_of,
    of_kind,
    render,
    run_helm,
)

Manifest = dict[str, Any]


def buildkitd_pod(docs: list[Manifest]) -> Manifest:
    pod: Manifest = buildkitd_deployment(docs)["spec"]["template"]["spec"]
    return pod


def test_rootless_buildkitd_runs_as_user_1000_with_only_the_idmap_capabilities() -> None:
    pod = buildkitd_pod(render())
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["seccompProfile"] == {"type": "Unconfined"}
    assert pod["securityContext"]["appArmorProfile"] == {"type": "Unconfined"}
    assert pod["automountServiceAccountToken"] is False
    (ctr,) = pod["containers"]
    assert "command" not in ctr  # the image's entrypoint: rootlesskit buildkitd
    assert ctr["securityContext"] == {
        "allowPrivilegeEscalation": True,
        "capabilities": {"drop": ["ALL"], "add": ["SETUID", "SETGID", "SETFCAP"]},
    }
    assert "--oci-worker-no-process-sandbox" in ctr["args"]
    assert "--addr=tcp://0.0.0.0:1234" in ctr["args"]
    assert "--tlscacert=/etc/buildkit/tls/ca.crt" in ctr["args"]
    mounts = {m["name"]: m["mountPath"] for m in ctr["volumeMounts"]}
    assert mounts["cache"] == "/home/user/.local/share/buildkit"
    (cache,) = [v for v in pod["volumes"] if v["name"] == "cache"]
    assert cache["persistentVolumeClaim"] == {"claimName": "kaci-buildkitd"}


def test_privileged_mode_runs_buildkitd_as_root_without_rootlesskit() -> None:
    pod = buildkitd_pod(render("--set", "buildkit.privileged=true"))
    assert pod["securityContext"]["runAsUser"] == 0
    (ctr,) = pod["containers"]
    assert ctr["command"] == ["buildkitd"]
    assert ctr["securityContext"] == {"privileged": True}
    assert "--oci-worker-no-process-sandbox" not in ctr["args"]
    assert "--root=/var/lib/buildkit" in ctr["args"]


def test_service_is_cluster_ip_or_the_node_port_asked_for() -> None:
    (svc,) = [
        s for s in of_kind(render(), "Service") if s["metadata"]["name"].endswith("buildkitd")
    ]
    assert svc["spec"]["type"] == "ClusterIP"
    assert "nodePort" not in svc["spec"]["ports"][0]
    docs = render(
        "--set", "buildkit.service.type=NodePort", "--set", "buildkit.service.nodePort=31234"
    )
    (svc,) = [s for s in of_kind(docs, "Service") if s["metadata"]["name"].endswith("buildkitd")]
    assert svc["spec"]["type"] == "NodePort"
    assert svc["spec"]["ports"][0] == {
        "name": "buildkitd",
        "port": 1234,
        "targetPort": "buildkitd",
        "protocol": "TCP",
        "nodePort": 31234,
    }


def _pem(tmp: Path, secret: Manifest, key: str) -> Path:
    path = tmp / f"{secret['metadata']['name']}-{key}"
    path.write_bytes(base64.b64decode(secret["data"][key]))
    return path


def openssl(*args: str) -> str:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_chart_certificates_name_the_service_and_chain_to_one_ca(tmp_path: Path) -> None:
    docs = render("--set", "buildkit.tls.extraSANs={10.0.0.7,builder.example.internal}")
    secrets = {d["metadata"]["name"]: d for d in of_kind(docs, "Secret")}
    server, client = secrets["kaci-buildkitd-tls"], secrets["kaci-buildkit-client-tls"]
    assert server["data"]["ca.crt"] == client["data"]["ca.crt"]
    san = openssl(
        "x509", "-noout", "-ext", "subjectAltName", "-in", str(_pem(tmp_path, server, "tls.crt"))
    )
    names = {n.strip() for n in san.splitlines()[1].split(",")}
    assert names == {
        "DNS:kaci-buildkitd",
        "DNS:kaci-buildkitd.kaci-system",
        "DNS:kaci-buildkitd.kaci-system.svc",
        "DNS:kaci-buildkitd.kaci-system.svc.cluster.local",
        "DNS:localhost",
        "DNS:builder.example.internal",
        "IP Address:127.0.0.1",
        "IP Address:10.0.0.7",
    }
    ca = str(_pem(tmp_path, server, "ca.crt"))
    for secret in (server, client):
        leaf = str(_pem(tmp_path, secret, "tls.crt"))
        assert openssl("verify", "-CAfile", ca, leaf).strip().endswith(": OK")


def test_cert_manager_mode_makes_certificates_and_no_secrets() -> None:
    docs = render(
        "--api-versions", "cert-manager.io/v1", "--set", "buildkit.tls.certManager.enabled=true"
    )
    assert of_kind(docs, "Secret") == []
    certs = {d["metadata"]["name"]: d["spec"] for d in of_kind(docs, "Certificate")}
    assert certs["kaci-buildkit-ca"]["isCA"] is True
    assert certs["kaci-buildkitd-tls"]["secretName"] == "kaci-buildkitd-tls"
    assert certs["kaci-buildkit-client-tls"]["usages"][0] == "client auth"
    own_ca = {"name": "kaci-buildkit-ca", "kind": "Issuer", "group": "cert-manager.io"}
    assert certs["kaci-buildkitd-tls"]["issuerRef"] == own_ca
    assert sorted(d["metadata"]["name"] for d in of_kind(docs, "Issuer")) == [
        "kaci-buildkit-ca",
        "kaci-buildkit-selfsigned",
    ]
    # The operator reads cert-manager's Secret the same way.
    assert "KACI_BUILDKIT_TLS_CERT" in env_of(docs)
    # An issuer of the user's own: no CA of the chart's.
    docs = render(
        "--api-versions",
        "cert-manager.io/v1",
        "--set",
        "buildkit.tls.certManager.enabled=true",
        "--set",
        "buildkit.tls.certManager.issuerRef.name=corp-ca",
        "--set",
        "buildkit.tls.certManager.issuerRef.kind=ClusterIssuer",
    )
    assert of_kind(docs, "Issuer") == []
    for cert in of_kind(docs, "Certificate"):
        assert cert["spec"]["issuerRef"]["name"] == "corp-ca"


def test_cert_manager_mode_without_cert_manager_is_refused_with_a_reason() -> None:
    proc = run_helm(
        "template", "kaci", str(CHART), "--set", "buildkit.tls.certManager.enabled=true"
    )
    assert proc.returncode != 0
    assert "install cert-manager first" in proc.stderr


def test_remote_driver_uses_the_users_buildkitd_and_its_secret() -> None:
    docs = render(
        "--set",
        "builder.driver=remote",
        "--set",
        "builder.remote.address=tcp://buildkitd.builders.svc:1234",
        "--set",
        "builder.remote.tlsSecret=my-buildkit-client",
        "--set",
        "builder.remote.serverName=buildkitd.builders.svc",
        "--set",
        "buildkit.enabled=false",
    )
    env = env_of(docs)
    assert env["KACI_BUILDER"] == "remote"
    assert env["KACI_BUILDKIT_ADDR"] == "tcp://buildkitd.builders.svc:1234"
    assert env["KACI_BUILDKIT_TLS_SERVER_NAME"] == "buildkitd.builders.svc"
    assert env["KACI_BUILDKIT_TLS_KEY"] == "/var/run/kaci/buildkit-client/tls.key"
    (dep,) = of_kind(docs, "Deployment")
    (tls,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "builder-tls"]
    assert tls["secret"]["secretName"] == "my-buildkit-client"
    assert not [d for d in docs if "buildkit" in d["metadata"]["name"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "builder.driver=remote"], "address"),
        (["--set", "builder.driver=kaniko"], "driver"),
        (["--set", "buildkit.enabled=false"], "buildkit.enabled is false"),
        (["--set", "buildkit.service.type=Headless"], "type"),
        (["--set", "buildkit.cache.sizee=1Gi"], "sizee"),
    ],
)
def test_bad_builder_values_are_refused_with_a_reason(args: list[str], message: str) -> None:
    proc = run_helm("template", "kaci", str(CHART), *args)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_operator_off_renders_only_buildkitd() -> None:
    docs = render("--set", "operator.enabled=false", "--skip-crds")
    assert sorted(d["kind"] for d in docs) == [
        "ConfigMap",
        "Deployment",
        "PersistentVolumeClaim",
        "Secret",
        "Secret",
        "Service",
    ]
    assert all(d["metadata"]["labels"]["app.kubernetes.io/component"] == "builder" for d in docs)


def test_docker_driver_is_the_only_one_with_a_host_path() -> None:
    for driver in ("buildkit", "remote", "docker"):
        docs = render(
            "--set", f"builder.driver={driver}", "--set", "builder.remote.address=tcp://b:1234"
        )
        host_paths = [
            v
            for d in of_kind(docs, "Deployment")
            for v in d["spec"]["template"]["spec"]["volumes"]
            if "hostPath" in v
        ]
        assert bool(host_paths) == (driver == "docker"), driver
