"""AKS-class serving (pure): replicas, requests apart from limits, the runtime's limits,
probe settings, token auth, the HorizontalPodAutoscaler, the PodDisruptionBudget and
the Ingress of a Webservice, from its deploymentConfig.

A deploymentConfig that sets none of the AKS fields is ACI-shaped: one Pod, requests =
limits, the runtime's own defaults. Once any is set, the unset ones take the defaults
Azure's service filled in for an AKS deployment (AKS_DEFAULTS).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kaci import api
from kaci.render import names
from kaci.render.quantities import cpu_quantity, memory_quantity

Obj = dict[str, Any]

AKS_FIELDS = (
    "replicas",
    "autoscale",
    "cpuCoresLimit",
    "memoryGbLimit",
    "scoringTimeoutMs",
    "replicaMaxConcurrentRequests",
    "maxRequestWaitTimeMs",
    "livenessProbe",
)
# What Azure's service filled in when an AKS deploy_configuration left them out.
AKS_DEFAULTS: Mapping[str, int] = {
    "minReplicas": 1,
    "maxReplicas": 10,
    "targetUtilization": 70,
    "refreshSeconds": 1,
    "scoringTimeoutMs": 60000,
    "replicaMaxConcurrentRequests": 1,
    "maxRequestWaitTimeMs": 500,
}
AKS_PROBE_DEFAULTS: Mapping[str, int] = {
    "periodSeconds": 10,
    "initialDelaySeconds": 310,
    "timeoutSeconds": 2,
    "successThreshold": 1,
    "failureThreshold": 3,
}
# kaci's liveness probe of an ACI-shaped service: init() may take long (large models),
# so only the server loop is checked, with a generous start.
ACI_PROBE: Mapping[str, int] = {
    "initialDelaySeconds": 30,
    "periodSeconds": 10,
    "timeoutSeconds": 5,
    "failureThreshold": 6,
}
# The runtime's environment (the contract with kaci-runtime).
RUNTIME_ENV = {
    "scoringTimeoutMs": "SCORING_TIMEOUT_MS",
    "replicaMaxConcurrentRequests": "KACI_MAX_CONCURRENT_REQUESTS",
    "maxRequestWaitTimeMs": "KACI_MAX_REQUEST_WAIT_MS",
}
TOKEN_KEY_ENV = "KACI_AUTH_TOKEN_KEY"  # noqa: S105 (a variable name, not a secret)
TOKEN_AUDIENCE_ENV = "KACI_AUTH_TOKEN_AUDIENCE"  # noqa: S105
# azmlinfsrv's name: swagger.json lists the paths under this prefix (the Ingress's).
PATH_PREFIX_ENV = "SERVICE_PATH_PREFIX"


def is_aks(dc: Mapping[str, Any]) -> bool:
    """Whether a deploymentConfig asks for AKS-class serving (any AKS field, token auth,
    an outside address)."""
    return (
        any(f in dc for f in AKS_FIELDS)
        or bool(dc.get("tokenAuthEnabled"))
        or dc.get("serviceType", "ClusterIP") != "ClusterIP"
        or bool((dc.get("ingress") or {}).get("enabled"))
    )


def autoscaled(dc: Mapping[str, Any]) -> bool:
    return bool((dc.get("autoscale") or {}).get("enabled"))


def autoscale_settings(dc: Mapping[str, Any]) -> dict[str, int]:
    """minReplicas, maxReplicas, targetUtilization, refreshSeconds with Azure's defaults."""
    given = dc.get("autoscale") or {}
    keys = ("minReplicas", "maxReplicas", "targetUtilization", "refreshSeconds")
    return {k: int(given.get(k, AKS_DEFAULTS[k])) for k in keys}


def replicas(dc: Mapping[str, Any]) -> int | None:
    """The Deployment's replicas; None when the HPA owns the count."""
    if autoscaled(dc):
        return None
    return int(dc.get("replicas", 1))


def most_replicas(dc: Mapping[str, Any]) -> int:
    """The most Pods the service may run at once (outside a rolling update)."""
    if autoscaled(dc):
        return autoscale_settings(dc)["maxReplicas"]
    return int(dc.get("replicas", 1))


