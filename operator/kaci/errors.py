"""Three kinds of trouble, and what a reconcile pass does about each (stdlib only).

- `UserError`: the user must fix it (a bad spec, score.py without run(), a model file
  that escapes its folder, a failed build step). The object turns Failed with the
  reason and is not retried until it changes (kopf's PermanentError); the periodic
  resync still looks at it now and then.
- `Waiting`: waiting on a dependency (a Model with no stored version yet, a missing
  ConfigMap, an Image still building). The pass ends and the object is looked at
  again on a bounded backoff until it converges; the dependency's change only makes
  that sooner (kopf's TemporaryError with a delay).
- `InfraDown`: the infrastructure is down (the builder, the registry, the API
  server). Retried on the same backoff, and status says so.

Every one carries a `reason` (CamelCase, the condition's reason) and a message in
words a user can act on.
"""

from __future__ import annotations


class KaciError(Exception):
    """Something a pass cannot get past now."""

    default_reason = "Error"

    def __init__(self, message: str, reason: str | None = None, log_tail: str = "") -> None:
        super().__init__(message)
        self.reason = reason or self.default_reason
        # The last lines of a build's log, when the trouble came from a build.
        self.log_tail = log_tail

    @property
    def message(self) -> str:
        return str(self)


class UserError(KaciError):
    """The user must fix the object (or what it names): Failed, not retried."""

    default_reason = "BadSpec"


class Waiting(KaciError):  # noqa: N818  (a state, not a fault)
    """A dependency is not there or not ready yet: look again after a backoff.

    `failed`: show the object as Failed meanwhile (a dependency the user must create,
    such as a missing ConfigMap), rather than NotStarted (one on its way)."""

    default_reason = "Waiting"

    def __init__(
        self, message: str, reason: str | None = None, *, failed: bool = False, log_tail: str = ""
    ) -> None:
        super().__init__(message, reason, log_tail)
        self.failed = failed


class InfraDown(KaciError):  # noqa: N818  (a state, not a fault)
    """The builder, the registry or the API server cannot be reached: retry."""

    default_reason = "InfrastructureUnavailable"
