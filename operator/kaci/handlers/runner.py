"""Runs the passes: takes a key off the queue, reads its observed state from the
indexes (on the loop, in one go), and runs its kind's reconcile in a thread.

Passes block (the API client, builds): they run in a thread pool, while the
observed state they get is a snapshot taken on kopf's loop, where the indexes
change. One pass per object at a time (the queue's promise).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kaci import api
from kaci.edges import kube, metrics
from kaci.edges.live import LiveEdges
from kaci.handlers.leader import Leadership
from kaci.handlers.prune import Indexed, ListUids, Pruner, Resource
from kaci.handlers.queue import Key, WorkQueue
from kaci.handlers.store import Index, Store
from kaci.reconcile.common import Edges, Outcome
from kaci.reconcile.image import ImageSeen, image_name_of, reconcile_image
from kaci.reconcile.model import reconcile_model
from kaci.reconcile.webservice import WebserviceSeen, reconcile_webservice
from kaci.settings import Settings

log = logging.getLogger(__name__)

INDEXES = (
    "model_objects",
    "models_by_name",
    "image_objects",
    "images_by_name",
    "images_by_model",
    "webservice_objects",
    "webservices_by_image",
    "ws_deployments",
    "ws_services",
    "ws_pods",
    "ws_endpoint_slices",
    "ws_hpas",
    "ws_pdbs",
    "ws_ingresses",
    "ws_network_policies",
)
OBJECTS = {
    api.MODEL: "model_objects",
    api.IMAGE: "image_objects",
    api.WEBSERVICE: "webservice_objects",
}


class Runner:
    def __init__(
        self,
        indexes: Mapping[str, Index],
        settings: Settings,
        leadership: Leadership,
        edges: Edges | None = None,
        resources: Mapping[Resource, Indexed] | None = None,
        list_uids: ListUids = kube.list_uids,
    ) -> None:
        self.store = Store(indexes)
        self.settings = settings
        self.edges: Edges = edges if edges is not None else LiveEdges(settings)
        self.leadership = leadership
        self.pool = ThreadPoolExecutor(settings.max_workers, thread_name_prefix="kaci-pass")
        self.queue = WorkQueue(self.run, workers=settings.max_workers)
        self.tasks: list[asyncio.Task[None]] = []
        self.looked_at: set[Key] = set()
        self.pruner = Pruner(self.store, resources or {}, list_uids, self.blocking, self.gone)

    async def blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def gone(self, body: Mapping[str, Any]) -> None:
        """An object deleted without a DELETED event: look at whom it concerns again."""
        m = body.get("metadata") or {}
        namespace, kind = str(m.get("namespace") or ""), str(body.get("kind") or "")
        if kind in OBJECTS:
            self.queue.add((kind, namespace, str(m.get("name"))), "gone (listed again)")
        elif owner := (m.get("labels") or {}).get(api.WEBSERVICE_LABEL):
            why = f"{kind}/{m.get('name')} gone (listed again)"
            self.queue.add((api.WEBSERVICE, namespace, str(owner)), why)

    def seen(self, key: Key) -> Any:
        """The observed state of a pass, from the indexes (None: the object is gone)."""
        kind, namespace, name = key
        body = self.store.one(OBJECTS[kind], (namespace, name))
        if body is None:
            return None
        if kind == api.MODEL:
            return body
        if kind == api.IMAGE:
            models = {
                str(ref["name"]): self.store.all("models_by_name", (namespace, str(ref["name"])))
                for ref in body["spec"].get("models") or []
            }
            same = [
                i
                for i in self.store.all("images_by_name", (namespace, image_name_of(body)))
                if i["metadata"]["name"] != name
            ]
            return ImageSeen(body, models, same)
        spec = body["spec"]
        images = (
            self.store.all("images_by_name", (namespace, str(spec["image"]["name"])))
            if "image" in spec
            else []
        )
        slices = self.store.all("ws_endpoint_slices", (namespace, name))
        return WebserviceSeen(
            body,
            child_model=self.store.one("model_objects", (namespace, name)),
            child_image=self.store.one("image_objects", (namespace, name)),
            images=images,
            deployment=self.store.one("ws_deployments", (namespace, name)),
            service=self.store.one("ws_services", (namespace, name)),
            pods=self.store.all("ws_pods", (namespace, name)),
            endpoint_slices=slices,
            hpa=self.store.one("ws_hpas", (namespace, name)),
            pdb=self.store.one("ws_pdbs", (namespace, name)),
            ingress=self.store.one("ws_ingresses", (namespace, name)),
            network_policy=self.store.one("ws_network_policies", (namespace, name)),
        )

    async def run(self, key: Key) -> Outcome:
        leading = await self.leadership.leading()
        if leading is None:
            return Outcome.WAIT
        if not leading:
            # Paused in favour of another replica: it lists and handles everything.
            # This one lists everything again when it leads again (kopf re-watches).
            self.queue.clear()
            return Outcome.DONE
        seen = self.seen(key)
        if seen is not None and being_deleted(seen):
            # Its children go with it (owner references); applying them again would
            # hold up a foreground deletion for ever.
            return Outcome.DONE
        if seen is None:
            self.queue.forget(key)
            self.looked_at.discard(key)
            return Outcome.DONE
        with metrics.timed_pass(key[0]) as said:
            outcome = await self.reconcile(key[0], seen)
            said(outcome.value)
        if key not in self.looked_at:
            # Once per object and process: after a restart, says every object was
            # looked at again (at INFO); every pass is at DEBUG.
            self.looked_at.add(key)
            log.info("first pass over %s %s/%s: %s", *key, outcome.value)
        else:
            log.debug("pass over %s %s/%s: %s", *key, outcome.value)
        return outcome

    async def reconcile(self, kind: str, seen: Any) -> Outcome:
        loop = asyncio.get_running_loop()
        if kind == api.MODEL:
            return await loop.run_in_executor(self.pool, reconcile_model, seen, self.edges)
        if kind == api.IMAGE:
            return await loop.run_in_executor(self.pool, reconcile_image, seen, self.edges)
        return await loop.run_in_executor(self.pool, reconcile_webservice, seen, self.edges)

    def levels(self) -> metrics.Levels:
        """The level gauges' values (on the loop, where the indexes change)."""
        states = []
        for kind, index in OBJECTS.items():
            for key in self.store.keys(index):
                body = self.store.one(index, key) or {}
                states.append((kind, str((body.get("status") or {}).get("state") or "Unknown")))
        return metrics.Levels(states, queued=len(self.queue), waiting=self.queue.waiting())

    def levels_from_any_thread(self, loop: asyncio.AbstractEventLoop) -> metrics.Levels:
        """For the metrics server's thread: the indexes are read on kopf's loop only."""

        async def read() -> metrics.Levels:
            return self.levels()

        return asyncio.run_coroutine_threadsafe(read(), loop).result(timeout=10)

    def known_keys(self) -> Iterable[Key]:
        for kind, index in OBJECTS.items():
            for namespace, name in self.store.keys(index):
                yield (kind, namespace, name)


