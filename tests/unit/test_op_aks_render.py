"""AKS-class serving, pure parts: the CRD's AKS fields and rules, render/aks.py (HPA,
PDB, Ingress, env, probes, resources), status/access.py, and the pass's steps that
apply and delete the HPA, PDB and Ingress."""

from __future__ import annotations

from typing import Any

import pytest
from kaci import api, crds
from kaci.reconcile.webservice import WebserviceSeen, access_status, reconcile_webservice
from kaci.render import aks
from kaci.render import webservice as r
from kaci.settings import Settings
from kaci.status import access
from kaci.status import webservice as ws_status
from test_op_reconcile_steps import NS, Recorder, built_image, obj  # type: ignore[import-not-found]

OWNER = {
    "apiVersion": "kaci.dev/v1alpha1",
    "kind": "Webservice",
    "name": "w",
    "uid": "u",
    "controller": True,
    "blockOwnerDeletion": True,
}
ACI = {"cpuCores": 0.5, "memoryGb": 1}


def dc(**extra: Any) -> dict[str, Any]:
    return {**ACI, **extra}


def env_of(template: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in template["spec"]["containers"][0]["env"]}


# -- the CRD ---------------------------------------------------------------------------


def _deployment_config_schema() -> dict[str, Any]:
    ws = crds.webservice_crd()
    root = ws["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return root["properties"]["spec"]["properties"]["deploymentConfig"]  # type: ignore[no-any-return]


def test_the_crd_has_the_contract_fields_without_defaults() -> None:
    props = _deployment_config_schema()["properties"]
    for field in (
        "replicas",
        "autoscale",
        "cpuCoresLimit",
        "memoryGbLimit",
        "scoringTimeoutMs",
        "replicaMaxConcurrentRequests",
        "maxRequestWaitTimeMs",
        "livenessProbe",
        "tokenAuthEnabled",
        "serviceType",
        "ingress",
    ):
        # No schema default: a Webservice that sets none of them stays ACI-shaped.
        assert "default" not in props[field], field
    assert set(props["autoscale"]["properties"]) == {
        "enabled",
        "minReplicas",
        "maxReplicas",
        "targetUtilization",
        "refreshSeconds",
    }
    assert set(props["livenessProbe"]["properties"]) == {
        "periodSeconds",
        "initialDelaySeconds",
        "timeoutSeconds",
        "successThreshold",
        "failureThreshold",
    }
    assert props["serviceType"]["enum"] == ["ClusterIP", "NodePort", "LoadBalancer"]
    assert props["autoscale"]["properties"]["targetUtilization"]["maximum"] == 100
    assert props["replicas"]["minimum"] == 1


def test_the_crd_rules_name_the_impossible_combinations() -> None:
    rules = [v["rule"] for v in _deployment_config_schema()["x-kubernetes-validations"]]
    joined = " ".join(rules)
    assert "self.autoscale.enabled" in joined
    assert "has(self.replicas)" in joined
    assert "self.authEnabled" in joined
    assert "self.tokenAuthEnabled" in joined
    assert "self.cpuCoresLimit >= self.cpuCores" in joined
    assert "self.memoryGbLimit >= self.memoryGb" in joined
    auto = _deployment_config_schema()["properties"]["autoscale"]["x-kubernetes-validations"]
    assert any("self.minReplicas <= self.maxReplicas" in v["rule"] for v in auto)


def test_the_scale_subresource_points_at_replicas() -> None:
    version = crds.webservice_crd()["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.deploymentConfig.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }


# -- the Pod ---------------------------------------------------------------------------


def test_aci_shape_stays_one_guaranteed_pod_with_the_runtime_defaults() -> None:
    assert not aks.is_aks(ACI)
    t = r.pod_template("w", "img", ACI, None, None, namespace=NS)
    (c,) = t["spec"]["containers"]
    assert c["resources"]["requests"] == c["resources"]["limits"]
    assert set(env_of(t)) == {"HOME"}
    assert c["livenessProbe"]["initialDelaySeconds"] == 30
    assert r.deployment("w", NS, OWNER, t)["spec"]["replicas"] == 1


def test_requests_and_limits_apart() -> None:
    res = aks.resources(dc(cpuCoresLimit=2, memoryGbLimit=1.5))
    assert res == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "1536Mi"},
    }
    assert aks.resources(dc(cpuCoresLimit=1))["limits"]["memory"] == "1Gi"


