from __future__ import annotations

from kaci.status import conditions as c


def test_ready_takes_first_part_not_true() -> None:
    parts = [
        c.condition("ImageReady", True, "ok", "", 3),
        c.condition("PodReady", False, "PodStarting", "starting", 3),
    ]
    r = c.ready(parts, 3)
    assert (r["status"], r["reason"], r["message"], r["observedGeneration"]) == (
        "False",
        "PodStarting",
        "starting",
        3,
    )
    assert c.ready(parts[:1], 3)["status"] == "True"


def test_transition_time_moves_only_on_status_change() -> None:
    first = c.merge(None, [c.condition("Ready", False, "a", "", 1)], "T1")
    same = c.merge(first, [c.condition("Ready", False, "b", "x", 2)], "T2")
    assert same[0]["lastTransitionTime"] == "T1"
    assert same[0]["reason"] == "b"
    flipped = c.merge(same, [c.condition("Ready", True, "ok", "", 2)], "T3")
    assert flipped[0]["lastTransitionTime"] == "T3"


def test_merge_keeps_other_types_and_puts_ready_first() -> None:
    old = c.merge(None, [c.condition("ImageReady", True, "r", "", 1)], "T1")
    new = c.merge(old, [c.condition("Ready", False, "r", "", 1)], "T2")
    assert [x["type"] for x in new] == ["Ready", "ImageReady"]
    assert c.is_true(new, "ImageReady")
    assert not c.is_true(new, "Ready")
