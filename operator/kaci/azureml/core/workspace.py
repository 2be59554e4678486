"""Workspace: where kaci objects live — a kubeconfig context and a namespace.

Azure's workspace was (subscription, resource group, name) read from
`.azureml/config.json`. kaci reads the same file names and search order, with
kaci's own keys:

    {"context": "kaci-local", "namespace": "default",
     "kubeconfig": "~/.kube/config", "registry": "127.0.0.1:5000"}

`registry` is where Model.register pushes files too large for a ConfigMap (the
registry the cluster's builder pulls from). An Azure config.json still works: its
`workspace_name` becomes the namespace, and the Azure-only keys are reported as
unused.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kaci import api
from kaci.azureml.exceptions import (
    KaciCompatibilityWarning,
    UserErrorException,
    WorkspaceException,
)

if TYPE_CHECKING:
    from kaci.azureml._kube import Kube

CONFIG_FILENAME = "config.json"
# Azure's search order: .azureml/, aml_config/, then the folder itself, from the
# start folder up to the file system root.
CONFIG_DIRS = (".azureml", "aml_config", None)
KACI_KEYS = frozenset(
    {
        "context",
        "namespace",
        "kubeconfig",
        "registry",
        "registry_pull",
        "registry_insecure",
        "operator",
    }
)
# The label an operator started with KACI_OPERATOR_INSTANCE=<x> selects its objects by.
OPERATOR_LABEL = api.INSTANCE_LABEL
# What ws.location reads (Azure's region has no Kubernetes meaning).
LOCATION = "kubernetes"
AZURE_ONLY_KEYS = frozenset({"subscription_id", "resource_group", "Scope", "location"})


@dataclass(frozen=True)
class WorkspaceConfig:
    """What a workspace is, once parsed: pure data, no cluster access."""

    context: str | None = None
    namespace: str | None = None
    kubeconfig: str | None = None
    registry: str | None = None
    registry_pull: str | None = None
    registry_insecure: bool | None = None
    operator: str | None = None
    ignored: tuple[str, ...] = field(default=())


def parse_config(data: dict[str, Any]) -> WorkspaceConfig:
    """Parse a config.json object (kaci keys, or an Azure one)."""
    if not isinstance(data, dict):
        raise UserErrorException("the workspace config file must hold a JSON object")
    namespace = data.get("namespace") or data.get("workspace_name")
    unknown = sorted(k for k in data if k not in KACI_KEYS | {"workspace_name"})
    insecure = data.get("registry_insecure")
    if insecure is not None and not isinstance(insecure, bool):
        raise UserErrorException("registry_insecure must be true or false")
    for key in ("context", "kubeconfig", "registry", "registry_pull", "operator"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise UserErrorException(f"{key} must be a string")
    if namespace is not None and not isinstance(namespace, str):
        raise UserErrorException("namespace must be a string")
    return WorkspaceConfig(
        context=data.get("context"),
        namespace=namespace,
        kubeconfig=data.get("kubeconfig"),
        registry=data.get("registry"),
        registry_pull=data.get("registry_pull"),
        registry_insecure=insecure,
        operator=data.get("operator"),
        ignored=tuple(unknown),
    )


def find_config_file(path: str | os.PathLike[str] | None, file_name: str | None) -> Path:
    """Azure's lookup: a file path as is, else search the folder and its parents."""
    start = Path(path if path is not None else ".").expanduser().resolve()
    if start.is_file():
        return start
    names = [file_name] if file_name else [CONFIG_FILENAME]
    for folder in (start, *start.parents):
        for sub in CONFIG_DIRS:
            for name in names:
                candidate = folder / sub / name if sub else folder / name
                if candidate.is_file():
                    return candidate
    raise UserErrorException(
        f"The workspace configuration file {names[0]} could not be found in {start} or its "
        "parent directories (looked in .azureml/, aml_config/ and the folder itself). "
        "Create one with Workspace(...).write_config() or pass the path."
    )


def registry_is_insecure(registry: str, explicit: bool | None) -> bool:
    """Plain HTTP for a loopback registry unless told otherwise (like Docker does)."""
    if explicit is not None:
        return explicit
    host = registry.split("/", 1)[0].rsplit(":", 1)[0]
    return host in {"localhost", "127.0.0.1", "[::1]"} or host.startswith("127.")


