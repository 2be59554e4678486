"""Which status change deserves an Event (pure): so `kubectl describe` tells the story.

A change of an object's story is a change of its Azure state (Image, Webservice), or
of its Ready condition's status or reason (every kind; a Model has no state). A
repeat of the same story (a retry that fails the same way, a resync) is no Event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kaci import api
from kaci.status import conditions

# States a user should look at: Warning Events, as kubectl's own (BackOff, Failed...).
WARNING_STATES = frozenset({api.FAILED, api.UNHEALTHY, api.UNSCHEDULABLE})


@dataclass(frozen=True)
class Event:
    warning: bool
    reason: str
    message: str


def story(status: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(state, Ready's status, Ready's reason): what an Event tells."""
    ready = conditions.get(status.get("conditions"), api.READY) or {}
    state = status.get("state")
    return (
        str(state) if state else None,
        str(ready["status"]) if ready.get("status") else None,
        str(ready["reason"]) if ready.get("reason") else None,
    )


def change_event(old: Mapping[str, Any], new: Mapping[str, Any]) -> Event | None:
    """The Event for going from status `old` to `new`, or None if the story is the same."""
    state, ready, reason = story(new)
    if (state, ready, reason) == story(old) or (state is None and ready is None):
        return None
    message = str((conditions.get(new.get("conditions"), api.READY) or {}).get("message") or "")
    warning = state in WARNING_STATES if state is not None else ready == "False"
    return Event(
        warning=warning,
        reason=reason or state or "StatusChanged",
        # The reason column names the condition; the message is Ready's own (what to do).
        message=message or str(state or ""),
    )


def became_ready_since(body: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """When the wait that `new` ends began, if `new` turns the object Ready: the time
    it last stopped being Ready, or its creation (RFC 3339); None if it does not."""
    old = body.get("status") or {}
    if not conditions.is_true(new.get("conditions"), api.READY):
        return None
    before = conditions.get(old.get("conditions"), api.READY)
    if before is not None and before.get("status") == "True":
        return None
    if before is not None and before.get("lastTransitionTime"):
        return str(before["lastTransitionTime"])
    created = (body.get("metadata") or {}).get("creationTimestamp")
    return str(created) if created else None
