from __future__ import annotations

import pytest
from kaci import api
from kaci.render import webservice as r

OWNER = {
    "apiVersion": "kaci.dev/v1alpha1",
    "kind": "Webservice",
    "name": "w",
    "uid": "u",
    "controller": True,
    "blockOwnerDeletion": True,
}


@pytest.mark.parametrize(
    ("cores", "q"),
    [(0.5, "500m"), (1, "1"), (2.0, "2"), (0.1, "100m"), (0.0001, "1m"), (1.25, "1250m")],
)
def test_cpu(cores: float, q: str) -> None:
    assert r.cpu_quantity(cores) == q


@pytest.mark.parametrize(("gb", "q"), [(1, "1Gi"), (0.5, "512Mi"), (1.5, "1536Mi"), (16, "16Gi")])
def test_memory(gb: float, q: str) -> None:
    assert r.memory_quantity(gb) == q


def template(keys: dict[str, str] | None = None, pull: str | None = None) -> dict:  # type: ignore[type-arg]
    return r.pod_template("w", "reg/img@sha256:1", {"cpuCores": 0.5, "memoryGb": 1}, keys, pull)


def test_pod_is_guaranteed_and_restricted() -> None:
    t = template()
    spec = t["spec"]
    (c,) = spec["containers"]
    assert (
        c["resources"]["requests"] == c["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}
    )
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 1000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 5001}
    # Ready follows init() within a second: probed every second, no initial delay.
    assert c["readinessProbe"]["periodSeconds"] == 1
    assert "initialDelaySeconds" not in c["readinessProbe"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/", "port": 5001}
    assert "imagePullSecrets" not in spec
    assert template(pull="regcred")["spec"]["imagePullSecrets"] == [{"name": "regcred"}]


def test_placement_reaches_the_pod_and_rolls_it() -> None:
    dc = {"cpuCores": 0.5, "memoryGb": 1}
    plain = r.pod_template("w", "img", dc, None, None)
    # The operator's defaults (nothing set) leave the Pod as it was.
    unset = r.pod_template("w", "img", dc, None, None, placement={"nodeSelector": {}})
    assert unset == plain
    assert "nodeSelector" not in plain["spec"]
    assert "tolerations" not in plain["spec"]
    toleration = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
    placed = r.pod_template(
        "w",
        "img",
        dc,
        None,
        None,
        placement={"nodeSelector": {"type": "kwok"}, "tolerations": [toleration]},
    )
    assert placed["spec"]["nodeSelector"] == {"type": "kwok"}
    assert placed["spec"]["tolerations"] == [toleration]
    assert r.template_hash(placed) != r.template_hash(plain)


def test_keys_come_from_the_secret_and_roll_the_pod() -> None:
    plain = template()
    keyed = template({"primaryKey": "a", "secondaryKey": "b"})
    rotated = template({"primaryKey": "c", "secondaryKey": "b"})
    env = {e["name"]: e for e in keyed["spec"]["containers"][0]["env"]}
    assert env["KACI_AUTH_PRIMARY_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "w-keys",
        "key": "primaryKey",
    }
    assert "KACI_AUTH_PRIMARY_KEY" not in {e["name"] for e in plain["spec"]["containers"][0]["env"]}
    hashes = {r.template_hash(t) for t in (plain, keyed, rotated)}
    assert len(hashes) == 3
    assert r.template_hash(template()) == r.template_hash(plain)
    # the keys themselves never appear in the Pod template
    assert '"a"' not in str(keyed["metadata"])
    assert "'a'" not in str(keyed["metadata"])


def test_deployment_rolls_without_downtime() -> None:
    d = r.deployment("w", "ns", OWNER, template())
    assert d["spec"]["replicas"] == 1
    assert d["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert d["spec"]["selector"]["matchLabels"] == {api.WEBSERVICE_LABEL: "w"}
    assert d["metadata"]["ownerReferences"] == [OWNER]
    assert d["metadata"]["labels"]["app.kubernetes.io/instance"] == "w"


def test_service_and_secret() -> None:
    s = r.service("w", "ns", OWNER)
    assert s["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 5001, "protocol": "TCP"}
    ]
    sec = r.keys_secret("w", "ns", OWNER, {"primaryKey": "a", "secondaryKey": "b"})
    assert sec["metadata"]["name"] == "w-keys"
    assert sec["stringData"] == {"primaryKey": "a", "secondaryKey": "b"}