class Workspace:
    """A kubeconfig context plus a namespace (Azure's Workspace).

    `Workspace(context=..., namespace=...)`, or `Workspace.from_config()`. Azure's
    positional (subscription_id, resource_group, workspace_name) are accepted so old
    code runs: workspace_name becomes the namespace and the others are reported unused.
    """

    def __init__(
        self,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        workspace_name: str | None = None,
        auth: Any = None,
        *,
        context: str | None = None,
        namespace: str | None = None,
        kubeconfig: str | None = None,
        registry: str | None = None,
        registry_pull: str | None = None,
        registry_insecure: bool | None = None,
        operator: str | None = None,
    ) -> None:
        unused = [
            n
            for n, v in (
                ("subscription_id", subscription_id),
                ("resource_group", resource_group),
                ("auth", auth),
            )
            if v is not None
        ]
        if unused:
            warnings.warn(
                f"Workspace: {', '.join(unused)} have no meaning on Kubernetes and are not "
                "used; kaci uses the kubeconfig context's credentials",
                KaciCompatibilityWarning,
                stacklevel=2,
            )
        self.kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
        self._context = context
        self._namespace = namespace or workspace_name
        self.registry = registry or os.environ.get("KACI_REGISTRY") or "127.0.0.1:5000"
        self.registry_pull = registry_pull or os.environ.get("KACI_REGISTRY_PULL") or None
        self.registry_insecure = registry_is_insecure(self.registry, registry_insecure)
        # Which operator instance handles what this workspace creates (None: the main one).
        self.operator = operator or os.environ.get("KACI_OPERATOR_INSTANCE") or None

    @staticmethod
    def from_config(
        path: str | os.PathLike[str] | None = None,
        auth: Any = None,
        _logger: Any = None,
        _file_name: str | None = None,
    ) -> Workspace:
        """Read the workspace from `.azureml/config.json` (or `path`), like Azure."""
        found = find_config_file(path, _file_name)
        try:
            data = json.loads(found.read_text())
        except (OSError, ValueError) as exc:
            raise UserErrorException(f"cannot read workspace config {found}: {exc}") from exc
        cfg = parse_config(data)
        if cfg.ignored:
            warnings.warn(
                f"{found}: keys {', '.join(cfg.ignored)} have no meaning for kaci and are not used",
                KaciCompatibilityWarning,
                stacklevel=2,
            )
        kubeconfig = cfg.kubeconfig
        if kubeconfig and not Path(kubeconfig).expanduser().is_absolute():
            # A relative kubeconfig is relative to the config file, not the cwd.
            kubeconfig = str((found.parent / kubeconfig).resolve())
        return Workspace(
            auth=auth,
            context=cfg.context,
            namespace=cfg.namespace,
            kubeconfig=str(Path(kubeconfig).expanduser()) if kubeconfig else None,
            registry=cfg.registry,
            registry_pull=cfg.registry_pull,
            registry_insecure=cfg.registry_insecure,
            operator=cfg.operator,
        )

    @staticmethod
    def get(name: str, auth: Any = None, subscription_id: Any = None, **kwargs: Any) -> Workspace:
        """Azure's Workspace.get(name): here the name is the namespace."""
        return Workspace(subscription_id, None, name, auth, context=kwargs.get("context"))

    def write_config(self, path: str | None = None, file_name: str | None = None) -> str:
        """Write `.azureml/config.json` (Azure's defaults) so from_config finds it."""
        folder = Path(path) if path else Path.cwd() / ".azureml"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / (file_name or CONFIG_FILENAME)
        data: dict[str, Any] = {"context": self.context, "namespace": self.namespace}
        if self.kubeconfig:
            data["kubeconfig"] = self.kubeconfig
        data["registry"] = self.registry
        if self.registry_pull:
            data["registry_pull"] = self.registry_pull
        if self.operator:
            data["operator"] = self.operator
        target.write_text(json.dumps(data, indent=2) + "\n")
        return str(target)

    @cached_property
    def _kubeconfig_contexts(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        from kubernetes import config as kconfig

        try:
            contexts, active = kconfig.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=self.kubeconfig
            )
        except Exception as exc:  # the client raises ConfigException or OSError
            raise WorkspaceException(f"cannot read kubeconfig: {exc}") from exc
        return list(contexts), dict(active)

    @property
    def context(self) -> str:
        if self._context:
            return self._context
        return str(self._kubeconfig_contexts[1]["name"])

    @property
    def namespace(self) -> str:
        if self._namespace:
            return self._namespace
        contexts, _ = self._kubeconfig_contexts
        for ctx in contexts:
            if ctx.get("name") == self.context:
                return str(ctx.get("context", {}).get("namespace") or "default")
        return "default"

    @property
    def name(self) -> str:
        """Azure's workspace name: the namespace."""
        return self.namespace

    # -- Azure attributes with no Kubernetes meaning: documented stand-ins -------------

    @property
    def subscription_id(self) -> str:
        """Azure's subscription: here the kubeconfig context (the cluster and its user)."""
        return self.context

    @property
    def resource_group(self) -> str:
        """Azure's resource group: here the namespace (what holds the objects)."""
        return self.namespace

    @property
    def location(self) -> str:
        """Azure's region: here always "kubernetes" (the cluster is wherever it runs)."""
        return LOCATION

    @property
    def sku(self) -> str:
        return "kaci"

    def get_details(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": f"/kaci/contexts/{self.context}/namespaces/{self.namespace}",
            "location": self.location,
            "resourceGroup": self.resource_group,
            "subscriptionId": self.subscription_id,
            "namespace": self.namespace,
            "context": self.context,
            "registry": self.registry,
        }

    # -- what the workspace holds (Azure's dict properties) ---------------------------

    @property
    def models(self) -> dict[str, Any]:
        """Model name -> its latest version."""
        from kaci.azureml.core.model import Model

        return {m.name: m for m in Model.list(self, latest=True)}

    @property
    def webservices(self) -> dict[str, Any]:
        from kaci.azureml.core.webservice import Webservice

        return {w.name: w for w in Webservice.list(self)}

    @property
    def images(self) -> dict[str, Any]:
        from kaci.azureml.core.image import Image

        return {i.name: i for i in Image.list(self)}

    @property
    def environments(self) -> dict[str, Any]:
        from kaci.azureml.core.environment import Environment

        return Environment.list(self)

    @property
    def compute_targets(self) -> dict[str, Any]:
        """The one compute target: the cluster, named after the kubeconfig context."""
        from kaci.azureml.core.compute import AksCompute

        return {self.context: AksCompute(self, self.context)}

    @cached_property
    def _kube(self) -> Kube:
        from kaci.azureml._kube import Kube

        labels = {OPERATOR_LABEL: self.operator} if self.operator else {}
        return Kube.connect(self.kubeconfig, self.context, self.namespace, labels)

    def __repr__(self) -> str:
        return f"Workspace(context={self._context!r}, namespace={self._namespace!r})"
