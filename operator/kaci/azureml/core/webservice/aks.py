"""AksWebservice and its deployment configuration (Azure's azureml.core.webservice.aks).

The cluster kaci runs on is the AKS compute target. An AKS configuration becomes the
Webservice's spec.deploymentConfig: replicas or autoscale (a HorizontalPodAutoscaler),
requests apart from limits, the runtime's scoring timeout, concurrency and queue wait,
liveness probe settings and token auth (the operator fills in Azure's defaults for
what is left out). `validate_aks` holds Azure's checks, for deploy_configuration and
update alike.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kaci import api
from kaci.azureml import _manifests
from kaci.azureml.core.webservice.webservice import Webservice
from kaci.azureml.exceptions import KaciCompatibilityWarning, WebserviceException

NAMESPACE_REGEX = "^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)$"
# A token's lifetime, and when get_token() tells the caller to fetch a new one. Azure
# does not document its numbers (its token service decides); kaci: an hour, renewed
# after half of it, so a token in use never runs out mid-request.
TOKEN_LIFETIME_S = 3600
TOKEN_REFRESH_AFTER_S = 1800

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
# Azure parameter -> its place in spec.deploymentConfig.
SPEC_FIELDS: dict[str, tuple[str, ...]] = {
    "num_replicas": ("replicas",),
    "autoscale_enabled": ("autoscale", "enabled"),
    "autoscale_min_replicas": ("autoscale", "minReplicas"),
    "autoscale_max_replicas": ("autoscale", "maxReplicas"),
    "autoscale_refresh_seconds": ("autoscale", "refreshSeconds"),
    "autoscale_target_utilization": ("autoscale", "targetUtilization"),
    "cpu_cores_limit": ("cpuCoresLimit",),
    "memory_gb_limit": ("memoryGbLimit",),
    "scoring_timeout_ms": ("scoringTimeoutMs",),
    "replica_max_concurrent_requests": ("replicaMaxConcurrentRequests",),
    "max_request_wait_time": ("maxRequestWaitTimeMs",),
    "period_seconds": ("livenessProbe", "periodSeconds"),
    "initial_delay_seconds": ("livenessProbe", "initialDelaySeconds"),
    "timeout_seconds": ("livenessProbe", "timeoutSeconds"),
    "success_threshold": ("livenessProbe", "successThreshold"),
    "failure_threshold": ("livenessProbe", "failureThreshold"),
    "token_auth_enabled": ("tokenAuthEnabled",),
    "collect_model_data": ("collectModelData",),
}
AUTOSCALE_PARAMS = (
    "autoscale_min_replicas",
    "autoscale_max_replicas",
    "autoscale_refresh_seconds",
    "autoscale_target_utilization",
)
_POSITIVE = (
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
_IGNORED = {
    "enable_app_insights": "there is no Application Insights; scrape the runtime's /metrics",
    "blobfuse_enabled": "models are baked into the image, there is no blob mount",
    "properties": "Webservice objects keep tags only",
    "compute_target_name": "the cluster is the compute target",
}


def validate_aks(v: Mapping[str, Any], stacklevel: int = 4) -> None:
    """Azure's checks on a whole AKS configuration (its messages), then kaci's refusals
    and warnings. `v`: Azure's parameter names; None or missing = not given."""

    def get(name: str) -> Any:
        return v.get(name)

    error = ""
    for name in _POSITIVE:
        if get(name) is not None and get(name) <= 0:
            error += f"Invalid configuration, {name} must be greater than zero.\n"
    for low, high in (("cpu_cores", "cpu_cores_limit"), ("memory_gb", "memory_gb_limit")):
        request = get(low) or AKS_DEFAULTS[low]
        if get(high) is not None and get(high) < request:
            error += f"Invalid configuration, {high} must be greater than or equal to {low}.\n"
    if get("gpu_cores") is not None and get("gpu_cores") < 0:
        error += "Invalid configuration, gpu_cores must be greater than or equal to zero.\n"
    if get("namespace") and not re.match(NAMESPACE_REGEX, get("namespace")):
        error += (
            "Invalid configuration, namespace must be a valid Kubernetes namespace. "
            f"Regex for validation is {NAMESPACE_REGEX}\n"
        )
    if get("autoscale_enabled"):
        if get("num_replicas"):
            error += "Invalid configuration, autoscale enabled and num_replicas provided.\n"
        for name in AUTOSCALE_PARAMS:
            if get(name) is not None and get(name) <= 0:
                error += f"Invalid configuration, {name} must be greater than zero.\n"
        low = get("autoscale_min_replicas") or AKS_DEFAULTS["autoscale_min_replicas"]
        high = get("autoscale_max_replicas") or AKS_DEFAULTS["autoscale_max_replicas"]
        if low > high:
            error += (
                "Invalid configuration, autoscale_min_replicas cannot be greater than "
                "autoscale_max_replicas.\n"
            )
        if get("autoscale_target_utilization") and get("autoscale_target_utilization") > 100:
            error += "Invalid configuration, autoscale_target_utilization is a percentage.\n"
    else:
        if get("autoscale_enabled") is False and not get("num_replicas"):
            error += "Invalid configuration, autoscale disabled but num_replicas not provided.\n"
        for name in AUTOSCALE_PARAMS:
            if get(name):
                error += f"Invalid configuration, {name} provided without enabling autoscaling.\n"
    if get("token_auth_enabled") and get("auth_enabled"):
        error += "Invalid configuration, auth_enabled and token_auth_enabled cannot both be true.\n"
    if error:
        raise WebserviceException(error)
    if get("gpu_cores"):
        raise WebserviceException(
            "gpu_cores: kaci scoring images are CPU-only; leave gpu_cores out or 0"
        )
    if get("primary_key") or get("secondary_key"):
        raise WebserviceException(
            "primary_key/secondary_key: the operator generates the keys; after deployment set "
            "your own with service.regen_key('Primary', set_key=...)"
        )
    if get("namespace"):
        raise WebserviceException(
            "namespace: a kaci Webservice lives in its workspace's namespace; make a "
            f"Workspace(namespace={get('namespace')!r}) instead"
        )
    for name, why in _IGNORED.items():
        if get(name) is not None:
            warnings.warn(
                f"deploy_configuration: {name} is not used ({why})",
                KaciCompatibilityWarning,
                stacklevel=stacklevel,
            )


