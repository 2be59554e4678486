"""`python -m kaci.operator`'s command line and environment -> kopf's peering settings;
and who leads (kaci.handlers.leader)."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import kopf
import pytest
from kaci.handlers import leader
from kaci.operator import TIEBREAK, default_priority, kopf_settings, parse_args
from kaci.settings import Settings
from pydantic import ValidationError

STARTED = 1_800_000_000_123_456_789  # epoch ns


def settings_for(
    argv: list[str], env: Settings | None = None, tiebreak: int = 7
) -> kopf.OperatorSettings:
    env = env or Settings()
    args = parse_args(argv, env)
    return kopf_settings(
        peering=args.peering,
        priority=args.priority,
        lifetime_s=env.peering_lifetime_s,
        clusterwide=not args.namespace,
        started_ns=STARTED,
        tiebreak=tiebreak,
    )


def test_no_peering_runs_standalone_as_before() -> None:
    s = settings_for([])
    assert s.peering.standalone is True
    assert s.peering.mandatory is False
    assert s.peering.clusterwide is True


def test_peering_all_namespaces_is_mandatory_cluster_peering() -> None:
    s = settings_for(["--peering", "kaci"]).peering
    assert (s.standalone, s.mandatory, s.name, s.clusterwide) == (False, True, "kaci", True)
    # A killed leader is replaced within the lifetime (kopf's default is 60 s).
    assert s.lifetime == 10
    assert s.stealth is True
    assert s.priority == default_priority(STARTED, 7)


def test_peering_with_namespaces_uses_namespaced_peering() -> None:
    s = settings_for(["--peering", "kaci", "-n", "a", "-n", "b"]).peering
    assert s.clusterwide is False
    assert s.name == "kaci"


def test_explicit_priority_and_environment() -> None:
    env = Settings(peering="from-env", peering_priority=5, peering_lifetime_s=30)
    s = settings_for([], env).peering
    assert (s.name, s.priority, s.lifetime, s.standalone) == ("from-env", 5, 30, False)
    # The command line wins over the environment.
    s = settings_for(["--peering", "cli", "--priority", "0"], env).peering
    assert (s.name, s.priority) == ("cli", 0)


def test_lifetime_too_short_for_kopfs_keepalive_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(peering_lifetime_s=5)


def test_default_priority_older_ranks_higher_and_ties_are_broken() -> None:
    older = default_priority(STARTED, TIEBREAK - 1)
    newer = default_priority(STARTED + 1_000_000, 0)  # one millisecond later
    assert older > newer  # a later start never outranks a running replica
    same_ms = {default_priority(STARTED, t) for t in range(TIEBREAK)}
    assert len(same_ms) == TIEBREAK  # the tie-break makes same-millisecond starts distinct
    # Every default is below 0: any explicit priority >= 0 outranks all replicas.
    assert max(same_ms) < 0
    assert default_priority(0, 0) == -1
    with pytest.raises(ValueError, match="tiebreak"):
        default_priority(STARTED, TIEBREAK)
    # Still exact in a float64 JSON reader (kopf stores it in the peering object's status).
    assert abs(default_priority(4_102_444_800 * 10**9, TIEBREAK - 1)) < 2**53  # year 2100


# -- who leads: kaci's reading of the peering object (kaci.handlers.leader) ------------

NOW = datetime.datetime(2026, 12, 2, 5, 0, 22, tzinfo=datetime.UTC)


def alive(priority: int, seconds_ago: float = 1.0, lifetime: int = 10) -> dict[str, Any]:
    seen = NOW - datetime.timedelta(seconds=seconds_ago)
    return {"priority": priority, "lifetime": lifetime, "lastseen": seen.isoformat()}


def test_a_live_older_peer_pauses_this_one_and_a_dead_one_does_not() -> None:
    me = alive(5)
    assert leader.is_leading({"me": me}, "me", 5, NOW)
    assert not leader.is_leading({"me": me, "old": alive(9)}, "me", 5, NOW)
    assert not leader.is_leading({"me": me, "twin": alive(5)}, "me", 5, NOW)  # kopf's rule
    assert leader.is_leading({"me": me, "young": alive(1)}, "me", 5, NOW)
    assert leader.is_leading({"me": me, "gone": alive(9, seconds_ago=11)}, "me", 5, NOW)


def run_leading(leadership: leader.Leadership) -> bool | None:
    return asyncio.run(leadership.leading())


def test_no_acting_in_the_first_seconds_nor_before_the_own_keep_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two replicas started at once: the younger must not act in the instant before
    the older one's first keep-alive (kopf resumes it then; kaci's queue waits)."""
    peering = leader.Peering("kaci", "me", 5, ("ns",))
    objects: dict[str, Any] = {"status": {}}
    monkeypatch.setattr("kaci.edges.kube.get_namespaced_custom", lambda *_: objects)
    fresh = leader.Leadership(peering)
    assert run_leading(fresh) is None  # just started: look again later, keep the work
    settled = leader.Leadership(peering)
    settled._born -= leader.SETTLE_S
    assert run_leading(settled) is None  # its own keep-alive is not there yet
    objects["status"] = {"me": {"priority": 5, "lifetime": 10, "lastseen": "2999-01-01T00:00:00Z"}}
    settled._checked = 0.0
    assert run_leading(settled) is True
    objects["status"]["old"] = {"priority": 9, "lifetime": 10, "lastseen": "2999-01-01T00:00:00Z"}
    settled._checked = 0.0
    assert run_leading(settled) is False
    assert run_leading(leader.Leadership(None)) is True  # standalone: always
