"""Deletions no watch told (handlers.prune): a resource listed anew, the objects the
indexes hold and the API server no longer has are hidden and looked at again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kaci import api
from kaci.handlers.prune import Indexed, Pruner, Resource
from kaci.handlers.store import Store

WS: Resource = (api.GROUP, api.VERSION, api.WEBSERVICES)
DEPLOYMENTS: Resource = ("apps", "v1", "deployments")


def body(kind: str, name: str, uid: str, owner: str | None = None) -> dict[str, Any]:
    labels = {api.WEBSERVICE_LABEL: owner} if owner else {}
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": "ns", "uid": uid, "labels": labels},
    }


class Cluster:
    """What the API server has (uids by resource), and the lists asked of it."""

    def __init__(self) -> None:
        self.uids: dict[Resource, set[str]] = {WS: set(), DEPLOYMENTS: set()}
        self.lists: list[tuple[Resource, str, str | None]] = []
        self.down = False

    def list_uids(
        self, group: str, version: str, plural: str, namespace: str, selector: str | None
    ) -> set[str]:
        if self.down:
            raise ConnectionError("connection refused")
        self.lists.append(((group, version, plural), namespace, selector))
        return set(self.uids[(group, version, plural)])


def setup() -> tuple[Pruner, Cluster, dict[str, Any], list[dict[str, Any]]]:
    indexes: dict[str, Any] = {
        "webservice_objects": {
            ("ns", "a"): [body(api.WEBSERVICE, "a", "ua")],
            ("ns", "b"): [body(api.WEBSERVICE, "b", "ub")],
        },
        "ws_deployments": {("ns", "b"): [body("Deployment", "b", "db", owner="b")]},
    }
    cluster = Cluster()
    cluster.uids = {WS: {"ua", "ub"}, DEPLOYMENTS: {"db"}}
    woken: list[dict[str, Any]] = []

    async def blocking(fn: Any, *args: Any) -> Any:
        return fn(*args)

    pruner = Pruner(
        Store(indexes),
        {
            WS: Indexed(("webservice_objects",)),
            DEPLOYMENTS: Indexed(("ws_deployments",), "sel"),
        },
        cluster.list_uids,
        blocking,
        woken.append,
    )
    return pruner, cluster, indexes, woken


def test_what_the_list_lacks_is_hidden_and_looked_at_again() -> None:
    pruner, cluster, indexes, woken = setup()
    cluster.uids[WS] = {"ua"}  # b was deleted while the watch was down
    cluster.uids[DEPLOYMENTS] = set()  # and its Deployment with it
    assert asyncio.run(pruner.prune(WS)) == 1
    assert asyncio.run(pruner.prune(DEPLOYMENTS)) == 1
    store = pruner.store
    assert store.one("webservice_objects", ("ns", "b")) is None
    assert store.one("webservice_objects", ("ns", "a")) is not None
    assert store.one("ws_deployments", ("ns", "b")) is None
    assert [w["metadata"]["uid"] for w in woken] == ["ub", "db"]
    # Listed where the objects are, with the watch's own selector.
    assert cluster.lists == [(WS, "ns", None), (DEPLOYMENTS, "ns", "sel")]
    # Told once: a second list finds the same, wakes no one again.
    assert asyncio.run(pruner.prune(WS)) == 0
    assert len(woken) == 2
    # Once kopf drops the entry (a later event of that name), the tombstone goes too.
    del indexes["webservice_objects"][("ns", "b")]
    asyncio.run(pruner.prune(WS))
    assert pruner.tombstones[WS] == set()


def test_a_new_object_of_the_same_name_is_not_hidden() -> None:
    pruner, cluster, indexes, _ = setup()
    cluster.uids[WS] = {"ua"}
    asyncio.run(pruner.prune(WS))
    indexes["webservice_objects"][("ns", "b")] = [body(api.WEBSERVICE, "b", "ub2")]
    cluster.uids[WS] = {"ua", "ub2"}
    asyncio.run(pruner.prune(WS))
    assert pruner.store.one("webservice_objects", ("ns", "b"))["metadata"]["uid"] == "ub2"  # type: ignore[index]


def test_the_api_server_away_prunes_nothing() -> None:
    pruner, cluster, _, woken = setup()
    cluster.uids[WS] = set()
    cluster.down = True
    assert asyncio.run(pruner.prune(WS)) == 0
    assert woken == []
    assert pruner.store.one("webservice_objects", ("ns", "a")) is not None


@pytest.mark.parametrize("events", [[None, None], ["ADDED", "MODIFIED"]])
def test_the_first_listing_and_watch_events_check_nothing(events: list[str | None]) -> None:
    async def run() -> bool:
        pruner, _, _, _ = setup()
        for e in events:
            pruner.saw(WS, e)
        return WS in pruner.scheduled

    assert asyncio.run(run()) is False


def test_a_listing_after_watch_events_is_checked_once_it_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("kaci.handlers.prune.AFTER_RELIST_S", 0.05)

    async def run() -> tuple[bool, list[dict[str, Any]]]:
        pruner, cluster, _, woken = setup()
        cluster.uids[WS] = {"ua"}
        pruner.saw(WS, "ADDED")
        pruner.saw(WS, None)  # kopf lists anew: a 410 on its watch
        pruner.saw(WS, None)  # the rest of the listing: one check
        scheduled = WS in pruner.scheduled
        await asyncio.sleep(0.2)
        return scheduled, woken

    scheduled, woken = asyncio.run(run())
    assert scheduled
    assert [w["metadata"]["name"] for w in woken] == ["b"]
