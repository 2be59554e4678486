"""The work queue: which object to look at next, and when (asyncio, no I/O).

The controller pattern of client-go's workqueue, on kopf's event loop:
- a key (kind, namespace, name) is queued at most once; adding it again only
  brings its time forward;
- a key is never worked on twice at once: one added while its pass runs is run
  again right after (so a change during a pass is never lost);
- a pass that must wait (a dependency, the infrastructure) is looked at again on a
  bounded backoff (`backoff_s`), which a success resets;
- the delay of a wake-up is 0: pokes from dependencies only make things sooner.

Nothing here knows what a pass does: `run(key)` returns how it went.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kaci.reconcile.common import Outcome

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # (kind, namespace, name)
# A pass that is nearly there on a clock (Outcome.SOON) is run again this soon.
SOON_S = 0.5


def backoff_s(failures: int, first: float = 2.0, cap: float = 60.0) -> float:
    """2 s doubling to 60 s: the delay before the `failures`-th look again (pure)."""
    if failures <= 0:
        return 0.0
    return float(min(cap, first * (2 ** min(failures - 1, 30))))


@dataclass
class WorkQueue:
    run: Callable[[Key], Awaitable[Outcome]]
    workers: int = 8
    clock: Callable[[], float] = time.monotonic
    _heap: list[tuple[float, int, Key]] = field(default_factory=list)
    _due: dict[Key, float] = field(default_factory=dict)
    _why: dict[Key, str] = field(default_factory=dict)
    _active: set[Key] = field(default_factory=set)
    _dirty: set[Key] = field(default_factory=set)
    _failures: dict[Key, int] = field(default_factory=dict)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    passes: int = 0

    def add(self, key: Key, why: str = "", after: float = 0.0) -> None:
        """Queue `key` to be looked at in `after` seconds (sooner if already due sooner)."""
        if key in self._active and after <= 0:
            self._dirty.add(key)
            self._why[key] = why
            return
        due = self.clock() + max(after, 0.0)
        if key in self._due and self._due[key] <= due:
            return
        self._due[key] = due
        self._why[key] = why
        heapq.heappush(self._heap, (due, next(self._seq), key))
        self._wake.set()

    def forget(self, key: Key) -> None:
        """The object is gone: drop its queue entry and backoff."""
        self._due.pop(key, None)
        self._failures.pop(key, None)
        self._dirty.discard(key)

    def clear(self) -> None:
        """Drop everything queued (this operator stopped leading): the next leader, or
        this one when it leads again, lists every object anew."""
        self._heap.clear()
        self._due.clear()
        self._dirty.clear()
        self._failures.clear()

    def __len__(self) -> int:
        return len(self._due)

    def waiting(self) -> int:
        """Objects with a backoff running (looked at again later)."""
        return sum(1 for n in self._failures.values() if n > 0)

    def _pop_due(self) -> tuple[Key | None, float | None]:
        """The next key that is due now, or (None, seconds until the next one)."""
        while self._heap:
            due, _, key = self._heap[0]
            if self._due.get(key) != due or key in self._active:
                heapq.heappop(self._heap)  # superseded by an earlier add, or running
                if key in self._active and self._due.get(key) == due:
                    del self._due[key]
                    self._dirty.add(key)
                continue
            now = self.clock()
            if due > now:
                return None, due - now
            heapq.heappop(self._heap)
            del self._due[key]
            return key, None
        return None, None

    async def _worker(self) -> None:
        while True:
            key, wait = self._pop_due()
            if key is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                continue
            self._active.add(key)
            why = self._why.pop(key, "")
            try:
                outcome = await self.run(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in a pass must not stop the queue: retry later
                log.exception("pass over %s/%s/%s failed (%s)", *key, why or "no reason")
                outcome = Outcome.WAIT
            finally:
                self._active.discard(key)
                self.passes += 1
            self._settle(key, outcome)

    def _settle(self, key: Key, outcome: Outcome) -> None:
        if outcome is Outcome.WAIT:
            self._failures[key] = self._failures.get(key, 0) + 1
        else:
            self._failures.pop(key, None)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key, self._why.get(key, "changed during its pass"))
        elif outcome is Outcome.WAIT:
            self.add(key, "backoff", after=backoff_s(self._failures[key]))
        elif outcome is Outcome.SOON:
            self.add(key, "soon", after=SOON_S)

    def start(self) -> None:
        for i in range(self.workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"kaci worker {i}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
