"""Races between Models and Images, replayed against the real queue, wiring and passes.

An in-memory API server stands in for Kubernetes: every write to it is delivered
as a watch event to kaci's own index functions and event handlers (handlers.wiring),
which wake objects through the real work queue (handlers.queue) and runner
(handlers.runner), whose passes are the real reconcile functions. Only the outside
(the registry, the builder) is simulated, with gates a test opens in the order it
wants. The cluster tier proves the same on a real cluster.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import random
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import pytest
from kaci import api
from kaci.handlers import leader, runner, wiring
from kaci.handlers.runner import INDEXES, Runner
from kaci.reconcile.common import Outcome
from kaci.settings import Settings
from kopf._cogs.structs.references import Resource

NS = "ns"
SCORE = "def init():\n    pass\n\ndef run(raw):\n    return raw\n"
Key = tuple[str, str]  # (kind, name)

INDEXERS: dict[str, tuple[str, Callable[..., Any]]] = {
    "model_objects": (api.MODEL, wiring.model_objects),
    "models_by_name": (api.MODEL, wiring.models_by_name),
    "image_objects": (api.IMAGE, wiring.image_objects),
    "images_by_name": (api.IMAGE, wiring.images_by_name),
    "images_by_model": (api.IMAGE, wiring.images_by_model),
    "webservice_objects": (api.WEBSERVICE, wiring.webservice_objects),
    "webservices_by_image": (api.WEBSERVICE, wiring.webservices_by_image),
}
HANDLERS: dict[str, list[Callable[..., Any]]] = {
    api.MODEL: [wiring.model_changed, wiring.model_dependents],
    api.IMAGE: [wiring.image_changed, wiring.image_dependents],
    api.WEBSERVICE: [wiring.webservice_changed],
}

RESOURCES = {
    kind: Resource(group=api.GROUP, version=api.VERSION, plural=plural)
    for kind, plural in (
        (api.MODEL, api.MODELS),
        (api.IMAGE, api.IMAGES),
        (api.WEBSERVICE, api.WEBSERVICES),
    )
}


def finished(step: Coroutine[Any, Any, Any]) -> Any:
    """An index function's value: it runs on kopf's loop and never awaits, so its
    coroutine is done on its first step."""
    try:
        step.send(None)
    except StopIteration as done:
        return done.value
    step.close()
    raise AssertionError("an index function awaited")


class FakeAPI:
    """Objects, resourceVersions, merge-patched status, watch events to kaci."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.objects: dict[Key, dict[str, Any]] = {}
        self.rv = itertools.count(1)
        self.lock = threading.Lock()
        self.indexes: dict[str, dict[Any, list[Any]]] = {name: {} for name in INDEXES}
        self.status_writes = 0

    def _reindex(self) -> None:
        for name, (kind, fn) in INDEXERS.items():
            idx: dict[Any, list[Any]] = {}
            for (k, _), body in self.objects.items():
                if k != kind:
                    continue
                m = body["metadata"]
                out = finished(
                    fn(
                        namespace=NS,
                        name=m["name"],
                        body=body,
                        spec=body.get("spec") or {},
                        labels=m.get("labels") or {},
                    )
                )
                for key, value in out.items():
                    idx.setdefault(key, []).append(value)
            self.indexes[name].clear()
            self.indexes[name].update(idx)

    def _event(self, kind: str, body: dict[str, Any], type_: str) -> None:
        frozen = copy.deepcopy(body)

        def deliver() -> None:
            with self.lock:
                self._reindex()
            for handler in HANDLERS[kind]:
                coro = handler(
                    body=frozen,
                    name=frozen["metadata"]["name"],
                    namespace=NS,
                    type=type_,
                    images_by_model=self.indexes["images_by_model"],
                    webservices_by_image=self.indexes["webservices_by_image"],
                    resource=RESOURCES[kind],  # as kopf passes it
                )
                self.loop.create_task(coro)

        self.loop.call_soon_threadsafe(deliver)

    def create(self, kind: str, name: str, spec: dict[str, Any], **meta: Any) -> None:
        with self.lock:
            body = {
                "apiVersion": api.API_VERSION,
                "kind": kind,
                "metadata": {
                    "name": name,
                    "namespace": NS,
                    "uid": f"uid-{name}",
                    "generation": 1,
                    "resourceVersion": str(next(self.rv)),
                    **meta,
                },
                "spec": spec,
            }
            self.objects[(kind, name)] = body
        self._event(kind, body, "ADDED")

    def patch_status(self, kind: str, name: str, status: dict[str, Any]) -> None:
        with self.lock:
            body = self.objects.get((kind, name))
            if body is None:
                return
            body.setdefault("status", {}).update(copy.deepcopy(status))
            body["metadata"]["resourceVersion"] = str(next(self.rv))
            self.status_writes += 1
        self._event(kind, body, "MODIFIED")

    def get(self, kind: str, name: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.objects[(kind, name)])