def aks_spec_fields(v: Mapping[str, Any]) -> dict[str, Any]:
    """The AKS part of spec.deploymentConfig from Azure's parameters (pure): replicas or
    autoscale (on unless num_replicas, as in Azure), and what else was given."""
    autoscale = v.get("autoscale_enabled")
    if autoscale is None:
        autoscale = v.get("num_replicas") is None
    out: dict[str, Any] = {}
    for name, path in SPEC_FIELDS.items():
        value = v.get(name)
        if name == "autoscale_enabled":
            value = True if autoscale else None
        elif (name == "num_replicas" and autoscale) or (
            name.startswith("autoscale_") and not autoscale
        ):
            value = None
        elif name == "token_auth_enabled":
            value = True if value else None
        if value is None:
            continue
        where = out
        for key in path[:-1]:
            where = where.setdefault(key, {})
        where[path[-1]] = value
    return out


def from_spec(dc: Mapping[str, Any]) -> dict[str, Any]:
    """Azure's parameters as a deploymentConfig has them (given ones only; pure)."""
    out: dict[str, Any] = {}
    for name, path in SPEC_FIELDS.items():
        where: Any = dc
        for key in path:
            where = where.get(key) if isinstance(where, Mapping) else None
        if where is not None:
            out[name] = where
    if "autoscale_enabled" not in out and out.get("num_replicas") is not None:
        out["autoscale_enabled"] = False
    return out


