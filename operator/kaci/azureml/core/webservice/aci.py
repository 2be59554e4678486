"""AciWebservice and its deployment configuration (Azure's azureml.core.webservice.aci).

An ACI container group becomes one Pod with requests = limits = cpu_cores and
memory_gb, behind a Service. Parameters about Azure's network, TLS, regions and
telemetry have no counterpart: they are refused when they would change
behaviour (ssl_enabled=True) and warned about otherwise.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from kaci.azureml import _manifests
from kaci.azureml.core.webservice.webservice import Webservice
from kaci.azureml.exceptions import KaciCompatibilityWarning, WebserviceException

if TYPE_CHECKING:
    pass

# Parameter -> why it is not used; given a non-None value they are warned about.
_IGNORED = {
    "location": "the service runs in the workspace's cluster and namespace, not an Azure region",
    "enable_app_insights": "there is no Application Insights; scrape the runtime's /metrics",
    "dns_name_label": "the service is reached at <name>.<namespace>.svc.cluster.local",
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
        spec = _manifests.deployment_config_spec(
            self.cpu_cores, self.memory_gb, self.auth_enabled, self.tags, self.description
        )
        if self.collect_model_data is not None:
            # Captured by kaci-runtime, to the Pod's log (deploymentConfig.collectModelData).
            spec["collectModelData"] = bool(self.collect_model_data)
        return spec

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

    def get_token(self) -> Any:
        raise WebserviceException("ACI services use keys, not tokens: use get_keys()")
