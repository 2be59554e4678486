"""kopf's start-up gate (kaci.handlers.index_gate): linear in the objects listed, and
still releasing every waiter exactly when the set turns on or off."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from kaci.handlers import index_gate

ToggleSet = index_gate.ToggleSet

ORIGINAL = index_gate.KOPF_OWN


@pytest.fixture
def kopf_as_released() -> Iterator[None]:
    """kopf's own methods, for the comparison; the fix put back afterwards."""
    patched = {name: getattr(ToggleSet, name) for name in ORIGINAL}
    for name, method in ORIGINAL.items():
        setattr(ToggleSet, name, method)
    yield
    for name, method in patched.items():
        setattr(ToggleSet, name, method)


class Counted(ToggleSet):
    """A ToggleSet that counts how often its state is evaluated (each waiter woken
    evaluates it once)."""

    def __init__(self) -> None:
        super().__init__(all)
        self.evaluations = 0

    def is_on(self) -> bool:
        self.evaluations += 1
        return bool(super().is_on())


async def start_up(objects: int) -> tuple[int, list[bool]]:
    """kopf's listing as queueing.watcher and processing do it: a toggle per object
    made as it arrives, its worker dropping it once indexed and waiting for all, the
    loop running in between; then the kind's list ends. Returns the evaluations and,
    per worker, whether it was released only after the list had ended."""
    gate = Counted()
    listing = await gate.make_toggle(name="the kind's list")
    ended = False
    released: list[bool] = []

    async def worker(toggle: Any) -> None:
        await gate.drop_toggle(toggle)
        await gate.wait_for(True)
        released.append(ended)

    tasks = []
    for i in range(objects):
        toggle = await gate.make_toggle(name=f"object {i}")
        tasks.append(asyncio.create_task(worker(toggle)))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert not released, "a worker ran before the list ended"
    ended = True
    await gate.drop_toggle(listing)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    return gate.evaluations, released


def test_install_accepts_this_kopf() -> None:
    index_gate.check()
    index_gate.install()
    index_gate.install()  # idempotent: the handlers package installs it on import
    assert ToggleSet.drop_toggle is index_gate._drop_toggle


def test_start_up_is_linear_and_releases_everyone_at_the_end() -> None:
    index_gate.install()
    small, released = asyncio.run(start_up(200))
    assert len(released) == 200
    assert all(released)
    large, released = asyncio.run(start_up(800))
    assert len(released) == 800
    assert all(released)
    # Four times the objects, about four times the work (a few evaluations each).
    assert large <= 10 * 800
    assert large / small < 5


def test_kopfs_own_gate_is_quadratic(kopf_as_released: None) -> None:
    """What the fix removes (and proof that the counting above can see it)."""
    small, released = asyncio.run(start_up(100))
    assert all(released)
    large, _ = asyncio.run(start_up(400))
    assert large / small > 10


def test_pause_semantics_are_kept() -> None:
    """kopf's peering pauses with a ToggleSet(any): waiters for on and for off are
    released when the set turns, by a member's turn_to or a drop."""
    index_gate.install()

    async def scenario() -> list[str]:
        paused = ToggleSet(any)
        said: list[str] = []

        async def wait(state: bool) -> None:
            await paused.wait_for(state)
            said.append(f"{'on' if state else 'off'}")

        peer = await paused.make_toggle(False, name="a peer")
        on = asyncio.create_task(wait(True))
        await asyncio.sleep(0.01)
        assert not said
        await peer.turn_to(True)
        await asyncio.wait_for(on, 5)
        off = asyncio.create_task(wait(False))
        await asyncio.sleep(0.01)
        assert said == ["on"]
        await paused.drop_toggles([peer])
        await asyncio.wait_for(off, 5)
        # A new member that is already on turns the set on: its waiters are released.
        on_again = asyncio.create_task(wait(True))
        await asyncio.sleep(0.01)
        await paused.make_toggle(True, name="another peer")
        await asyncio.wait_for(on_again, 5)
        return said

    assert asyncio.run(scenario()) == ["on", "off", "on"]
