"""AksWebservice and its deployment configuration (Azure's azureml.core.webservice.aks).

The cluster kaci runs on is the AKS compute target. What the Webservice spec has a
field for is written there (CPU, memory, key auth, tags, description); the rest of
an AKS configuration (replicas or autoscale, probe settings, scoring timeout,
concurrency, limits) is kept, with Azure's defaults filled in, as JSON in the
`kaci.dev/aks-deployment-config` annotation: the operator side of those settings is
issue #16, so today an AKS service runs as one Pod like an ACI one.
"""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

from kaci import api
from kaci.azureml import _manifests
from kaci.azureml.core.webservice.webservice import Webservice
from kaci.azureml.exceptions import KaciCompatibilityWarning, WebserviceException

NAMESPACE_REGEX = "^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)$"
TOKEN_AUTH_ISSUE = "issue #16"  # noqa: S105 (an issue number, not a secret)

# Azure's AKS defaults (the service side filled them in when the client sent None).
AKS_DEFAULTS: dict[str, Any] = {
    "cpu_cores": 0.1,
    "memory_gb": 0.5,
    "autoscale_min_replicas": 1,
    "autoscale_max_replicas": 10,
    "autoscale_refresh_seconds": 1,
    "autoscale_target_utilization": 70,
    "scoring_timeout_ms": 60000,
    "replica_max_concurrent_requests": 1,
    "max_request_wait_time": 500,
    "period_seconds": 10,
    "initial_delay_seconds": 310,
    "timeout_seconds": 2,
    "success_threshold": 1,
    "failure_threshold": 3,
}
_IGNORED = {
    "collect_model_data": "model data collection is not offered",
    "enable_app_insights": "there is no Application Insights; scrape the runtime's /metrics",
    "blobfuse_enabled": "models are baked into the image, there is no blob mount",
    "properties": "Webservice objects keep tags only",
    "compute_target_name": "the cluster is the compute target",
}


