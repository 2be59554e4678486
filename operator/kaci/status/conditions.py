"""Status conditions (pure): build them, keep transition times, derive Ready."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Condition = dict[str, Any]


def condition(ctype: str, ok: bool | None, reason: str, message: str, generation: int) -> Condition:
    status = "Unknown" if ok is None else ("True" if ok else "False")
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def merge(
    old: Iterable[Mapping[str, Any]] | None, new: Iterable[Condition], now: str
) -> list[Condition]:
    """New conditions replace old ones of the same type; lastTransitionTime moves only
    when the status changes (so watchers can tell how long a state has held)."""
    previous = {c.get("type"): c for c in (old or [])}
    merged: dict[str, Condition] = {str(t): dict(c) for t, c in previous.items() if t is not None}
    for c in new:
        before = previous.get(c["type"])
        out = dict(c)
        if (
            before is not None
            and before.get("status") == c["status"]
            and before.get("lastTransitionTime")
        ):
            out["lastTransitionTime"] = before["lastTransitionTime"]
        else:
            out["lastTransitionTime"] = now
        merged[c["type"]] = out
    return sorted(merged.values(), key=lambda c: (c["type"] != "Ready", c["type"]))


def ready(parts: Iterable[Condition], generation: int) -> Condition:
    """Ready is True only when every part is True; otherwise it carries the first
    part that is not, so `kubectl wait` users see why."""
    for c in parts:
        if c["status"] != "True":
            return condition("Ready", False, c["reason"], c["message"], generation)
    return condition("Ready", True, "Ready", "all parts are ready", generation)


def get(conditions: Iterable[Mapping[str, Any]] | None, ctype: str) -> Mapping[str, Any] | None:
    for c in conditions or []:
        if c.get("type") == ctype:
            return c
    return None


def is_true(conditions: Iterable[Mapping[str, Any]] | None, ctype: str) -> bool:
    c = get(conditions, ctype)
    return c is not None and c.get("status") == "True"


def ready_only(
    old_status: Mapping[str, Any],
    generation: int,
    ok: bool,
    reason: str,
    message: str,
    now: str,
    **fields: Any,
) -> dict[str, Any]:
    """A status whose one condition is Ready (Model, Image), with `fields` beside it."""
    cond = condition("Ready", ok, reason, message, generation)
    return {
        **fields,
        "observedGeneration": generation,
        "conditions": merge(old_status.get("conditions"), [cond], now),
    }


def _essence(conds: Any) -> list[tuple[Any, ...]]:
    return sorted(
        (
            c.get("type"),
            c.get("status"),
            c.get("reason"),
            c.get("message"),
            c.get("observedGeneration"),
        )
        for c in conds or []
    )


def needs_patch(old_status: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Would merge-patching `new` into `old_status` change anything a reader sees?
    Transition times alone do not count (merge keeps them for unchanged conditions)."""
    for key, value in new.items():
        if key == "conditions":
            if _essence(old_status.get(key)) != _essence(value):
                return True
        elif old_status.get(key) != value:
            return True
    return False