KINDS = {api.MODELS: api.MODEL, api.IMAGES: api.IMAGE, api.WEBSERVICES: api.WEBSERVICE}


class SimEdges:
    """The outside world: stores and builds finish when their gate opens."""

    def __init__(self, fake: FakeAPI) -> None:
        self.fake = fake
        self.settings = Settings(registry="reg", default_base_image="base")
        self.gates: dict[str, threading.Event] = {}
        self.builds: list[str] = []
        self.readied: list[tuple[str, str]] = []

    def gate(self, what: str) -> threading.Event:
        return self.gates.setdefault(what, threading.Event())

    def now(self) -> str:
        return "2026-12-01T00:00:00Z"

    def epoch(self) -> float:
        return 1_000_000.0

    def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.fake.patch_status(KINDS[plural], name, status)

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("no applies in these scenarios")

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        raise AssertionError("no deletes in these scenarios")

    def node_address(self) -> str | None:
        return None

    def event(self, body: Mapping[str, Any], warning: bool, reason: str, message: str) -> None:
        pass

    def read_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        return None

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        return None

    def fetch_model(
        self, namespace: str, source: Mapping[str, Any], owner: str
    ) -> dict[str, bytes]:
        return {"model.pkl": str(source["configMap"]["name"]).encode()}

    def store_model(self, files: Mapping[str, bytes], ref: str) -> tuple[str, bool]:
        owner = files["model.pkl"].decode()
        assert self.gate(f"store:{owner}").wait(10), f"store of {owner} never released"
        return "sha256:stored", True

    def base_digest(self, ref: str) -> str | None:
        return "sha256:base"

    def build(
        self,
        context: Mapping[str, bytes],
        ref: str,
        on_log: Any,
        before_build: Any,
        compression: str | None = None,
    ) -> tuple[str, bool]:
        before_build()
        self.builds.append(ref)
        return "sha256:" + ref.rsplit(":", 1)[-1], True

    def pod_log(self, namespace: str, pod: str, previous: bool) -> str:
        return ""

    def became_ready(self, kind: str, since: str) -> None:
        self.readied.append((kind, since))


def model_spec(model_name: str, source: str) -> dict[str, Any]:
    return {"modelName": model_name, "source": {"configMap": {"name": source}}}


def image_spec(*models: str) -> dict[str, Any]:
    return {
        "models": [{"name": m} for m in models],
        "executionScript": {"inline": SCORE},
        "runtime": "python",
    }


def ws_owner(name: str) -> list[dict[str, Any]]:
    return [
        {"apiVersion": api.API_VERSION, "kind": "Webservice", "name": name, "uid": f"ws-{name}"}
    ]


