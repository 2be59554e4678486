"""Objects gone without a word: deletions no watch told, found by listing again.

When a watch expires (410 Gone: the API server no longer has the events since its
resourceVersion, as in a mass deletion), kopf lists the resource anew and goes on
from there. Objects deleted in between are in no list and get no DELETED event, so
kopf's indexes keep them for ever: a pass would re-create a deleted Webservice's
Deployment, which the garbage collector deletes again, in a loop; or trust a
Deployment that is no longer there.

So a resource's objects are listed again (uids only, a consistent read) when kopf
lists it anew (a listed object after watch events), and at every resync; what the
indexes held before the list and the list lacks is gone. The Store then hides those
uids, and the objects they concern are looked at again (a gone kaci object is
forgotten; a gone child's Webservice applies it again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kaci.handlers.store import Obj, Store

log = logging.getLogger(__name__)

Resource = tuple[str, str, str]  # (group, version, plural)
# list_uids(group, version, plural, namespace, label selector) -> uids, blocking
ListUids = Callable[[str, str, str, str, str | None], set[str]]

# A listing comes as a burst of events: the check waits for it to pass.
AFTER_RELIST_S = 5.0


@dataclass(frozen=True)
class Indexed:
    """Where a resource's objects are kept, and which of them the watch selects."""

    indexes: tuple[str, ...]
    selector: str | None = None


@dataclass
class Pruner:
    store: Store
    resources: Mapping[Resource, Indexed]
    list_uids: ListUids
    blocking: Callable[..., Awaitable[Any]]  # runs a blocking call off the loop
    on_gone: Callable[[Obj], None]
    watched: set[Resource] = field(default_factory=set)
    scheduled: dict[Resource, asyncio.TimerHandle] = field(default_factory=dict)
    tombstones: dict[Resource, set[str]] = field(default_factory=dict)
    tasks: set[asyncio.Task[int]] = field(default_factory=set)

    def saw(self, resource: Resource, event_type: str | None) -> None:
        """A watch event: a listed object (type None) after watch events means kopf is
        listing the resource anew, and what was deleted meanwhile is never told."""
        if resource not in self.resources:
            return
        if event_type is not None:
            self.watched.add(resource)
        elif resource in self.watched:
            self.watched.discard(resource)
            self.soon(resource, AFTER_RELIST_S)

    def soon(self, resource: Resource, after: float) -> None:
        if resource in self.scheduled:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            del self.scheduled[resource]
            task = loop.create_task(self.prune(resource))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        self.scheduled[resource] = loop.call_later(after, fire)

    async def prune(self, resource: Resource) -> int:
        """List the resource again; the objects it lacks are gone. How many were new."""
        spec = self.resources[resource]
        before: dict[str, Obj] = {}
        for index in spec.indexes:
            before.update(self.store.uids(index))
        namespaces = sorted(
            {str((b.get("metadata") or {}).get("namespace") or "") for b in before.values()}
        )
        listed: set[str] = set()
        try:
            for ns in namespaces:
                listed |= await self.blocking(self.list_uids, *resource, ns, spec.selector)
        except Exception as e:  # the API server away: the next time, then
            log.warning("could not list %s/%s %s again: %s", *resource, e)
            return 0
        known = self.tombstones.get(resource, set())
        gone = {u: b for u, b in before.items() if u not in listed}
        fresh = [b for u, b in gone.items() if u not in known]
        # The uids the indexes still hold and the API server does not: kopf keeps them.
        self.tombstones[resource] = set(gone)
        self.store.gone = set().union(*self.tombstones.values())
        if fresh:
            log.warning(
                "%d %s gone while their watch was down (no DELETED event): forgotten",
                len(fresh),
                resource[2],
            )
        for body in fresh:
            self.on_gone(body)
        return len(fresh)

    async def prune_all(self) -> None:
        for resource in self.resources:
            await self.prune(resource)