def being_deleted(seen: Any) -> bool:
    body = seen if isinstance(seen, dict) else seen.body
    return bool((body.get("metadata") or {}).get("deletionTimestamp"))


_runner: Runner | None = None
_pending: list[tuple[Key, str, float]] = []


def wake(key: Key, why: str, *, after: float = 0.0, gone: bool = False) -> None:
    """Look at `key` again (now, or in `after` seconds); `gone`: it was deleted."""
    if _runner is None:
        _pending.append((key, why, after))  # before startup finished: kept for it
        return
    if gone:
        _runner.queue.forget(key)
        return
    _runner.queue.add(key, why, after)


def start(
    indexes: Mapping[str, Index], settings: Settings, resources: Mapping[Resource, Indexed]
) -> None:
    global _runner
    _runner = Runner(indexes, settings, Leadership.configured(), resources=resources)
    _runner.queue.start()
    loop, runner = asyncio.get_running_loop(), _runner
    metrics.observe_levels(lambda: runner.levels_from_any_thread(loop))
    _runner.tasks.append(asyncio.create_task(resync_forever(settings.resync_s), name="kaci resync"))
    for key, why, after in _pending:
        _runner.queue.add(key, why, after)
    _pending.clear()
    log.info("kaci: %d workers, resync every %d s", settings.max_workers, settings.resync_s)


async def stop() -> None:
    global _runner
    if _runner is None:
        return
    for t in _runner.tasks:
        t.cancel()
    metrics.observe_levels(None)
    await _runner.queue.stop()
    _runner.pool.shutdown(wait=False, cancel_futures=True)
    _runner = None


def known_keys() -> list[Key]:
    return list(_runner.known_keys()) if _runner is not None else []


def saw(resource: Resource, event_type: str | None) -> None:
    """A watch event of `resource` (handlers.prune: a listing anew is checked)."""
    if _runner is not None:
        _runner.pruner.saw(resource, event_type)


async def resync_forever(period_s: float) -> None:
    """Every object is looked at again once per period, spread over it (no burst),
    after its kind is listed again (deletions a watch missed): the safety net under
    every wake-up."""
    while True:
        await asyncio.sleep(period_s)
        if _runner is not None:
            await _runner.pruner.prune_all()
        for key in known_keys():
            wake(key, "resync", after=random.uniform(0, period_s))  # noqa: S311