def resources(dc: Mapping[str, Any]) -> Obj:
    """Requests from cpuCores/memoryGb; limits from *Limit, else equal (Guaranteed)."""
    requests = {
        "cpu": cpu_quantity(float(dc["cpuCores"])),
        "memory": memory_quantity(float(dc["memoryGb"])),
    }
    limits = {
        "cpu": cpu_quantity(float(dc.get("cpuCoresLimit", dc["cpuCores"]))),
        "memory": memory_quantity(float(dc.get("memoryGbLimit", dc["memoryGb"]))),
    }
    return {"requests": requests, "limits": limits}


def runtime_env(dc: Mapping[str, Any], name: str, namespace: str) -> list[Obj]:
    """The runtime's limits, token auth and the Ingress's path prefix."""
    aks = is_aks(dc)
    env: list[Obj] = []
    for field, var in RUNTIME_ENV.items():
        if field in dc:
            env.append({"name": var, "value": str(int(dc[field]))})
        elif aks:
            env.append({"name": var, "value": str(AKS_DEFAULTS[field])})
    if dc.get("tokenAuthEnabled"):
        secret = names.keys_secret_name(name)
        env.append(
            {
                "name": TOKEN_KEY_ENV,
                "valueFrom": {"secretKeyRef": {"name": secret, "key": api.TOKEN_SIGNING_KEY}},
            }
        )
        env.append({"name": TOKEN_AUDIENCE_ENV, "value": api.token_audience(namespace, name)})
    if (dc.get("ingress") or {}).get("enabled"):
        env.append({"name": PATH_PREFIX_ENV, "value": ingress_prefix(name).strip("/")})
    return env + model_data_env(dc, name)


# Where a modelDataCollection.claimName is mounted in the scoring container.
MODEL_DATA_DIR = "/var/kaci/model-data"
MODEL_DATA_VOLUME = "model-data"


def model_data_env(dc: Mapping[str, Any], name: str) -> list[Obj]:
    """kaci-runtime's capture settings (kaci_runtime.capture) from collectModelData."""
    if not dc.get("collectModelData"):
        return []
    where = dc.get("modelDataCollection") or {}
    env = [
        {"name": "KACI_MODEL_DATA_CAPTURE", "value": "true"},
        # The records' $aml_service_name: the Webservice's name (Azure's).
        {"name": "SERVICE_NAME", "value": name},
    ]
    if where.get("claimName"):
        env.append({"name": "KACI_MODEL_DATA_DIR", "value": MODEL_DATA_DIR})
    elif where.get("url"):
        env.append({"name": "KACI_MODEL_DATA_URL", "value": str(where["url"])})
    if "sampleRate" in where:
        env.append({"name": "KACI_MODEL_DATA_SAMPLE_RATE", "value": str(where["sampleRate"])})
    if "maxRecordBytes" in where:
        env.append(
            {"name": "KACI_MODEL_DATA_MAX_RECORD_BYTES", "value": str(int(where["maxRecordBytes"]))}
        )
    return env


def model_data_claim(dc: Mapping[str, Any]) -> str | None:
    """The PVC that holds captured records, when collectModelData names one."""
    if not dc.get("collectModelData"):
        return None
    claim = (dc.get("modelDataCollection") or {}).get("claimName")
    return str(claim) if claim else None


def liveness_probe(dc: Mapping[str, Any], port: int) -> Obj:
    given = dc.get("livenessProbe") or {}
    base = dict(AKS_PROBE_DEFAULTS if is_aks(dc) else ACI_PROBE)
    base.update({k: int(v) for k, v in given.items()})
    # Kubernetes refuses any other successThreshold on a liveness probe.
    base["successThreshold"] = 1
    return {"httpGet": {"path": "/", "port": port}, **dict(sorted(base.items()))}


def readiness_success_threshold(dc: Mapping[str, Any]) -> int:
    return int((dc.get("livenessProbe") or {}).get("successThreshold", 1))


def hpa(name: str, namespace: str, owner: Obj, dc: Mapping[str, Any], instance: str | None) -> Obj:
    """autoscaling/v2 on the Deployment (not on the Webservice: its replicas field is
    for a fixed count, and CEL refuses it beside autoscale).

    Azure's refreshSeconds (how often its autoscaler may rescale) becomes the
    stabilization window and policy period of both directions: the HPA may change the
    count at most once per refreshSeconds, by as much as it wants. The HPA controller
    itself evaluates every 15 s (--horizontal-pod-autoscaler-sync-period, a
    controller-manager flag): a shorter refreshSeconds cannot make it look sooner.
    """
    a = autoscale_settings(dc)
    period = a["refreshSeconds"]

    def rules() -> Obj:
        return {
            "stabilizationWindowSeconds": period,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": period},
                {"type": "Pods", "value": a["maxReplicas"], "periodSeconds": period},
            ],
        }

    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(name, namespace, owner, instance),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": a["minReplicas"],
            "maxReplicas": a["maxReplicas"],
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": a["targetUtilization"],
                        },
                    },
                }
            ],
            "behavior": {"scaleUp": rules(), "scaleDown": rules()},
        },
    }


