"""What every kind's pass shares: the side effects it may ask for, and the outcome.

A pass reads its observed state (handed in, from the watches), computes what
should be with pure functions, asks `Edges` for the difference, and writes status
once at the end. `Edges` is the one door to the outside; tests hand in a recording
one and check the steps from a given observed state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, Protocol

from kaci.errors import KaciError
from kaci.settings import Settings
from kaci.status.conditions import needs_patch
from kaci.status.events import became_ready_since, change_event

Obj = dict[str, Any]


class Outcome(Enum):
    """How a pass went, which decides when the object is looked at again."""

    DONE = "done"  # converged, or waiting only on its own children's events + resync
    SOON = "soon"  # nearly there, on a clock (a route being programmed): in a moment
    WAIT = "wait"  # look again after a backoff (a dependency, the infrastructure)
    FAILED = "failed"  # the user must fix it: no retry until it changes (resync aside)


class Edges(Protocol):
    """The side effects a pass may cause (kaci.edges.live implements them)."""

    settings: Settings

    def now(self) -> str: ...

    def epoch(self) -> float: ...

    def patch_status(self, plural: str, namespace: str, name: str, status: Obj) -> None: ...

    def apply(self, manifest: Obj) -> Obj: ...

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None: ...

    def node_address(self) -> str | None: ...

    def event(self, body: Mapping[str, Any], warning: bool, reason: str, message: str) -> None: ...

    def read_config_map(self, namespace: str, name: str) -> dict[str, str] | None: ...

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None: ...

    def fetch_model(
        self, namespace: str, source: Mapping[str, Any], owner: str
    ) -> dict[str, bytes]: ...

    def store_model(self, files: Mapping[str, bytes], ref: str) -> tuple[str, bool]: ...

    def base_digest(self, ref: str) -> str | None: ...

    def build(
        self,
        context: Mapping[str, bytes],
        ref: str,
        on_log: Callable[[list[str], str], None],
        before_build: Callable[[], None],
        compression: str | None = None,
    ) -> tuple[str, bool]: ...

    def pod_log(self, namespace: str, pod: str, previous: bool) -> str: ...

    def became_ready(self, kind: str, since: str) -> None:
        """An object of `kind` turned Ready; its wait began at `since` (RFC 3339)."""


def meta(body: Mapping[str, Any]) -> tuple[str, str, int]:
    """(namespace, name, generation) of an object."""
    m = body.get("metadata") or {}
    return str(m.get("namespace") or ""), str(m["name"]), int(m.get("generation") or 1)


def write_status(edges: Edges, plural: str, body: Mapping[str, Any], new: Obj) -> bool:
    """Patch status once, and only when a reader would see a change; tell a change of
    state in an Event."""
    namespace, name, _ = meta(body)
    if not needs_patch(body.get("status") or {}, new):
        return False
    edges.patch_status(plural, namespace, name, new)
    tell(edges, body, new)
    return True


def tell(edges: Edges, body: Mapping[str, Any], new: Obj) -> None:
    """An Event when `new` changes the object's story (state, or Ready's status/reason)
    from what the pass saw; posted after the status it tells of is written."""
    event = change_event(body.get("status") or {}, new)
    if event is not None:
        edges.event(body, event.warning, event.reason, event.message)
    since = became_ready_since(body, new)
    if since is not None:
        edges.became_ready(str(body.get("kind") or "?"), since)


def short(trouble: KaciError) -> str:
    return trouble.message[:1000]
