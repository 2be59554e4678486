"""kopf's start-up gate, made linear in the number of objects.

Before kopf calls any handler it fills every index: each listed object of an
indexed kind holds a toggle of one set (`operator_indexed`), drops it once indexed,
and then waits on the set's condition until every toggle is gone. kopf 1.45 wakes
every waiting object on every toggle made and dropped (`notify_all` in
`ToggleSet.make_toggle`, `drop_toggle` and `drop_toggles`), although whether the set
is "on" changes only at the last one. With
N objects listed one page at a time, that is N²/2 wake-ups: at a restart over 3,002
Webservices (15,000 objects with their children) the operator spent 683 CPU s in it
before its first pass (bench/README "Scale on simulated nodes").

A waiter's predicate depends only on whether the set is on, so notifying only when
that changes wakes exactly who would have found a change, once. `install()` puts
that behaviour in kopf's class; `check()` fails loudly when a kopf upgrade changes
what it replaces (tests/unit/test_op_index_gate.py runs it).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from kopf._cogs.aiokits import aiotoggles

ToggleSet = aiotoggles.ToggleSet
Toggle = aiotoggles.Toggle

# What kopf's own methods look like (the names they use): install() refuses to
# replace methods it does not recognise.
_EXPECTED = {
    "make_toggle": ("self._toggles.add(toggle)", "self._condition.notify_all()"),
    "drop_toggle": ("self._toggles.discard(toggle)", "self._condition.notify_all()"),
    "drop_toggles": ("self._toggles.difference_update(toggles)", "self._condition.notify_all()"),
}

# kopf's methods as released, before install() (the tests compare the two).
KOPF_OWN = {name: getattr(ToggleSet, name) for name in _EXPECTED}


async def _make_toggle(self: Any, __val: bool = False, *, name: str | None = None) -> Toggle:
    toggle = Toggle(__val, name=name, condition=self._condition)
    async with self._condition:
        was_on = self.is_on()
        self._toggles.add(toggle)
        if self.is_on() != was_on:
            self._condition.notify_all()
    return toggle


async def _drop_toggle(self: Any, toggle: Toggle) -> None:
    async with self._condition:
        was_on = self.is_on()
        self._toggles.discard(toggle)
        if self.is_on() != was_on:
            self._condition.notify_all()


async def _drop_toggles(self: Any, toggles: Iterable[Toggle]) -> None:
    async with self._condition:
        was_on = self.is_on()
        self._toggles.difference_update(toggles)
        if self.is_on() != was_on:
            self._condition.notify_all()


def check() -> None:
    """Raise if kopf's ToggleSet is not the one this module was written for."""
    for name, needles in _EXPECTED.items():
        method = KOPF_OWN.get(name)
        if method is None:
            raise RuntimeError(f"kopf's ToggleSet has no {name}: review kaci.handlers.index_gate")
        source = inspect.getsource(method)
        missing = [n for n in needles if n not in source]
        if missing:
            raise RuntimeError(
                f"kopf's ToggleSet.{name} changed ({missing} not found): "
                "review kaci.handlers.index_gate"
            )
    for attr in ("_condition", "_toggles", "is_on"):
        if not hasattr(ToggleSet(all), attr):
            raise RuntimeError(f"kopf's ToggleSet has no {attr}: review kaci.handlers.index_gate")


def install() -> None:
    """Make kopf's ToggleSet notify only when it turns on or off (idempotent)."""
    check()
    ToggleSet.make_toggle = _make_toggle  # type: ignore[method-assign]
    ToggleSet.drop_toggle = _drop_toggle  # type: ignore[method-assign]
    ToggleSet.drop_toggles = _drop_toggles  # type: ignore[method-assign]