class Sim:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.fake = FakeAPI(loop)
        self.edges = SimEdges(self.fake)
        settings = Settings(max_workers=4, resync_s=3600)
        self.runner = Runner(self.fake.indexes, settings, leader.Leadership(None), self.edges)
        runner._runner = self.runner
        wiring._last_seen.clear()
        self.runner.queue.start()

    async def until(self, ok: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not ok():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"did not converge: {self.fake.objects}")
            await asyncio.sleep(0.02)

    def image_done(self, name: str) -> bool:
        st = self.fake.get(api.IMAGE, name).get("status") or {}
        return st.get("state") == api.SUCCEEDED

    async def close(self) -> None:
        await self.runner.queue.stop()
        self.runner.pool.shutdown(wait=True, cancel_futures=True)
        runner._runner = None


def run_sim(scenario: Callable[[Sim], Any]) -> None:
    async def main() -> None:
        sim = Sim(asyncio.get_running_loop())
        try:
            await scenario(sim)
        finally:
            await sim.close()

    asyncio.run(main())


def test_the_demo_sequence_two_models_share_a_name_and_the_image_still_builds() -> None:
    """The lost wake-up seen in `make demo`: the Webservice's own Model stores first,
    the Image (owned by another Webservice) takes the registered Model, which is not
    stored yet; when it is, the Image must be looked at again."""

    async def scenario(sim: Sim) -> None:
        sim.fake.create(
            api.MODEL,
            "aci-mnist-1",
            model_spec("sklearn_mnist", "files-1"),
            ownerReferences=ws_owner("aci-mnist-1"),
        )
        sim.fake.create(api.MODEL, "sklearn-mnist", model_spec("sklearn_mnist", "registered"))
        sim.fake.create(
            api.IMAGE,
            "aci-mnist-2",
            image_spec("sklearn_mnist"),
            ownerReferences=ws_owner("aci-mnist-2"),
        )
        sim.edges.gate("store:files-1").set()  # the Webservice's own Model stores first
        await sim.until(
            lambda: (sim.fake.get(api.MODEL, "aci-mnist-1").get("status") or {}).get("version") == 1
        )
        await asyncio.sleep(0.2)
        st = sim.fake.get(api.IMAGE, "aci-mnist-2").get("status") or {}
        assert st.get("state") == api.NOT_STARTED, st
        assert "no stored version" in str(st), st
        sim.edges.gate("store:registered").set()
        await sim.until(lambda: sim.image_done("aci-mnist-2"))
        models = sim.fake.get(api.IMAGE, "aci-mnist-2")["status"]["models"]
        assert models == [{"name": "sklearn_mnist", "version": 1, "object": "sklearn-mnist"}]

    run_sim(scenario)


def test_a_dependency_ready_before_its_waiter_exists() -> None:
    async def scenario(sim: Sim) -> None:
        sim.edges.gate("store:m").set()
        sim.fake.create(api.MODEL, "m", model_spec("m", "m"))
        await sim.until(lambda: "status" in sim.fake.get(api.MODEL, "m"))
        sim.fake.create(api.IMAGE, "img", image_spec("m"))
        await sim.until(lambda: sim.image_done("img"))

    run_sim(scenario)


def test_two_dependencies_finish_at_the_same_moment() -> None:
    async def scenario(sim: Sim) -> None:
        sim.fake.create(api.MODEL, "a", model_spec("a", "a"))
        sim.fake.create(api.MODEL, "b", model_spec("b", "b"))
        sim.fake.create(api.IMAGE, "img", image_spec("a", "b"))
        await asyncio.sleep(0.2)
        sim.edges.gate("store:a").set()
        sim.edges.gate("store:b").set()
        await sim.until(lambda: sim.image_done("img"))
        assert len(sim.edges.builds) == 1  # built once, with both

    run_sim(scenario)


