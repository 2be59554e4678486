"""AciWebservice and its deployment configuration (Azure's azureml.core.webservice.aci).

An ACI container group becomes one Pod with requests = limits = cpu_cores and
memory_gb, behind a Service. Parameters about Azure's network, TLS, regions and
telemetry have no counterpart: they are refused when they would change
behaviour (ssl_enabled=True) and warned about otherwise.
"""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING, Any

from kaci.azureml import _manifests, _scoring
from kaci.azureml.core.webservice.webservice import PLURAL, Webservice
from kaci.azureml.exceptions import KaciCompatibilityWarning, WebserviceException

if TYPE_CHECKING:
    from kaci.azureml.core.image.container import ContainerImageConfig
    from kaci.azureml.core.image.image import Image
    from kaci.azureml.core.model import Model

# Parameter -> why it is not used; given a non-None value they are warned about.
_IGNORED = {
    "location": "the service runs in the workspace's cluster and namespace, not an Azure region",
    "enable_app_insights": "there is no Application Insights; scrape the runtime's /metrics",
    "dns_name_label": "the service is reached at <name>.<namespace>.svc.cluster.local",
    "collect_model_data": "model data collection is not offered",
    "cmk_vault_base_url": "encryption at rest is the cluster's (etcd/registry) business",
    "cmk_key_name": "encryption at rest is the cluster's (etcd/registry) business",
    "cmk_key_version": "encryption at rest is the cluster's (etcd/registry) business",
    "vnet_name": "network placement is the cluster's CNI and NetworkPolicy business",
    "subnet_name": "network placement is the cluster's CNI and NetworkPolicy business",
    "properties": "Webservice objects keep tags only",
}


