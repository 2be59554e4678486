"""Does this process lead? kopf pauses a peer in favour of a higher-priority one;
the work queue must pause with it, so its backoffs and resyncs do not act for a
paused replica. The rule is kopf's (peering.process_peering_event), in one pure
function, over the peering object this process keeps alive with its identity.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# How long a look at the peering object is trusted (its keep-alives are seconds apart).
FRESH_S = 2.0
# A replica does not act in its first seconds, nor before its own keep-alive is in the
# peering object: by then a replica started at the same moment (a Deployment of two)
# has written its own, and the younger never acts. kopf itself resumes the younger for
# the instant before the older one's first keep-alive arrives; what kopf sees then only
# wakes the queue, which waits on this.
SETTLE_S = 2.0


def _parse(ts: str) -> datetime.datetime:
    parsed = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def is_leading(
    peers: Mapping[str, Mapping[str, Any]], identity: str, priority: int, now: datetime.datetime
) -> bool:
    """kopf's rule (pure): a live peer of higher priority, or of the same priority,
    pauses this one. A peer is live until lastseen + lifetime."""
    for other, info in peers.items():
        if other == identity:
            continue
        lastseen = info.get("lastseen")
        if lastseen is None:
            continue
        deadline = _parse(str(lastseen)) + datetime.timedelta(seconds=int(info.get("lifetime", 60)))
        if deadline <= now:
            continue
        if int(info.get("priority", 0)) >= priority:
            return False
    return True


def kept_alive(peers: Mapping[str, Mapping[str, Any]], identity: str) -> bool:
    """Whether this process's own keep-alive is in the peering object yet."""
    return identity in peers


@dataclass
class Peering:
    name: str
    identity: str
    priority: int
    namespaces: tuple[str, ...]  # empty: the ClusterKopfPeering


_configured: Peering | None = None


def configure(peering: Peering | None) -> None:
    """Called by kaci.operator before kopf starts (None: standalone)."""
    global _configured
    _configured = peering


class Leadership:
    def __init__(self, peering: Peering | None) -> None:
        self.peering = peering
        self._checked = 0.0
        self._leading: bool | None = True
        self._born = time.monotonic()
        self._lock = asyncio.Lock()

    @classmethod
    def configured(cls) -> Leadership:
        return cls(_configured)

    def _read(self) -> bool | None:
        """Leading or not; None until this process's keep-alive is there."""
        from kaci.edges import kube

        p = self.peering
        assert p is not None
        now = datetime.datetime.now(datetime.UTC)
        if not p.namespaces:
            obj = kube.get_cluster_custom("kopf.dev", "v1", "clusterkopfpeerings", p.name)
            objects = [obj]
        else:
            objects = [
                kube.get_namespaced_custom("kopf.dev", "v1", ns, "kopfpeerings", p.name)
                for ns in p.namespaces
            ]
        leading = True
        for obj in objects:
            peers = (obj or {}).get("status") or {}
            if not kept_alive(peers, p.identity):
                return None
            leading = leading and is_leading(peers, p.identity, p.priority, now)
        return leading

    async def leading(self) -> bool | None:
        """True or False; None when the peering object cannot be read now (do not
        act blindly, and do not drop the work either: look again later)."""
        if self.peering is None:
            return True
        if time.monotonic() - self._born < SETTLE_S:
            return None
        async with self._lock:
            if time.monotonic() - self._checked > FRESH_S:
                try:
                    self._leading = await asyncio.to_thread(self._read)
                except Exception:
                    return None
                self._checked = time.monotonic()
            return self._leading