def test_a_lost_wake_up_is_made_good_by_the_backoff() -> None:
    """The operator died between the Model's status write and its wake-up (or the
    watch event was lost): the waiting Image looks again on its own."""

    async def scenario(sim: Sim) -> None:
        sim.fake.create(api.MODEL, "m", model_spec("m", "m"))
        sim.fake.create(api.IMAGE, "img", image_spec("m"))
        await asyncio.sleep(0.2)
        real = HANDLERS[api.MODEL]

        async def lost(**_: Any) -> None:
            return None

        HANDLERS[api.MODEL] = [lost]
        try:
            sim.edges.gate("store:m").set()
            await sim.until(
                lambda: (sim.fake.get(api.MODEL, "m").get("status") or {}).get("version") == 1
            )
            # No event reached kaci; the store index is stale too. A new listing
            # (what a restart or a re-watch gives) updates it, still with no wake-up.
            with sim.fake.lock:
                sim.fake._reindex()
            await sim.until(lambda: sim.image_done("img"), timeout=20)
        finally:
            HANDLERS[api.MODEL] = real

    run_sim(scenario)


def test_a_wake_up_during_the_waiters_pass_runs_it_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Model is stored while the Image's pass runs (that pass saw no version):
    the wake-up marks the Image to run again at once. With the backoff made an hour
    long, only that re-run can make it converge."""
    from kaci.handlers import queue

    monkeypatch.setattr(queue, "backoff_s", lambda failures: 3600.0)

    async def scenario(sim: Sim) -> None:
        reading = threading.Event()
        release = threading.Event()

        def slow_read(namespace: str, name: str) -> dict[str, str] | None:
            reading.set()
            assert release.wait(10)
            return {"score.py": SCORE}

        sim.edges.read_config_map = slow_read  # type: ignore[method-assign]
        sim.fake.create(api.MODEL, "m", model_spec("m", "m"))
        spec = {
            **image_spec("m"),
            "executionScript": {"configMap": {"name": "s", "key": "score.py"}},
        }
        sim.fake.create(api.IMAGE, "img", spec)
        await sim.until(reading.is_set)  # the Image's pass runs, with the Model unstored
        sim.edges.gate("store:m").set()
        await sim.until(
            lambda: (sim.fake.get(api.MODEL, "m").get("status") or {}).get("version") == 1
        )
        await asyncio.sleep(0.1)  # the Model's event reached the queue during the pass
        release.set()
        await sim.until(lambda: sim.image_done("img"))

    run_sim(scenario)


@pytest.mark.parametrize("seed", range(10))
def test_random_orders_converge(seed: int) -> None:
    """The demo's objects created and stored in a seeded random order."""
    rnd = random.Random(seed)

    async def scenario(sim: Sim) -> None:
        steps: list[Callable[[], None]] = [
            lambda: sim.fake.create(
                api.MODEL,
                "aci-mnist-1",
                model_spec("sklearn_mnist", "files-1"),
                ownerReferences=ws_owner("aci-mnist-1"),
            ),
            lambda: sim.fake.create(
                api.MODEL, "sklearn-mnist", model_spec("sklearn_mnist", "registered")
            ),
            lambda: sim.fake.create(
                api.IMAGE,
                "aci-mnist-1",
                image_spec("sklearn_mnist"),
                ownerReferences=ws_owner("aci-mnist-1"),
            ),
            lambda: sim.fake.create(
                api.IMAGE,
                "aci-mnist-2",
                image_spec("sklearn_mnist"),
                ownerReferences=ws_owner("aci-mnist-2"),
            ),
            lambda: sim.fake.create(api.IMAGE, "myimage1", image_spec("sklearn_mnist")),
            lambda: sim.edges.gate("store:files-1").set(),
            lambda: sim.edges.gate("store:registered").set(),
        ]
        rnd.shuffle(steps)
        for step in steps:
            step()
            await asyncio.sleep(rnd.uniform(0, 0.05))
        # Until the registered Model exists, aci-mnist-2 and myimage1 may build from
        # aci-mnist-1's files (rule 3 of pick_model); once it is stored, they move to it.
        want = {
            "aci-mnist-1": "aci-mnist-1",
            "aci-mnist-2": "sklearn-mnist",
            "myimage1": "sklearn-mnist",
        }

        def chosen() -> dict[str, Any]:
            out: dict[str, Any] = {}
            for i in want:
                st = sim.fake.get(api.IMAGE, i).get("status") or {}
                done = st.get("state") == api.SUCCEEDED
                out[i] = done and (st.get("models") or [{}])[0].get("object")
            return out

        await sim.until(lambda: chosen() == want, timeout=30)

    run_sim(scenario)


