"""Compute targets (Azure's azureml.core.compute): the cluster kaci runs on.

A kaci workspace deploys into its own Kubernetes cluster, so every compute-target
handle is that cluster: `ComputeTarget(ws, name)` returns an AksCompute for it
(whatever the name: code that does `try: ComputeTarget(...) except
ComputeTargetException: create(...)` takes the first branch), it is always
provisioned (Succeeded), and `create`/`attach` return the same handle. Deleting or
detaching it is refused: that would be the cluster itself.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from kaci.azureml.exceptions import ComputeTargetException, KaciCompatibilityWarning

if TYPE_CHECKING:
    from kaci.azureml.core.workspace import Workspace

SUCCEEDED = "Succeeded"


class ComputeTargetProvisioningConfiguration:
    """What Azure would have provisioned; kept for printing, never used."""

    def __init__(self, **kwargs: Any) -> None:
        self.settings = {k: v for k, v in kwargs.items() if v is not None}
        for key, value in kwargs.items():
            setattr(self, key, value)

    def validate_configuration(self) -> None:
        return None


class ComputeTarget:
    """A compute target handle; `ComputeTarget(ws, name)` is the cluster (an AksCompute)."""

    _compute_type = "AKS"

    def __new__(cls, *args: Any, **kwargs: Any) -> ComputeTarget:
        if cls is ComputeTarget:
            return super().__new__(AksCompute)
        return super().__new__(cls)

    def __init__(self, workspace: Workspace, name: str) -> None:
        if not name or not isinstance(name, str):
            raise ComputeTargetException("a compute target needs a name")
        self.workspace = workspace
        self.name = name
        self.type = self._compute_type
        self.provisioning_state = SUCCEEDED
        self.provisioning_errors: list[Any] = []
        self.location = workspace.location
        self.cluster_location = workspace.location
        self.tags: dict[str, str] = {}
        self.description = f"the Kubernetes cluster of context {workspace.context}"
        self.cluster_fqdn: str | None = None
        self.agent_count: int | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(workspace={self.workspace!r}, name={self.name}, "
            f"type={self.type}, provisioning_state={self.provisioning_state})"
        )

    @staticmethod
    def create(workspace: Workspace, name: str, provisioning_configuration: Any) -> ComputeTarget:
        warnings.warn(
            f"ComputeTarget.create({name!r}): kaci deploys into the workspace's own cluster; "
            "nothing is provisioned and the handle is that cluster",
            KaciCompatibilityWarning,
            stacklevel=2,
        )
        return AksCompute(workspace, name)

    @staticmethod
    def attach(workspace: Workspace, name: str, attach_configuration: Any) -> ComputeTarget:
        return ComputeTarget.create(workspace, name, attach_configuration)

    @staticmethod
    def list(workspace: Workspace) -> list[ComputeTarget]:
        return list(workspace.compute_targets.values())

    def get_status(self) -> str:
        return self.provisioning_state

    def wait_for_completion(
        self, show_output: bool = False, is_delete_operation: bool = False
    ) -> None:
        if show_output:
            print(f'Provisioning operation finished, operation "{SUCCEEDED}"')

    def refresh_state(self) -> None:
        return None

    def delete(self) -> None:
        raise ComputeTargetException(
            "delete: the compute target is the Kubernetes cluster kaci runs on; kaci does not "
            "delete it (delete the Webservices instead)"
        )

    def detach(self) -> None:
        raise ComputeTargetException(
            "detach: the compute target is the Kubernetes cluster kaci runs on; it cannot be "
            "detached from its own workspace"
        )

    def serialize(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "provisioningState": self.provisioning_state,
            "location": self.location,
        }


class AksCompute(ComputeTarget):
    """The cluster as Azure's AKS compute target."""

    _compute_type = "AKS"

    @staticmethod
    def provisioning_configuration(**kwargs: Any) -> ComputeTargetProvisioningConfiguration:
        return ComputeTargetProvisioningConfiguration(**kwargs)

    @staticmethod
    def attach_configuration(**kwargs: Any) -> ComputeTargetProvisioningConfiguration:
        return ComputeTargetProvisioningConfiguration(**kwargs)

    def get_credentials(self) -> Any:
        raise ComputeTargetException(
            "get_credentials: use your kubeconfig; kaci reads the workspace's context"
        )


__all__ = ["AksCompute", "ComputeTarget", "ComputeTargetProvisioningConfiguration"]
