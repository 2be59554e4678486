"""Events on state changes (kaci.status.events): the story `kubectl describe` tells."""

from __future__ import annotations

from typing import Any

from kaci import api
from kaci.status.events import Event, change_event


def status(state: str | None, ready: str, reason: str, message: str = "m") -> dict[str, Any]:
    st: dict[str, Any] = {
        "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message}]
    }
    if state is not None:
        st["state"] = state
    return st


def test_a_new_state_is_told_with_the_ready_reason_and_message() -> None:
    old = status(api.TRANSITIONING, "False", "PodPending", "waiting for the scoring Pod")
    new = status(api.HEALTHY, "True", "Ready", "all parts are ready")
    assert change_event(old, new) == Event(False, "Ready", "all parts are ready")


def test_failing_states_are_warnings() -> None:
    for state in (api.FAILED, api.UNHEALTHY, api.UNSCHEDULABLE):
        event = change_event({}, status(state, "False", "Why", "what to do"))
        assert event is not None
        assert event.warning
        assert event.message == "what to do"


def test_the_same_story_again_is_no_event() -> None:
    st = status(api.FAILED, "False", api.REASON_BUILD_FAILED, "step 3 failed")
    again = status(api.FAILED, "False", api.REASON_BUILD_FAILED, "step 3 failed (retry 2)")
    assert change_event(st, again) is None


def test_a_new_reason_in_the_same_state_is_told() -> None:
    old = status(api.NOT_STARTED, "False", api.REASON_MODEL_NOT_READY)
    new = status(api.NOT_STARTED, "False", api.REASON_ENGINE_UNAVAILABLE)
    event = change_event(old, new)
    assert event is not None
    assert event.reason == api.REASON_ENGINE_UNAVAILABLE
    assert not event.warning  # NotStarted is waiting, not failing


def test_a_model_has_no_state_its_ready_condition_tells() -> None:
    stored = change_event({}, status(None, "True", api.REASON_STORED, "version 1 stored"))
    assert stored == Event(False, api.REASON_STORED, "version 1 stored")
    bad = change_event({}, status(None, "False", api.REASON_BAD_SOURCE, "no such file"))
    assert bad == Event(True, api.REASON_BAD_SOURCE, "no such file")


def test_no_status_yet_is_no_event() -> None:
    assert change_event({}, {"observedGeneration": 1}) is None


def test_turning_ready_measures_from_creation_or_from_when_it_stopped_being_ready() -> None:
    from kaci.status.events import became_ready_since

    created = {"metadata": {"creationTimestamp": "2026-12-01T10:00:00Z"}}
    ready = status(api.HEALTHY, "True", "Ready")
    assert became_ready_since(created, ready) == "2026-12-01T10:00:00Z"
    rolling = {
        **created,
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": "2026-12-01T11:00:00Z"}
            ]
        },
    }
    assert became_ready_since(rolling, ready) == "2026-12-01T11:00:00Z"
    already = {**created, "status": ready}
    assert became_ready_since(already, ready) is None  # no new wait ended
    assert became_ready_since(created, status(api.TRANSITIONING, "False", "PodPending")) is None