def pdb(
    name: str, namespace: str, owner: Obj, dc: Mapping[str, Any], instance: str | None
) -> Obj | None:
    """At most one Pod evicted at a time (a node drain) once there can be more than one;
    None for a single replica, which a PDB could only block or not protect."""
    if most_replicas(dc) <= 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(name, namespace, owner, instance),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {api.WEBSERVICE_LABEL: name}},
        },
    }


@dataclass(frozen=True)
class IngressSettings:
    """The operator's Ingress settings (KACI_INGRESS_*, the chart's ingress.*)."""

    ingress_class: str | None = None
    host: str | None = None
    tls_secret: str | None = None
    base_url: str | None = None


def ingress_prefix(name: str) -> str:
    """Azure's AKS path shape: /api/v1/service/<name>/score and /swagger.json."""
    return f"/api/v1/service/{name}"


def ingress(
    name: str,
    namespace: str,
    owner: Obj,
    settings: IngressSettings,
    instance: str | None,
) -> Obj:
    """Azure's path, rewritten to the runtime's own (/score, /swagger.json) with
    ingress-nginx's regex path and rewrite-target: ingress-nginx serves them, and so
    does Traefik's Kubernetes Ingress NGINX provider (the local cluster's controller).
    Other controllers need their own rewrite (see the chart README)."""
    meta = _meta(name, namespace, owner, instance)
    meta["annotations"] = {
        "nginx.ingress.kubernetes.io/use-regex": "true",
        "nginx.ingress.kubernetes.io/rewrite-target": "/$2",
    }
    rule: Obj = {
        "http": {
            "paths": [
                {
                    "path": f"{ingress_prefix(name)}(/|$)(.*)",
                    "pathType": "ImplementationSpecific",
                    "backend": {"service": {"name": name, "port": {"number": api.SERVICE_PORT}}},
                }
            ]
        }
    }
    spec: Obj = {"rules": [rule]}
    if settings.host:
        rule["host"] = settings.host
    if settings.ingress_class:
        spec["ingressClassName"] = settings.ingress_class
    if settings.tls_secret:
        tls: Obj = {"secretName": settings.tls_secret}
        if settings.host:
            tls["hosts"] = [settings.host]
        spec["tls"] = [tls]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta,
        "spec": {k: spec[k] for k in sorted(spec)},
    }


def ingress_base_url(settings: IngressSettings) -> str | None:
    """Where the Ingress is reached from outside: the base URL, else the host."""
    if settings.base_url:
        return settings.base_url.rstrip("/")
    if settings.host:
        return f"{'https' if settings.tls_secret else 'http'}://{settings.host}"
    return None


def network_policy(
    name: str,
    namespace: str,
    owner: Obj,
    peers: Sequence[Mapping[str, Any]],
    instance: str | None,
) -> Obj:
    """The scoring Pods take traffic on the scoring port only from `peers` (the
    operator's KACI_NETWORK_POLICY_FROM: NetworkPolicyPeers such as the ingress
    controller's or Prometheus's namespace); with none, only from Pods in their own
    namespace. An empty `from` would mean everyone, hence the default peer. Egress is
    left alone: score.py may call out, and a policy there is the cluster's choice."""
    sources = [dict(p) for p in peers] or [{"podSelector": {}}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(name, namespace, owner, instance),
        "spec": {
            "podSelector": {"matchLabels": {api.WEBSERVICE_LABEL: name}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": sources,
                    "ports": [{"protocol": "TCP", "port": api.SCORING_PORT}],
                }
            ],
        },
    }


def _meta(name: str, namespace: str, owner: Obj, instance: str | None) -> Obj:
    return {
        "name": name,
        "namespace": namespace,
        "labels": names.webservice_labels(name, instance),
        "ownerReferences": [owner],
    }
