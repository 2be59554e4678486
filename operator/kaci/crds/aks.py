"""The AKS part of a Webservice's deploymentConfig (pure): what
AksWebservice.deploy_configuration has, with Azure's meanings (azureml-core 1.57).

None of these fields has a schema default: a Webservice that sets none of them is
ACI-shaped (one Pod, requests = limits). The defaults Azure's service filled in for
an AKS deployment are applied by the operator (kaci.render.aks) once any of them is
set, and are named in each description.
"""

from __future__ import annotations

from kaci.crds.schema import Schema

# Bounds: Azure's own minimums (every value "must be greater than zero"), and maximums
# that keep a typo from asking a cluster for a million Pods or an hour-long queue.
MAX_REPLICAS = 1000
MAX_TIMEOUT_MS = 3_600_000
MAX_WAIT_MS = 300_000
MAX_CONCURRENT = 1000
MAX_PROBE_SECONDS = 3600
MAX_THRESHOLD = 100


def _int(description: str, minimum: int, maximum: int) -> Schema:
    return {
        "type": "integer",
        "minimum": minimum,
        "maximum": maximum,
        "description": description,
    }


def _limit(what: str, unit: str, request: str) -> Schema:
    return {
        "type": "number",
        "description": f"Largest {what} the container may use ({unit}; Azure's "
        f"{request}_limit). Omitted: the limit equals {request} (requests = limits).",
        "x-kubernetes-validations": [
            {"rule": "self > 0.0", "message": f"{request}Limit must be greater than 0"}
        ],
    }


def autoscale_schema() -> Schema:
    return {
        "type": "object",
        "description": "Azure's autoscaler: a HorizontalPodAutoscaler owned by the "
        "Webservice, on CPU utilization against targetUtilization.",
        "required": ["enabled"],
        "properties": {
            "enabled": {"type": "boolean", "description": "Autoscale (autoscale_enabled)."},
            "minReplicas": _int(
                "Fewest replicas (autoscale_min_replicas; default 1).", 1, MAX_REPLICAS
            ),
            "maxReplicas": _int(
                "Most replicas (autoscale_max_replicas; default 10).", 1, MAX_REPLICAS
            ),
            "targetUtilization": _int(
                "Target utilization in percent of the CPU request "
                "(autoscale_target_utilization; default 70).",
                1,
                100,
            ),
            "refreshSeconds": _int(
                "How often the autoscaler may rescale (autoscale_refresh_seconds; default "
                "1): the HPA's scale-up and scale-down stabilization window and policy "
                "period. The HPA controller itself looks every 15 s (kube-controller-"
                "manager's --horizontal-pod-autoscaler-sync-period).",
                1,
                1800,
            ),
        },
        "x-kubernetes-validations": [
            {
                "rule": "!has(self.minReplicas) || !has(self.maxReplicas) || "
                "self.minReplicas <= self.maxReplicas",
                "message": "autoscale.minReplicas cannot be greater than autoscale.maxReplicas",
            },
            {
                "rule": "!has(self.minReplicas) || has(self.maxReplicas) || self.minReplicas <= 10",
                "message": "autoscale.minReplicas is above the default maxReplicas (10): "
                "set autoscale.maxReplicas too",
            },
        ],
    }


def liveness_probe_schema() -> Schema:
    return {
        "type": "object",
        "description": "Liveness probe settings (Azure's period_seconds, "
        "initial_delay_seconds, timeout_seconds, success_threshold, failure_threshold).",
        "properties": {
            "periodSeconds": _int("How often to probe (default 10).", 1, MAX_PROBE_SECONDS),
            "initialDelaySeconds": _int(
                "Seconds after the container starts before the first probe (default 310).",
                0,
                MAX_PROBE_SECONDS,
            ),
            "timeoutSeconds": _int("Seconds before a probe times out (default 2).", 1, 600),
            "successThreshold": _int(
                "Consecutive successes to count as working again after a failure "
                "(default 1). Kubernetes demands 1 for a liveness probe, so this goes to "
                "the readiness probe: successes before a Pod is back in the Service.",
                1,
                MAX_THRESHOLD,
            ),
            "failureThreshold": _int(
                "Consecutive failures before the container is restarted (default 3).",
                1,
                MAX_THRESHOLD,
            ),
        },
    }