class AksServiceDeploymentConfiguration:
    """An AKS deployment configuration: Azure's parameters, checks and defaults."""

    def __init__(
        self,
        autoscale_enabled: bool | None = None,
        autoscale_min_replicas: int | None = None,
        autoscale_max_replicas: int | None = None,
        autoscale_refresh_seconds: int | None = None,
        autoscale_target_utilization: int | None = None,
        collect_model_data: bool | None = None,
        auth_enabled: bool | None = None,
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        enable_app_insights: bool | None = None,
        scoring_timeout_ms: int | None = None,
        replica_max_concurrent_requests: int | None = None,
        max_request_wait_time: int | None = None,
        num_replicas: int | None = None,
        primary_key: str | None = None,
        secondary_key: str | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        gpu_cores: int | None = None,
        period_seconds: int | None = None,
        initial_delay_seconds: int | None = None,
        timeout_seconds: int | None = None,
        success_threshold: int | None = None,
        failure_threshold: int | None = None,
        namespace: str | None = None,
        token_auth_enabled: bool | None = None,
        compute_target_name: str | None = None,
        cpu_cores_limit: float | None = None,
        memory_gb_limit: float | None = None,
        blobfuse_enabled: bool | None = None,
    ) -> None:
        self.autoscale_enabled = autoscale_enabled
        self.autoscale_min_replicas = autoscale_min_replicas
        self.autoscale_max_replicas = autoscale_max_replicas
        self.autoscale_refresh_seconds = autoscale_refresh_seconds
        self.autoscale_target_utilization = autoscale_target_utilization
        self.collect_model_data = collect_model_data
        self.auth_enabled = auth_enabled
        self.cpu_cores = cpu_cores
        self.cpu_cores_limit = cpu_cores_limit
        self.memory_gb = memory_gb
        self.memory_gb_limit = memory_gb_limit
        self.gpu_cores = gpu_cores
        self.enable_app_insights = enable_app_insights
        self.scoring_timeout_ms = scoring_timeout_ms
        self.replica_max_concurrent_requests = replica_max_concurrent_requests
        self.max_request_wait_time = max_request_wait_time
        self.num_replicas = num_replicas
        self.primary_key = primary_key
        self.secondary_key = secondary_key
        self.tags = tags
        self.properties = properties
        self.description = description
        self.period_seconds = period_seconds
        self.initial_delay_seconds = initial_delay_seconds
        self.timeout_seconds = timeout_seconds
        self.success_threshold = success_threshold
        self.failure_threshold = failure_threshold
        self.namespace = namespace
        self.token_auth_enabled = token_auth_enabled
        self.blobfuse_enabled = blobfuse_enabled
        self.compute_target_name = compute_target_name
        self.validate_configuration()

    def validate_configuration(self) -> None:
        """Azure's checks (same messages), then kaci's refusals and warnings."""
        error = ""
        positive = (
            "cpu_cores",
            "memory_gb",
            "period_seconds",
            "initial_delay_seconds",
            "timeout_seconds",
            "success_threshold",
            "failure_threshold",
            "scoring_timeout_ms",
            "replica_max_concurrent_requests",
            "max_request_wait_time",
            "num_replicas",
        )
        for name in positive:
            value = getattr(self, name)
            if value is not None and value <= 0:
                error += f"Invalid configuration, {name} must be greater than zero.\n"
        for low, high in (("cpu_cores", "cpu_cores_limit"), ("memory_gb", "memory_gb_limit")):
            request, limit = getattr(self, low), getattr(self, high)
            if request and limit is not None and limit < request:
                error += f"Invalid configuration, {high} must be greater than or equal to {low}.\n"
        if self.gpu_cores is not None and self.gpu_cores < 0:
            error += "Invalid configuration, gpu_cores must be greater than or equal to zero.\n"
        if self.namespace and not re.match(NAMESPACE_REGEX, self.namespace):
            error += (
                "Invalid configuration, namespace must be a valid Kubernetes namespace. "
                f"Regex for validation is {NAMESPACE_REGEX}\n"
            )
        if self.autoscale_enabled:
            if self.num_replicas:
                error += "Invalid configuration, autoscale enabled and num_replicas provided.\n"
            for name in (
                "autoscale_min_replicas",
                "autoscale_max_replicas",
                "autoscale_refresh_seconds",
                "autoscale_target_utilization",
            ):
                value = getattr(self, name)
                if value is not None and value <= 0:
                    error += f"Invalid configuration, {name} must be greater than zero.\n"
            if (
                self.autoscale_min_replicas
                and self.autoscale_max_replicas
                and self.autoscale_min_replicas > self.autoscale_max_replicas
            ):
                error += (
                    "Invalid configuration, autoscale_min_replicas cannot be greater than "
                    "autoscale_max_replicas.\n"
                )
        else:
            if self.autoscale_enabled is False and not self.num_replicas:
                error += (
                    "Invalid configuration, autoscale disabled but num_replicas not provided.\n"
                )
            for name in (
                "autoscale_min_replicas",
                "autoscale_max_replicas",
                "autoscale_refresh_seconds",
                "autoscale_target_utilization",
            ):
                if getattr(self, name):
                    error += (
                        f"Invalid configuration, {name} provided without enabling autoscaling.\n"
                    )
        if self.token_auth_enabled and self.auth_enabled:
            error += (
                "Invalid configuration, auth_enabled and token_auth_enabled cannot both be true.\n"
            )
        if error:
            raise WebserviceException(error)
        if self.gpu_cores:
            raise WebserviceException(
                "gpu_cores: kaci scoring images are CPU-only; leave gpu_cores out or 0"
            )
        if self.primary_key or self.secondary_key:
            raise WebserviceException(
                "primary_key/secondary_key: the operator generates the keys; after deployment set "
                "your own with service.regen_key('Primary', set_key=...)"
            )
        if self.namespace:
            raise WebserviceException(
                "namespace: a kaci Webservice lives in its workspace's namespace; make a "
                f"Workspace(namespace={self.namespace!r}) instead"
            )
        if self.token_auth_enabled:
            warnings.warn(
                f"token_auth_enabled: token auth is not served by kaci yet ({TOKEN_AUTH_ISSUE}); "
                "the service demands its keys instead (get_keys(); run() sends them)",
                KaciCompatibilityWarning,
                stacklevel=4,
            )
        for name, why in _IGNORED.items():
            if getattr(self, name) is not None:
                warnings.warn(
                    f"deploy_configuration: {name} is not used ({why})",
                    KaciCompatibilityWarning,
                    stacklevel=4,
                )

    # -- what the Webservice gets ------------------------------------------------------

    def resolved(self) -> dict[str, Any]:
        """Every AKS setting with Azure's defaults filled in (pure)."""
        autoscale = self.autoscale_enabled
        if autoscale is None:
            autoscale = self.num_replicas is None
        out: dict[str, Any] = {"autoscale_enabled": autoscale}
        for name, default in AKS_DEFAULTS.items():
            value = getattr(self, name)
            if name.startswith("autoscale_") and not autoscale:
                continue
            out[name] = value if value is not None else default
        if not autoscale:
            out["num_replicas"] = self.num_replicas
        out["cpu_cores_limit"] = self.cpu_cores_limit
        out["memory_gb_limit"] = self.memory_gb_limit
        out["auth_enabled"] = self._key_auth()
        out["token_auth_enabled"] = bool(self.token_auth_enabled)
        return {k: v for k, v in out.items() if v is not None}

    def _key_auth(self) -> bool:
        # Azure: key auth is on for AKS unless turned off; with token auth asked for,
        # kaci demands the keys (tokens are not served yet).
        if self.token_auth_enabled:
            return True
        return True if self.auth_enabled is None else bool(self.auth_enabled)

    def _spec(self) -> dict[str, Any]:
        return _manifests.deployment_config_spec(
            self.cpu_cores, self.memory_gb, self._key_auth(), self.tags, self.description
        )

    def _annotations(self) -> dict[str, str]:
        return {
            api.COMPUTE_TYPE_ANNOTATION: "AKS",
            api.AKS_CONFIG_ANNOTATION: json.dumps(self.resolved(), sort_keys=True),
        }

    def print_deploy_configuration(self) -> None:
        parts = []
        if self.cpu_cores:
            parts.append(f"CPU requirement: {self.cpu_cores}")
        if self.memory_gb:
            parts.append(f"Memory requirement: {self.memory_gb}GB")
        if self.num_replicas:
            parts.append(f"Number of replica: {self.num_replicas}")
        if parts:
            print(", ".join(parts))