def test_runtime_env_takes_azures_defaults_once_aks_shaped() -> None:
    env = {e["name"]: e["value"] for e in aks.runtime_env(dc(replicas=2), "w", NS)}
    assert env == {
        "SCORING_TIMEOUT_MS": "60000",
        "KACI_MAX_CONCURRENT_REQUESTS": "1",
        "KACI_MAX_REQUEST_WAIT_MS": "500",
    }
    given = dc(scoringTimeoutMs=1500, replicaMaxConcurrentRequests=4, maxRequestWaitTimeMs=90)
    env = {e["name"]: e["value"] for e in aks.runtime_env(given, "w", NS)}
    assert env["SCORING_TIMEOUT_MS"] == "1500"
    assert env["KACI_MAX_CONCURRENT_REQUESTS"] == "4"
    assert env["KACI_MAX_REQUEST_WAIT_MS"] == "90"
    # ACI-shaped: only what was given (the runtime keeps its own defaults for the rest).
    env = {e["name"]: e["value"] for e in aks.runtime_env(dc(), "w", NS)}
    assert env == {}


def test_token_auth_env_comes_from_the_secret_and_names_the_audience() -> None:
    keys = {api.TOKEN_SIGNING_KEY: "s3cr3t"}
    t = r.pod_template("w", "img", dc(tokenAuthEnabled=True), keys, None, namespace=NS)
    env = env_of(t)
    assert env["KACI_AUTH_TOKEN_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "w-keys",
        "key": "tokenSigningKey",
    }
    assert env["KACI_AUTH_TOKEN_AUDIENCE"]["value"] == f"{NS}/w"
    # Tokens only: the keys are not handed to the runtime (Azure: exclusive).
    assert "KACI_AUTH_PRIMARY_KEY" not in env
    rotated = r.pod_template(
        "w", "img", dc(tokenAuthEnabled=True), {api.TOKEN_SIGNING_KEY: "new"}, None, namespace=NS
    )
    assert r.template_hash(rotated) != r.template_hash(t)


def test_probe_settings_go_to_the_liveness_probe() -> None:
    probe = aks.liveness_probe(dc(livenessProbe={"periodSeconds": 4, "failureThreshold": 7}), 5001)
    assert probe == {
        "httpGet": {"path": "/", "port": 5001},
        "failureThreshold": 7,
        "initialDelaySeconds": 310,
        "periodSeconds": 4,
        "successThreshold": 1,
        "timeoutSeconds": 2,
    }
    # Kubernetes demands 1 on a liveness probe: successThreshold goes to readiness.
    given = dc(livenessProbe={"successThreshold": 3})
    assert aks.liveness_probe(given, 5001)["successThreshold"] == 1
    t = r.pod_template("w", "img", given, None, None)
    assert t["spec"]["containers"][0]["readinessProbe"]["successThreshold"] == 3