def aks_properties() -> dict[str, Schema]:
    """The AKS fields of deploymentConfig."""
    return {
        "replicas": _int(
            "Number of replicas (Azure's num_replicas). Omitted (and no autoscale): 1. "
            "`kubectl scale webservice/NAME --replicas N` sets it.",
            1,
            MAX_REPLICAS,
        ),
        "autoscale": autoscale_schema(),
        "cpuCoresLimit": _limit("CPU", "cores", "cpuCores"),
        "memoryGbLimit": _limit("memory", "GB", "memoryGb"),
        "scoringTimeoutMs": _int(
            "Longest a run() call may take, in ms, before the request fails (Azure's "
            "scoring_timeout_ms; default 60000 for an AKS-shaped service).",
            1,
            MAX_TIMEOUT_MS,
        ),
        "replicaMaxConcurrentRequests": _int(
            "run() calls at once per replica; more wait in a queue (Azure's "
            "replica_max_concurrent_requests; default 1 for an AKS-shaped service).",
            1,
            MAX_CONCURRENT,
        ),
        "maxRequestWaitTimeMs": _int(
            "Longest a request waits in that queue, in ms, before the 503 answer (Azure's "
            "max_request_wait_time; default 500 for an AKS-shaped service).",
            1,
            MAX_WAIT_MS,
        ),
        "livenessProbe": liveness_probe_schema(),
        "tokenAuthEnabled": {
            "type": "boolean",
            "description": "Demand a token (Authorization: Bearer <JWT>, from the SDK's "
            "get_token() or `kaci service get-token`) instead of a key. Exclusive with "
            "authEnabled, as in Azure.",
        },
        "serviceType": {
            "type": "string",
            "enum": ["ClusterIP", "NodePort", "LoadBalancer"],
            "description": "Type of the Webservice's Service (default ClusterIP). NodePort "
            "or LoadBalancer give the service an address outside the cluster, like ACI's "
            "own address; status.scoringUri says it.",
        },
        "ingress": {
            "type": "object",
            "description": "An Ingress on Azure's AKS path shape, /api/v1/service/<name>/"
            "score and /swagger.json (class, host and TLS Secret are operator settings).",
            "required": ["enabled"],
            "properties": {"enabled": {"type": "boolean"}},
        },
    }


def aks_rules() -> list[dict[str, str]]:
    """The impossible combinations (CEL on deploymentConfig)."""
    return [
        {
            "rule": "!has(self.replicas) || !has(self.autoscale) || !self.autoscale.enabled",
            "message": "replicas and autoscale.enabled cannot both be set: give a fixed "
            "replica count or autoscale (Azure: autoscale enabled and num_replicas provided)",
        },
        {
            "rule": "!(has(self.authEnabled) && self.authEnabled && has(self.tokenAuthEnabled) "
            "&& self.tokenAuthEnabled)",
            "message": "authEnabled and tokenAuthEnabled cannot both be true: key and token "
            "auth are exclusive (as in Azure)",
        },
        {
            "rule": "!has(self.cpuCoresLimit) || self.cpuCoresLimit >= self.cpuCores",
            "message": "cpuCoresLimit must be greater than or equal to cpuCores",
        },
        {
            "rule": "!has(self.memoryGbLimit) || self.memoryGbLimit >= self.memoryGb",
            "message": "memoryGbLimit must be greater than or equal to memoryGb",
        },
    ]


def scale_subresource() -> Schema:
    """`kubectl scale webservice/NAME --replicas N`: spec.deploymentConfig.replicas."""
    return {
        "specReplicasPath": ".spec.deploymentConfig.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }


def aks_status() -> dict[str, Schema]:
    return {
        "replicas": {"type": "integer", "description": "Pods of the Webservice (Deployment)."},
        "readyReplicas": {"type": "integer", "description": "Of those, ready ones."},
        "selector": {"type": "string", "description": "Label selector of its Pods."},
        "access": {
            "type": "string",
            "enum": ["Cluster", "Ingress", "NodePort", "LoadBalancer"],
            "description": "Where scoringUri points: cluster DNS, or an outside address.",
        },
    }