class AksWebservice(Webservice):
    """A Webservice deployed with an AKS configuration."""

    _webservice_type = "AKS"

    @staticmethod
    def deploy_configuration(
        autoscale_enabled: bool | None = None,
        autoscale_min_replicas: int | None = None,
        autoscale_max_replicas: int | None = None,
        autoscale_refresh_seconds: int | None = None,
        autoscale_target_utilization: int | None = None,
        collect_model_data: bool | None = None,
        auth_enabled: bool | None = None,
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        enable_app_insights: bool | None = None,
        scoring_timeout_ms: int | None = None,
        replica_max_concurrent_requests: int | None = None,
        max_request_wait_time: int | None = None,
        num_replicas: int | None = None,
        primary_key: str | None = None,
        secondary_key: str | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        gpu_cores: int | None = None,
        period_seconds: int | None = None,
        initial_delay_seconds: int | None = None,
        timeout_seconds: int | None = None,
        success_threshold: int | None = None,
        failure_threshold: int | None = None,
        namespace: str | None = None,
        token_auth_enabled: bool | None = None,
        compute_target_name: str | None = None,
        cpu_cores_limit: float | None = None,
        memory_gb_limit: float | None = None,
        blobfuse_enabled: bool | None = None,
    ) -> AksServiceDeploymentConfiguration:
        return AksServiceDeploymentConfiguration(
            autoscale_enabled, autoscale_min_replicas, autoscale_max_replicas,
            autoscale_refresh_seconds, autoscale_target_utilization, collect_model_data,
            auth_enabled, cpu_cores, memory_gb, enable_app_insights, scoring_timeout_ms,
            replica_max_concurrent_requests, max_request_wait_time, num_replicas, primary_key,
            secondary_key, tags, properties, description, gpu_cores, period_seconds,
            initial_delay_seconds, timeout_seconds, success_threshold, failure_threshold,
            namespace, token_auth_enabled, compute_target_name, cpu_cores_limit,
            memory_gb_limit, blobfuse_enabled,
        )  # fmt: skip

    def _initialize(self, obj: dict[str, Any]) -> None:
        super()._initialize(obj)
        raw = (obj.get("metadata", {}).get("annotations") or {}).get(api.AKS_CONFIG_ANNOTATION)
        try:
            cfg: dict[str, Any] = json.loads(raw) if raw else {}
        except ValueError:
            cfg = {}
        self.autoscale_enabled: bool | None = cfg.get("autoscale_enabled")
        self.autoscale_min_replicas: int | None = cfg.get("autoscale_min_replicas")
        self.autoscale_max_replicas: int | None = cfg.get("autoscale_max_replicas")
        self.autoscale_refresh_seconds: int | None = cfg.get("autoscale_refresh_seconds")
        self.autoscale_target_utilization: int | None = cfg.get("autoscale_target_utilization")
        self.num_replicas: int | None = cfg.get("num_replicas")
        self.scoring_timeout_ms: int | None = cfg.get("scoring_timeout_ms")
        self.replica_max_concurrent_requests: int | None = cfg.get(
            "replica_max_concurrent_requests"
        )
        self.max_request_wait_time: int | None = cfg.get("max_request_wait_time")
        self.token_auth_enabled = bool(cfg.get("token_auth_enabled"))
        self.compute_type = "AKS"

    def update(  # type: ignore[override]
        self,
        image: Any = None,
        autoscale_enabled: bool | None = None,
        autoscale_min_replicas: int | None = None,
        autoscale_max_replicas: int | None = None,
        autoscale_refresh_seconds: int | None = None,
        autoscale_target_utilization: int | None = None,
        collect_model_data: bool | None = None,
        auth_enabled: bool | None = None,
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        enable_app_insights: bool | None = None,
        scoring_timeout_ms: int | None = None,
        replica_max_concurrent_requests: int | None = None,
        max_request_wait_time: int | None = None,
        num_replicas: int | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        models: Any = None,
        inference_config: Any = None,
        gpu_cores: int | None = None,
        period_seconds: int | None = None,
        initial_delay_seconds: int | None = None,
        timeout_seconds: int | None = None,
        success_threshold: int | None = None,
        failure_threshold: int | None = None,
        namespace: str | None = None,
        token_auth_enabled: bool | None = None,
        cpu_cores_limit: float | None = None,
        memory_gb_limit: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Azure's AKS update: the scaling settings go into the annotation (#16), the rest
        through Webservice.update (a rolling change)."""
        changes = {
            k: v
            for k, v in {
                "autoscale_enabled": autoscale_enabled,
                "autoscale_min_replicas": autoscale_min_replicas,
                "autoscale_max_replicas": autoscale_max_replicas,
                "autoscale_refresh_seconds": autoscale_refresh_seconds,
                "autoscale_target_utilization": autoscale_target_utilization,
                "scoring_timeout_ms": scoring_timeout_ms,
                "replica_max_concurrent_requests": replica_max_concurrent_requests,
                "max_request_wait_time": max_request_wait_time,
                "num_replicas": num_replicas,
                "period_seconds": period_seconds,
                "initial_delay_seconds": initial_delay_seconds,
                "timeout_seconds": timeout_seconds,
                "success_threshold": success_threshold,
                "failure_threshold": failure_threshold,
                "cpu_cores_limit": cpu_cores_limit,
                "memory_gb_limit": memory_gb_limit,
                "gpu_cores": gpu_cores,
                "namespace": namespace,
                "token_auth_enabled": token_auth_enabled,
            }.items()
            if v is not None
        }
        common = (image, auth_enabled, cpu_cores, memory_gb, tags, properties, description)
        if not changes and all(v is None for v in (*common, models, inference_config)):
            raise WebserviceException("No parameters provided to update.")
        if changes:
            raw = (self._obj.get("metadata", {}).get("annotations") or {}).get(
                api.AKS_CONFIG_ANNOTATION
            )
            current: dict[str, Any] = json.loads(raw) if raw else {}
            if num_replicas is not None and autoscale_enabled is None:
                changes["autoscale_enabled"] = False
            merged = {**current, **changes}
            if merged.get("autoscale_enabled") is False:
                # Switched to fixed replicas: the old autoscale settings no longer apply.
                for key in [k for k in merged if k.startswith("autoscale_")]:
                    if key not in changes and key != "autoscale_enabled":
                        merged.pop(key)
            elif "num_replicas" not in changes:
                merged.pop("num_replicas", None)
            # Azure's checks on the combined settings (same messages), defaults filled in.
            kept = ("auth_enabled", "token_auth_enabled", "cpu_cores", "memory_gb")
            checked = AksServiceDeploymentConfiguration(
                **{k: v for k, v in merged.items() if k not in kept}
            ).resolved()
            for key in kept:
                if key in current:
                    checked[key] = current[key]
            merged = checked
            obj = self.workspace._kube.patch(
                "webservices",
                self.name,
                {
                    "metadata": {
                        "annotations": {
                            api.AKS_CONFIG_ANNOTATION: json.dumps(merged, sort_keys=True)
                        }
                    }
                },
            )
            self._initialize(obj)
        if any(v is not None for v in (*common, models, inference_config)):
            super().update(
                image=image,
                tags=tags,
                properties=properties,
                description=description,
                auth_enabled=auth_enabled,
                enable_app_insights=enable_app_insights,
                models=models,
                inference_config=inference_config,
                cpu_cores=cpu_cores,
                memory_gb=memory_gb,
            )

    def get_token(self) -> Any:
        raise WebserviceException(
            f"get_token: token auth is not served by kaci yet ({TOKEN_AUTH_ISSUE}); this service "
            "demands its keys: use get_keys() (service.run() sends the primary key itself)"
        )