def test_replicas_and_the_deployment() -> None:
    assert aks.replicas(dc(replicas=3)) == 3
    assert aks.replicas(dc(autoscale={"enabled": True})) is None
    assert aks.replicas(dc(autoscale={"enabled": False})) == 1
    t = r.pod_template("w", "img", dc(replicas=3), None, None)
    d = r.deployment("w", NS, OWNER, t, None, aks.replicas(dc(replicas=3)))
    assert d["spec"]["replicas"] == 3
    # Updates roll with no Pod less: one more at a time, none taken away early.
    assert d["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    auto = r.deployment("w", NS, OWNER, t, None, None)
    assert "replicas" not in auto["spec"]  # the HPA owns the count


# -- HPA, PDB, Ingress ------------------------------------------------------------------


def test_hpa_targets_the_deployment_with_azures_defaults() -> None:
    h = aks.hpa("w", NS, OWNER, dc(autoscale={"enabled": True}), "inst")
    assert h["apiVersion"] == "autoscaling/v2"
    assert h["metadata"]["ownerReferences"] == [OWNER]
    assert h["metadata"]["labels"][api.INSTANCE_LABEL] == "inst"
    spec = h["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 10)
    (metric,) = spec["metrics"]
    assert metric["resource"] == {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 70},
    }
    assert spec["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 1
    given = dc(
        autoscale={
            "enabled": True,
            "minReplicas": 2,
            "maxReplicas": 4,
            "targetUtilization": 30,
            "refreshSeconds": 20,
        }
    )
    spec = aks.hpa("w", NS, OWNER, given, None)["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 4)
    assert spec["metrics"][0]["resource"]["target"]["averageUtilization"] == 30
    for direction in ("scaleUp", "scaleDown"):
        rules = spec["behavior"][direction]
        assert rules["stabilizationWindowSeconds"] == 20
        assert {p["periodSeconds"] for p in rules["policies"]} == {20}


@pytest.mark.parametrize(
    ("config", "wanted"),
    [
        (dc(), False),
        (dc(replicas=1), False),
        (dc(replicas=2), True),
        (dc(autoscale={"enabled": True}), True),  # max 10
        (dc(autoscale={"enabled": True, "maxReplicas": 1}), False),
    ],
)
def test_a_pdb_once_there_can_be_more_than_one_replica(
    config: dict[str, Any], wanted: bool
) -> None:
    p = aks.pdb("w", NS, OWNER, config, None)
    assert (p is not None) == wanted
    if p is not None:
        assert p["spec"] == {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {api.WEBSERVICE_LABEL: "w"}},
        }


def test_ingress_on_azures_path_rewritten_to_the_runtimes() -> None:
    plain = aks.ingress("w", NS, OWNER, aks.IngressSettings(), None)
    assert plain["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/use-regex": "true",
        "nginx.ingress.kubernetes.io/rewrite-target": "/$2",
    }
    (rule,) = plain["spec"]["rules"]
    assert "host" not in rule
    assert "ingressClassName" not in plain["spec"]
    assert "tls" not in plain["spec"]
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/api/v1/service/w(/|$)(.*)"
    assert path["pathType"] == "ImplementationSpecific"
    assert path["backend"] == {"service": {"name": "w", "port": {"number": 80}}}
    s = aks.IngressSettings("kaci-local", "ml.example.com", "ml-tls", None)
    full = aks.ingress("w", NS, OWNER, s, None)["spec"]
    assert full["ingressClassName"] == "kaci-local"
    assert full["rules"][0]["host"] == "ml.example.com"
    assert full["tls"] == [{"secretName": "ml-tls", "hosts": ["ml.example.com"]}]
    assert aks.ingress_base_url(s) == "https://ml.example.com"
    assert aks.ingress_base_url(aks.IngressSettings(host="h")) == "http://h"
    assert aks.ingress_base_url(aks.IngressSettings(base_url="http://127.0.0.1:8080/")) == (
        "http://127.0.0.1:8080"
    )
    assert aks.ingress_base_url(aks.IngressSettings()) is None
    # swagger.json lists the outside paths (azmlinfsrv's SERVICE_PATH_PREFIX).
    env = {e["name"]: e["value"] for e in aks.runtime_env(dc(ingress={"enabled": True}), "w", NS)}
    assert env["SERVICE_PATH_PREFIX"] == "api/v1/service/w"


def test_network_policy_lets_in_only_the_configured_peers() -> None:
    ingress_ns = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "in"}}}
    policy = aks.network_policy("w", NS, OWNER, [ingress_ns], None)
    assert policy["metadata"]["ownerReferences"] == [OWNER]
    assert policy["metadata"]["labels"][api.WEBSERVICE_LABEL] == "w"
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {api.WEBSERVICE_LABEL: "w"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [ingress_ns], "ports": [{"protocol": "TCP", "port": 5001}]}],
    }
    # No peers: its own namespace only; never an empty `from`, which lets everyone in.
    (rule,) = aks.network_policy("w", NS, OWNER, [], None)["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {}}]


def test_the_pass_applies_a_network_policy_only_when_the_operator_is_set_to() -> None:
    off = Recorder()
    reconcile_webservice(WebserviceSeen(_ws(dc()), images=[built_image()]), off)
    assert "NetworkPolicy" not in _applied(off)
    on = Recorder()
    on.settings = Settings(registry="reg", default_base_image="base", network_policy=True)
    reconcile_webservice(WebserviceSeen(_ws(dc()), images=[built_image()]), on)
    assert "NetworkPolicy" in _applied(on)


def test_network_policy_peers_come_from_json_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KACI_NETWORK_POLICY", "true")
    monkeypatch.setenv("KACI_NETWORK_POLICY_FROM", '[{"ipBlock": {"cidr": "10.88.0.1/32"}}]')
    s = Settings()
    assert s.network_policy
    assert s.network_policy_from == [{"ipBlock": {"cidr": "10.88.0.1/32"}}]


def test_service_type() -> None:
    assert r.service("w", NS, OWNER, None, "NodePort")["spec"]["type"] == "NodePort"
    assert r.service("w", NS, OWNER)["spec"]["type"] == "ClusterIP"


# -- status -----------------------------------------------------------------------------


def svc(
    kind: str, node_port: int | None = None, lb: dict[str, str] | None = None
) -> dict[str, Any]:
    port: dict[str, Any] = {"port": 80}
    if node_port:
        port["nodePort"] = node_port
    status = {"loadBalancer": {"ingress": [lb]}} if lb else {}
    return {"spec": {"type": kind, "ports": [port]}, "status": status}


def test_access_prefers_the_outside_address() -> None:
    def where(config: dict[str, Any], service: Any, base: str | None = None) -> access.Access:
        return access.access("w", NS, config, service, "cluster.local", base, "10.0.0.9")

    inside = where(dc(), svc("ClusterIP"))
    assert (inside.kind, inside.scoring_uri) == (
        "Cluster",
        f"http://w.{NS}.svc.cluster.local/score",
    )
    ing = where(dc(ingress={"enabled": True}), svc("ClusterIP"), "http://127.0.0.1:8080")
    assert (ing.kind, ing.scoring_uri) == (
        "Ingress",
        "http://127.0.0.1:8080/api/v1/service/w/score",
    )
    assert ing.swagger_uri == "http://127.0.0.1:8080/api/v1/service/w/swagger.json"
    # Ingress asked for, but no base URL or host is known: cluster DNS.
    assert where(dc(ingress={"enabled": True}), svc("ClusterIP")).kind == "Cluster"
    np = where(dc(serviceType="NodePort"), svc("NodePort", 31234))
    assert (np.kind, np.scoring_uri) == ("NodePort", "http://10.0.0.9:31234/score")
    lb = where(dc(serviceType="LoadBalancer"), svc("LoadBalancer", 31234, {"ip": "203.0.113.5"}))
    assert (lb.kind, lb.scoring_uri) == ("LoadBalancer", "http://203.0.113.5:80/score")
    # A LoadBalancer waiting for its address: cluster DNS meanwhile.
    assert where(dc(serviceType="LoadBalancer"), svc("LoadBalancer", 31234)).kind == "Cluster"
    v6 = access.access(
        "w", NS, dc(serviceType="NodePort"), svc("NodePort", 30001), "c", None, "fd00::1"
    )
    assert v6.scoring_uri == "http://[fd00::1]:30001/score"


def test_replica_status_counts_the_pods() -> None:
    ready = {"metadata": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    starting = {"metadata": {}, "status": {"phase": "Pending"}}
    leaving = {"metadata": {"deletionTimestamp": "2026-12-03T00:00:00Z"}, "status": {}}
    done = {"metadata": {}, "status": {"phase": "Failed"}}
    assert ws_status.replica_status("w", [ready, ready, starting, leaving, done]) == {
        "replicas": 3,
        "readyReplicas": 2,
        "selector": f"{api.WEBSERVICE_LABEL}=w",
    }
    assert ws_status.replica_status("w", [])["replicas"] == 0


# -- the pass -----------------------------------------------------------------------------


def _ws(deployment_config: dict[str, Any]) -> dict[str, Any]:
    return obj(
        api.WEBSERVICE, "w", {"image": {"name": "img"}, "deploymentConfig": deployment_config}
    )


def _applied(edges: Recorder) -> list[str]:
    return [c[1] for c in edges.calls if c[0] == "apply"]


def test_the_pass_applies_hpa_pdb_and_ingress_and_writes_outside_status() -> None:
    edges = Recorder()
    edges.settings = Settings(
        registry="reg", default_base_image="base", ingress_base_url="http://127.0.0.1:8080"
    )
    body = _ws(dc(autoscale={"enabled": True, "maxReplicas": 3}, ingress={"enabled": True}))
    reconcile_webservice(WebserviceSeen(body, images=[built_image()]), edges)
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Ingress",
    } <= set(_applied(edges))
    (status,) = edges.statuses()
    assert status["scoringUri"] == "http://127.0.0.1:8080/api/v1/service/w/score"
    assert status["access"] == "Ingress"
    assert status["selector"] == f"{api.WEBSERVICE_LABEL}=w"


def test_the_pass_deletes_what_the_spec_no_longer_asks_for() -> None:
    edges = Recorder()
    observed = {"metadata": {"name": "w", "namespace": NS}}
    seen = WebserviceSeen(
        _ws(dc(replicas=1)),
        images=[built_image()],
        hpa=observed,
        pdb=observed,
        ingress=observed,
        network_policy=observed,  # made while the operator's setting was on
    )
    reconcile_webservice(seen, edges)
    deleted = [c[1] for c in edges.calls if c[0] == "delete"]
    assert sorted(deleted) == [
        "HorizontalPodAutoscaler",
        "Ingress",
        "NetworkPolicy",
        "PodDisruptionBudget",
    ]
    assert not {"HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress"} & set(_applied(edges))


def test_node_port_status_names_the_node_address() -> None:
    edges = Recorder()  # its node_address() answers 192.0.2.7
    seen = WebserviceSeen(_ws(dc(serviceType="NodePort")), images=[built_image()])
    service = svc("NodePort", 30080)
    status = access_status(seen, edges, service)
    assert status == {
        "scoringUri": "http://192.0.2.7:30080/score",
        "swaggerUri": "http://192.0.2.7:30080/swagger.json",
        "access": "NodePort",
    }
    # No node address is asked for unless the service is a NodePort one.
    assert access_status(WebserviceSeen(_ws(dc())), edges, svc("ClusterIP"))["access"] == "Cluster"