def key_auth(auth_enabled: bool | None, token_auth_enabled: bool | None) -> bool:
    """Azure: key auth is on for AKS unless turned off, and off with token auth."""
    if token_auth_enabled:
        return False
    return True if auth_enabled is None else bool(auth_enabled)


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
        validate_aks(self.__dict__, stacklevel=5)

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
        out["auth_enabled"] = key_auth(self.auth_enabled, self.token_auth_enabled)
        out["token_auth_enabled"] = bool(self.token_auth_enabled)
        return {k: v for k, v in out.items() if v is not None}

    def _spec(self) -> dict[str, Any]:
        base = _manifests.deployment_config_spec(
            self.cpu_cores,
            self.memory_gb,
            key_auth(self.auth_enabled, self.token_auth_enabled),
            self.tags,
            self.description,
        )
        return {**base, **aks_spec_fields(self.__dict__)}

    def _annotations(self) -> dict[str, str]:
        return {api.COMPUTE_TYPE_ANNOTATION: "AKS"}

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
        dc = (obj.get("spec") or {}).get("deploymentConfig") or {}
        given = from_spec(dc)
        autoscale = bool(given.get("autoscale_enabled"))

        def value(name: str) -> Any:
            if name in given:
                return given[name]
            if name.startswith("autoscale_") and not autoscale:
                return None
            return AKS_DEFAULTS.get(name)

        self.autoscale_enabled: bool | None = autoscale
        self.autoscale_min_replicas: int | None = value("autoscale_min_replicas")
        self.autoscale_max_replicas: int | None = value("autoscale_max_replicas")
        self.autoscale_refresh_seconds: int | None = value("autoscale_refresh_seconds")
        self.autoscale_target_utilization: int | None = value("autoscale_target_utilization")
        self.num_replicas: int | None = None if autoscale else int(given.get("num_replicas", 1))
        self.scoring_timeout_ms: int | None = value("scoring_timeout_ms")
        self.replica_max_concurrent_requests: int | None = value("replica_max_concurrent_requests")
        self.max_request_wait_time: int | None = value("max_request_wait_time")
        self.cpu_cores_limit: float | None = given.get("cpu_cores_limit")
        self.memory_gb_limit: float | None = given.get("memory_gb_limit")
        self.token_auth_enabled = bool(given.get("token_auth_enabled"))
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
        """Azure's AKS update: Azure's checks on the combined settings (validate_aks),
        then one spec change (a rolling update, no downtime)."""
        given = {
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
        }
        changes = {k: v for k, v in given.items() if v is not None}
        common = (image, auth_enabled, cpu_cores, memory_gb, tags, properties, description)
        if not changes and all(v is None for v in (*common, models, inference_config)):
            raise WebserviceException("No parameters provided to update.")
        fields = None
        if changes or auth_enabled is not None:
            fields = self._merged_fields(changes, auth_enabled, cpu_cores, memory_gb)
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
            deployment_fields=fields,
        )

    def _merged_fields(
        self,
        changes: dict[str, Any],
        auth_enabled: bool | None,
        cpu_cores: float | None,
        memory_gb: float | None,
    ) -> dict[str, Any]:
        """The new AKS fields of deploymentConfig (None: remove), from the current ones
        and the changes, checked as a whole."""
        dc = (self._obj.get("spec") or {}).get("deploymentConfig") or {}
        current = from_spec(dc)
        if changes.get("num_replicas") is not None and "autoscale_enabled" not in changes:
            changes["autoscale_enabled"] = False
        if changes.get("autoscale_enabled") and "num_replicas" not in changes:
            current.pop("num_replicas", None)
        merged = {**current, **changes}
        if merged.get("autoscale_enabled") is False:
            # Switched to fixed replicas: the old autoscale settings no longer apply.
            for key in AUTOSCALE_PARAMS:
                if key not in changes:
                    merged.pop(key, None)
        # Azure's update checks on key and token auth, in its words.
        token_change = changes.get("token_auth_enabled")
        now_key, now_token = bool(dc.get("authEnabled")), bool(dc.get("tokenAuthEnabled"))
        both = "Error, cannot set both token_auth_enabled and auth_enabled.\n"
        key_on = (
            "Error, cannot set token_auth_enabled without disabling key auth (set "
            "auth_enabled to False).\n"
        )
        if token_change and auth_enabled:
            raise WebserviceException(both)
        if token_change and now_key and auth_enabled is not False:
            raise WebserviceException(key_on)
        if auth_enabled and now_token and token_change is not False:
            raise WebserviceException(key_on)
        auth = now_key if auth_enabled is None else auth_enabled
        validate_aks(
            {
                **merged,
                "auth_enabled": auth,
                "cpu_cores": cpu_cores if cpu_cores is not None else dc.get("cpuCores"),
                "memory_gb": memory_gb if memory_gb is not None else dc.get("memoryGb"),
            }
        )
        new = aks_spec_fields(merged)
        # Every AKS field is written: the ones no longer wanted as None (removed).
        tops = {path[0] for path in SPEC_FIELDS.values()}
        return {top: new.get(top) for top in sorted(tops)}

    def get_token(self) -> tuple[str, datetime]:
        """(token, refresh_by), as Azure's: a token for this service (from its keys
        Secret, with your own Kubernetes credentials), and the local time after which
        to fetch a new one (Azure's datetime.fromtimestamp(refresh_after))."""
        from kaci import tokens

        if not self.token_auth_enabled:
            raise WebserviceException(
                f"Error, token auth is not enabled for webservice {self.name}: deploy it with "
                "token_auth_enabled=True (and auth_enabled=False)"
            )
        key = self._signing_key()
        now = int(time.time())
        audience = api.token_audience(self.workspace.namespace, self.name)
        token = tokens.mint(key, audience, now, TOKEN_LIFETIME_S)
        return token, datetime.fromtimestamp(now + TOKEN_REFRESH_AFTER_S)

    def _signing_key(self) -> bytes:
        """The key's bytes: the Secret holds them as base64url text (what the runtime
        gets in KACI_AUTH_TOKEN_KEY and decodes the same way)."""
        import base64

        secret = self.workspace._kube.read_secret(api.keys_secret_name(self.name))
        raw = (secret.get("data") or {}).get(api.TOKEN_SIGNING_KEY)
        if not raw:
            raise WebserviceException(
                f"webservice {self.name} has no token signing key yet: the operator makes it "
                "when it first deploys the service (wait_for_deployment())"
            )
        text = base64.b64decode(raw).decode().strip()
        try:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except ValueError:
            raise WebserviceException(
                f"the tokenSigningKey of {api.keys_secret_name(self.name)} is not base64url: "
                "delete that key from the Secret and the operator makes a new one"
            ) from None