class AciServiceDeploymentConfiguration:
    """CPU, memory, auth, tags and description of a Webservice."""

    def __init__(
        self,
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        location: str | None = None,
        auth_enabled: bool | None = None,
        ssl_enabled: bool | None = None,
        enable_app_insights: bool | None = None,
        ssl_cert_pem_file: str | None = None,
        ssl_key_pem_file: str | None = None,
        ssl_cname: str | None = None,
        dns_name_label: str | None = None,
        primary_key: str | None = None,
        secondary_key: str | None = None,
        collect_model_data: bool | None = None,
        cmk_vault_base_url: str | None = None,
        cmk_key_name: str | None = None,
        cmk_key_version: str | None = None,
        vnet_name: str | None = None,
        subnet_name: str | None = None,
    ) -> None:
        self.cpu_cores = cpu_cores
        self.memory_gb = memory_gb
        self.tags = tags
        self.properties = properties
        self.description = description
        self.location = location
        self.auth_enabled = auth_enabled
        self.ssl_enabled = ssl_enabled
        self.enable_app_insights = enable_app_insights
        self.ssl_cert_pem_file = ssl_cert_pem_file
        self.ssl_key_pem_file = ssl_key_pem_file
        self.ssl_cname = ssl_cname
        self.dns_name_label = dns_name_label
        self.primary_key = primary_key
        self.secondary_key = secondary_key
        self.collect_model_data = collect_model_data
        self.cmk_vault_base_url = cmk_vault_base_url
        self.cmk_key_name = cmk_key_name
        self.cmk_key_version = cmk_key_version
        self.vnet_name = vnet_name
        self.subnet_name = subnet_name
        self.validate_configuration()

    def validate_configuration(self) -> None:
        for what, value in (("cpu_cores", self.cpu_cores), ("memory_gb", self.memory_gb)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise WebserviceException(f"Invalid configuration, {what} must be a number.")
            if value is not None and value <= 0:
                raise WebserviceException(f"Invalid configuration, {what} must be positive.")
        if self.ssl_enabled or self.ssl_cert_pem_file or self.ssl_key_pem_file or self.ssl_cname:
            raise WebserviceException(
                "ssl_enabled/ssl_*: kaci services speak plain HTTP inside the cluster; terminate "
                "TLS at an Ingress or Gateway in front of the Service instead"
            )
        if self.primary_key or self.secondary_key:
            raise WebserviceException(
                "primary_key/secondary_key: the operator generates the keys; after deployment set "
                "your own with service.regen_key('Primary', set_key=...)"
            )
        unused = [k for k in _IGNORED if getattr(self, k) is not None]
        for k in unused:
            warnings.warn(
                f"deploy_configuration: {k} is not used ({_IGNORED[k]})",
                KaciCompatibilityWarning,
                stacklevel=4,
            )

    def _spec(self) -> dict[str, Any]:
        return _manifests.deployment_config_spec(
            self.cpu_cores, self.memory_gb, self.auth_enabled, self.tags, self.description
        )

    def print_deploy_configuration(self) -> None:
        parts = []
        if self.cpu_cores:
            parts.append(f"CPU requirement: {self.cpu_cores}")
        if self.memory_gb:
            parts.append(f"Memory requirement: {self.memory_gb}GB")
        if parts:
            print(", ".join(parts))


class AciWebservice(Webservice):
    """A Webservice deployed the ACI way: one Pod with fixed CPU and memory."""

    _webservice_type = "ACI"

    @staticmethod
    def deploy_configuration(
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        location: str | None = None,
        auth_enabled: bool | None = None,
        ssl_enabled: bool | None = None,
        enable_app_insights: bool | None = None,
        ssl_cert_pem_file: str | None = None,
        ssl_key_pem_file: str | None = None,
        ssl_cname: str | None = None,
        dns_name_label: str | None = None,
        primary_key: str | None = None,
        secondary_key: str | None = None,
        collect_model_data: bool | None = None,
        cmk_vault_base_url: str | None = None,
        cmk_key_name: str | None = None,
        cmk_key_version: str | None = None,
        vnet_name: str | None = None,
        subnet_name: str | None = None,
    ) -> AciServiceDeploymentConfiguration:
        return AciServiceDeploymentConfiguration(
            cpu_cores=cpu_cores,
            memory_gb=memory_gb,
            tags=tags,
            properties=properties,
            description=description,
            location=location,
            auth_enabled=auth_enabled,
            ssl_enabled=ssl_enabled,
            enable_app_insights=enable_app_insights,
            ssl_cert_pem_file=ssl_cert_pem_file,
            ssl_key_pem_file=ssl_key_pem_file,
            ssl_cname=ssl_cname,
            dns_name_label=dns_name_label,
            primary_key=primary_key,
            secondary_key=secondary_key,
            collect_model_data=collect_model_data,
            cmk_vault_base_url=cmk_vault_base_url,
            cmk_key_name=cmk_key_name,
            cmk_key_version=cmk_key_version,
            vnet_name=vnet_name,
            subnet_name=subnet_name,
        )

    def run(self, input_data: Any) -> Any:
        """POST input_data to /score from outside the cluster (see kaci.azureml._scoring)."""
        if not self.scoring_uri:
            raise WebserviceException(
                "Error attempting to call webservice, scoring_uri unavailable. This could be due "
                f"to a failed deployment, or the service is not ready yet. Current State: "
                f"{self.state} Errors: {self.error}"
            )
        body = _to_bytes(input_data)
        headers = {"Content-Type": "application/json"}
        kube = self.workspace._kube
        if self._primary_key is None:
            resp = _scoring.via_service_proxy(kube, self.name, body, headers)
            if resp.status == 401 and self.auth_enabled:
                self._primary_key = self.get_keys()[0]
        if self._primary_key is not None:
            headers["Authorization"] = f"Bearer {self._primary_key}"
            resp = _scoring.via_port_forward(kube, self.name, body, headers)
        if resp.status == 200:
            return self._decode(resp.body)
        self._raise_bad_response(resp.status, resp.headers, resp.body)
        return None  # unreachable: _raise_bad_response raises

    def get_token(self) -> Any:
        raise WebserviceException("ACI services use keys, not tokens: use get_keys()")

    def update(
        self,
        image: Image | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        auth_enabled: bool | None = None,
        ssl_enabled: bool | None = None,
        ssl_cert_pem_file: str | None = None,
        ssl_key_pem_file: str | None = None,
        ssl_cname: str | None = None,
        enable_app_insights: bool | None = None,
        models: list[Model] | None = None,
        inference_config: ContainerImageConfig | None = None,
        *,
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
    ) -> None:
        """Change the service; the old Pod serves until the new one is ready."""
        if all(
            v is None
            for v in (
                image,
                tags,
                properties,
                description,
                auth_enabled,
                ssl_enabled,
                ssl_cert_pem_file,
                ssl_key_pem_file,
                ssl_cname,
                enable_app_insights,
                models,
                inference_config,
                cpu_cores,
                memory_gb,
            )
        ):
            raise WebserviceException("No parameters provided to update.")
        if ssl_enabled or ssl_cert_pem_file or ssl_key_pem_file or ssl_cname:
            raise WebserviceException(
                "ssl: kaci services speak plain HTTP in the cluster; use an Ingress for TLS"
            )
        if properties is not None:
            self._warn("update: properties are not used (Webservice objects keep tags only)")
        if enable_app_insights is not None:
            self._warn("update: enable_app_insights is not used (scrape /metrics instead)")
        if image is not None and (models is not None or inference_config is not None):
            raise WebserviceException("update: give either image, or models/inference_config")
        obj = self.workspace._kube.get(PLURAL, self.name)
        if obj is None:
            raise WebserviceException(f"WebserviceNotFound: {self.name}")
        spec = dict(obj["spec"])
        deploy = dict(spec.get("deploymentConfig", {}))
        for key, value in (
            ("tags", tags),
            ("description", description),
            ("authEnabled", auth_enabled),
            ("cpuCores", cpu_cores),
            ("memoryGb", memory_gb),
        ):
            if value is not None:
                deploy[key] = (
                    {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else value
                )
        probe = _manifests.deployment_config_spec(
            deploy.get("cpuCores"), deploy.get("memoryGb"), None, None, None
        )
        if probe["cpuCores"] <= 0 or probe["memoryGb"] <= 0:
            raise WebserviceException("cpu_cores and memory_gb must be positive")
        spec["deploymentConfig"] = deploy
        if image is not None:
            for k in ("modelFiles", "models", "imageConfig"):
                spec.pop(k, None)
            spec["image"] = {"name": image.name, "version": image.version}
        elif models is not None or inference_config is not None:
            if models is not None:
                for k in ("modelFiles", "image"):
                    spec.pop(k, None)
                spec["models"] = _manifests.model_refs([(m.name, m.version) for m in models])
            if inference_config is not None:
                spec.pop("image", None)
                spec["imageConfig"] = inference_config._spec()
            if "image" not in spec and "imageConfig" not in spec:
                raise WebserviceException(
                    "update: this service was deployed from an image; give inference_config too"
                )
        body = {"metadata": {"name": self.name}, "spec": spec}
        new = self.workspace._kube.replace_spec(PLURAL, obj, body)
        self._primary_key = None
        self._initialize(new)


def _to_bytes(input_data: Any) -> bytes:
    """Azure accepted a str, bytes, or a JSON-able object; send bytes."""
    if isinstance(input_data, bytes):
        return input_data
    if isinstance(input_data, str):
        return input_data.encode()
    return json.dumps(input_data).encode()