def test_backoff_doubles_to_a_minute() -> None:
    from kaci.handlers.queue import backoff_s

    assert [backoff_s(n) for n in range(8)] == [0, 2, 4, 8, 16, 32, 60, 60]


def test_queue_runs_a_key_once_at_a_time_and_again_after_a_change() -> None:
    from kaci.handlers.queue import WorkQueue

    async def main() -> None:
        running = 0
        most = 0
        passes: list[str] = []
        gate = asyncio.Event()

        async def run(key: Any) -> Outcome:
            nonlocal running, most
            running += 1
            most = max(most, running)
            passes.append(key[2])
            await gate.wait()
            running -= 1
            return Outcome.DONE

        q = WorkQueue(run, workers=4)
        q.start()
        q.add(("Image", NS, "x"))
        await asyncio.sleep(0.05)
        q.add(("Image", NS, "x"), "changed")  # during its pass
        q.add(("Image", NS, "x"), "changed again")
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.sleep(0.1)
        await q.stop()
        assert most == 1
        assert passes == ["x", "x"]  # once more after the change, not twice

    asyncio.run(main())


def test_an_object_being_deleted_is_left_to_the_garbage_collector() -> None:
    """A foreground deletion waits for the Deployment to go: a pass must not apply it
    again (it would wait for ever)."""

    async def scenario(sim: Sim) -> None:
        ws = {
            "apiVersion": api.API_VERSION,
            "kind": api.WEBSERVICE,
            "metadata": {
                "name": "w",
                "namespace": NS,
                "uid": "uid-w",
                "deletionTimestamp": "2026-12-01T00:00:00Z",
            },
            "spec": {"image": {"name": "img"}, "deploymentConfig": {"cpuCores": 1, "memoryGb": 1}},
        }
        sim.fake.indexes["webservice_objects"][(NS, "w")] = [ws]
        assert await sim.runner.run((api.WEBSERVICE, NS, "w")) is Outcome.DONE
        assert sim.fake.status_writes == 0  # nothing applied (SimEdges.apply would raise)

    run_sim(scenario)


def test_the_runner_reports_passes_and_levels_to_metrics() -> None:
    """A real queue and runner: each pass is counted by kind and outcome, and the
    level gauges (objects by state, waiting) come from the indexes on the loop."""
    from kaci.edges import metrics

    def passes(kind: str) -> float:
        return sum(
            metrics.REGISTRY.get_sample_value(
                "kaci_operator_reconciles_total", {"kind": kind, "outcome": o.value}
            )
            or 0.0
            for o in Outcome
        )

    async def scenario(sim: Sim) -> None:
        before = passes(api.IMAGE)
        sim.fake.create(api.MODEL, "m", model_spec("m", "m"))
        sim.fake.create(api.IMAGE, "img", image_spec("m"))
        await sim.until(lambda: "status" in sim.fake.get(api.IMAGE, "img"))
        levels = sim.runner.levels()
        assert (api.IMAGE, api.NOT_STARTED) in list(levels.states)
        assert levels.waiting >= 1  # the Image waits for its Model on a backoff
        sim.edges.gate("store:m").set()
        await sim.until(lambda: sim.image_done("img"))
        await asyncio.sleep(0.1)
        assert (api.IMAGE, api.SUCCEEDED) in list(sim.runner.levels().states)
        assert passes(api.IMAGE) >= before + 2

    run_sim(scenario)
