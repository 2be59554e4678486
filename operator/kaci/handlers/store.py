"""What the operator knows of the cluster: kopf's indexes, read as plain snapshots.

kopf fills every index from its watches before it calls any handler, so by the time
the first object is looked at, every Model, Image, Webservice and child is known
(an Image listed before its Model is never told "model not found"). A pass reads
its observed state from here, on the event loop, in one go, and never asks the API
server for what a watch already told.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

import kopf

Obj = dict[str, Any]
Index = kopf.Index[Any, Any]


def snapshot(body: Mapping[str, Any]) -> Obj:
    """A plain, private copy of an object as the watch delivered it, without the field
    sets of its managedFields: a third to a half of a Pod or Deployment, read by no
    pass, and held for every child of every Webservice. Each entry's manager,
    subresource and time stay (status.webservice reads when an EndpointSlice last
    changed, and when the operator last wrote a Webservice's status)."""
    copied = copy.deepcopy({k: v for k, v in body.items() if k != "metadata"})
    m = dict(body.get("metadata") or {})
    managed = m.pop("managedFields", None)
    copied["metadata"] = copy.deepcopy(m)
    if managed is not None:
        copied["metadata"]["managedFields"] = [
            {k: f[k] for k in ("manager", "operation", "subresource", "time") if k in f}
            for f in managed
        ]
    return copied


def uid_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        uid = (value.get("metadata") or {}).get("uid")
        return str(uid) if uid else None
    return None


def values(index: Index | None, key: Any, gone: Set[str] = frozenset()) -> list[Obj]:
    if index is None:
        return []
    store = index.get(key)
    if store is None:
        return []
    return [v for v in store if not gone or uid_of(v) not in gone]


@dataclass
class Store:
    """The indexes, by name (the index functions in handlers/wiring.py), without the
    objects known to be gone whose deletion no watch told (handlers.prune)."""

    indexes: Mapping[str, Index]
    gone: set[str] = field(default_factory=set)

    def get(self, index: str) -> Index | None:
        return self.indexes.get(index)

    def one(self, index: str, key: Any) -> Obj | None:
        found = values(self.get(index), key, self.gone)
        return found[0] if found else None

    def all(self, index: str, key: Any) -> list[Obj]:
        return values(self.get(index), key, self.gone)

    def uids(self, index: str) -> dict[str, Obj]:
        """Every object an index holds, by uid (gone ones too)."""
        idx = self.get(index)
        if idx is None:
            return {}
        return {u: v for key in list(idx.keys()) for v in idx.get(key) or [] if (u := uid_of(v))}

    def keys(self, index: str) -> Iterable[Any]:
        idx = self.get(index)
        return list(idx.keys()) if idx is not None else []
