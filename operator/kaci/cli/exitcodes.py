"""Exit codes of `kaci`, stable for scripts.

| code | meaning                                                                  |
|------|--------------------------------------------------------------------------|
| 0    | success                                                                  |
| 1    | failed: the object reached a failed state, or the operation was refused  |
| 2    | usage: bad arguments, options or input files                             |
| 3    | not found: no such model, image, webservice or version                   |
| 4    | timeout: a wait ran out of time (the object may still converge)          |
| 5    | unreachable: no usable kubeconfig, API server or registry                |
| 130  | interrupted (Ctrl-C)                                                     |
"""

from __future__ import annotations

from kaci.azureml.exceptions import (
    AzureMLException,
    ClusterUnreachableException,
    ResourceNotFoundException,
    UserErrorException,
    WaitTimeoutException,
    WorkspaceException,
)

OK = 0
FAILED = 1
USAGE = 2
NOT_FOUND = 3
TIMEOUT = 4
UNREACHABLE = 5
INTERRUPTED = 130


def exit_code_for(exc: BaseException) -> int:
    """The exit code for an exception that ended a command."""
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, ResourceNotFoundException):
        return NOT_FOUND
    if isinstance(exc, WaitTimeoutException):
        return TIMEOUT
    if isinstance(exc, (ClusterUnreachableException, WorkspaceException)):
        return UNREACHABLE
    if isinstance(exc, (UserErrorException, ValueError, TypeError)):
        return USAGE
    if isinstance(exc, AzureMLException):
        return FAILED
    if isinstance(exc, OSError):
        return USAGE if isinstance(exc, (FileNotFoundError, PermissionError)) else UNREACHABLE
    return FAILED


def one_line(exc: BaseException) -> str:
    """The error as one readable line (no traceback)."""
    text = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
    return " ".join(str(text).split())
