"""`python -m kaci.operator`: run the kopf operator for kaci's three kinds.

Alone (the default) it runs kopf standalone: run only one. With `--peering NAME`
several processes (the replicas of the chart's Deployment) share kopf's peering
object NAME and exactly one of them acts at a time: the others keep watching
the peering object only, and one takes over when the acting one stops (at once)
or dies (within the keep-alive lifetime).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import getpass
import logging
import os
import secrets
import socket
import sys
import time
from typing import Any

import kopf

import kaci.handlers  # noqa: F401  (registers the handlers)
from kaci.edges import metrics
from kaci.handlers import leader
from kaci.settings import Settings, get_settings

logger = logging.getLogger("kaci.operator")

# A default priority is -(start time in ms * TIEBREAK + a random tie-break) - 1: below 0.
TIEBREAK = 1000


def default_priority(started_ns: int, tiebreak: int) -> int:
    """The priority of a process started at `started_ns` (epoch ns) that was given none.

    kopf pauses a peer while it sees a live peer of higher priority, and pauses ALL of
    them when two live peers share a priority (kopf 1.45: "Pausing all operators,
    including self"), so replicas of one Deployment need distinct priorities, and the
    order had better be stable: the OLDEST running process ranks highest. A restarted
    or newly scheduled replica (a rolling update's new Pod) then waits while the
    running leader keeps its builds and watches, instead of pre-empting it half-way as
    a random priority would half of the time; it leads once the old one exits (a clean
    exit removes its keep-alive, so the hand-over is immediate). The random tie-break
    separates processes started in the same millisecond (one chance in TIEBREAK of a
    tie then). Default priorities are negative, so any explicit `--priority` >= 0 (a
    developer's operator, say) wins over every replica.
    """
    if not 0 <= tiebreak < TIEBREAK:
        raise ValueError(f"tiebreak {tiebreak} not in [0, {TIEBREAK})")
    return -((started_ns // 1_000_000) * TIEBREAK + tiebreak) - 1


def kopf_settings(
    *,
    peering: str | None,
    priority: int | None,
    lifetime_s: int,
    clusterwide: bool,
    started_ns: int,
    tiebreak: int,
) -> kopf.OperatorSettings:
    """kopf's settings for this process's peering (the rest is set in kaci.handlers)."""
    settings = kopf.OperatorSettings()
    # kopf uses a ClusterKopfPeering when it watches the whole cluster and a KopfPeering
    # in each watched namespace otherwise (it sets this itself too; kept equal here).
    settings.peering.clusterwide = clusterwide
    if peering is None:
        settings.peering.standalone = True
        return settings
    settings.peering.standalone = False
    # Mandatory: without the peering object kopf stays paused instead of silently
    # running standalone beside the other replicas. It also starts paused until it has
    # read the peering object, so a new replica never acts before it knows who leads.
    settings.peering.mandatory = True
    settings.peering.name = peering
    settings.peering.priority = (
        priority if priority is not None else default_priority(started_ns, tiebreak)
    )
    # kopf's default is 60 s: a killed leader would leave its objects alone for up to a
    # minute. Keep-alives go out 5-10 s before the lifetime ends (at most every second).
    settings.peering.lifetime = lifetime_s
    # No debug line per keep-alive (every few seconds); pauses and resumes are still logged.
    settings.peering.stealth = True
    return settings


def own_identity() -> str:
    """This process's name among the peers: the Pod's name in a cluster (POD_ID, as
    kopf reads it), else user@host/start-time/random. kaci knows it, so its work queue
    can tell whether this process leads (handlers.leader)."""
    pod = os.environ.get("POD_ID")
    if pod:
        return pod
    started = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d%H%M%S")
    return f"{getpass.getuser()}@{socket.gethostname()}/{started}/{secrets.token_hex(3)}"


def kopf_identity(identity: str) -> Any:
    """kopf types its identity as a NewType of str: a str is one at run time."""
    return identity


def warn_if_peering_objects_missing(name: str, namespaces: list[str]) -> None:
    """kopf does not create its peering object and, with mandatory peering, stays paused
    without a word (at INFO) while it is missing: say so once, at start."""
    from kaci.edges import kube  # the Kubernetes client only when peering

    custom = kube.custom()
    where_all: list[str | None] = [*namespaces] or [None]
    for ns in where_all:
        where = (
            f"KopfPeering {name!r} in namespace {ns!r}" if ns else f"ClusterKopfPeering {name!r}"
        )
        try:
            if ns is None:
                custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)
            else:
                custom.get_namespaced_custom_object("kopf.dev", "v1", ns, "kopfpeerings", name)
        except Exception as exc:  # a diagnostic only: kopf goes on either way
            status = getattr(exc, "status", None)  # an ApiException's HTTP status
            reason = (
                "not found"
                if status == 404
                else f"cannot read it: {status} {getattr(exc, 'reason', '')}"
                if status
                else f"cannot read it: {exc}"
            )
            logger.warning(
                "%s: %s. This operator stays paused until it exists (install crds/ and "
                "create it; the Helm chart does both)",
                where,
                reason,
            )


def parse_args(argv: list[str] | None, env: Settings) -> argparse.Namespace:
    """The command line; the peering options default to the KACI_* settings `env`."""
    p = argparse.ArgumentParser(prog="kaci.operator", description=__doc__)
    p.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); all namespaces when omitted",
    )
    p.add_argument(
        "--liveness",
        default=None,
        help="serve a liveness endpoint, e.g. http://0.0.0.0:8080/healthz",
    )
    p.add_argument(
        "--peering",
        default=env.peering,
        metavar="NAME",
        help="share kopf's peering object NAME with other replicas (only one acts); "
        "standalone when omitted (env KACI_PEERING)",
    )
    p.add_argument(
        "--priority",
        type=int,
        default=env.peering_priority,
        metavar="N",
        help="peering priority, the highest live one acts; default: older processes "
        "rank higher, all below 0 (env KACI_PEERING_PRIORITY)",
    )
    p.add_argument("--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    env = get_settings()
    args = parse_args(argv, env)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if not args.verbose:
        # kopf logs every event handler's success ("Handler 'child_changed' succeeded")
        # at INFO: a line per Pod event. Its warnings and errors still show; kaci logs
        # what it does itself (kaci.handlers.runner).
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    clusterwide = not args.namespace
    settings = kopf_settings(
        peering=args.peering,
        priority=args.priority,
        lifetime_s=env.peering_lifetime_s,
        clusterwide=clusterwide,
        started_ns=time.time_ns(),
        tiebreak=secrets.randbelow(TIEBREAK),
    )
    identity = own_identity()
    if settings.peering.standalone:
        leader.configure(None)
        logger.info("standalone (no peering): run no other operator for these objects")
    else:
        leader.configure(
            leader.Peering(
                settings.peering.name, identity, settings.peering.priority, tuple(args.namespace)
            )
        )
        warn_if_peering_objects_missing(settings.peering.name, list(args.namespace))
        kind = "ClusterKopfPeering" if clusterwide else "KopfPeering (in each namespace)"
        logger.info(
            "peering %s %r as priority %d (keep-alive lifetime %d s): paused while a live "
            "peer has a higher priority",
            kind,
            settings.peering.name,
            settings.peering.priority,
            settings.peering.lifetime,
        )
    if env.metrics_port:
        metrics.serve(env.metrics_port)
        logger.info("Prometheus metrics on :%d/metrics", env.metrics_port)
    asyncio.run(
        kopf.operator(
            clusterwide=clusterwide,
            namespaces=list(args.namespace),
            settings=settings,
            identity=kopf_identity(identity),
            liveness_endpoint=args.liveness,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
