"""The exceptions azureml.exceptions has, plus the few kaci needs to tell apart.

The CLI maps them to exit codes (see kaci.cli.exitcodes), so each failure kind
is its own class: not found, timeout, failed state, cluster unreachable.
"""

from __future__ import annotations

from typing import Any


class AzureMLException(Exception):  # noqa: N818 (Azure's name)
    """Base of every SDK error; `message` holds the one-line reason, like Azure's."""

    def __init__(self, exception_message: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(exception_message)
        self.message = exception_message


class UserErrorException(AzureMLException):
    """A bad argument or configuration on the caller's side."""


class WorkspaceException(AzureMLException):
    """The workspace (kubeconfig context and namespace) cannot be used."""


class ClusterUnreachableException(WorkspaceException):
    """The Kubernetes API server did not answer or refused our credentials."""


class WebserviceException(AzureMLException):
    """Azure's catch-all for model, image and service operations."""

    def __init__(self, exception_message: str, status_code: int | None = None, **kwargs: Any):
        super().__init__(exception_message)
        self.status_code = status_code


class ResourceNotFoundException(WebserviceException):
    """The Model, Image or Webservice (or a version of it) does not exist."""


class ModelNotFoundException(ResourceNotFoundException):
    """No such model or model version (Azure's name)."""


class WaitTimeoutException(WebserviceException):
    """A wait for a terminal state ran out of time; the object may still converge."""


class FailedStateException(WebserviceException):
    """The object reached a failed terminal state (Image Failed, Webservice Failed...)."""


class KaciCompatibilityWarning(UserWarning):
    """An Azure parameter that has no effect on Kubernetes was given."""


class ComputeTargetException(AzureMLException):
    """Azure's ComputeTargetException: a compute target that does not exist or cannot be made."""
