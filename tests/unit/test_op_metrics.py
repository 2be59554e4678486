"""The operator's /metrics: counters where things happen, levels read at scrape time."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from kaci.edges import metrics
from kaci.edges.live import counted_api_errors, counted_build
from kaci.errors import InfraDown, UserError
from kubernetes.client.exceptions import ApiException


def sample(name: str, **labels: str) -> float:
    """The value of one sample in the operator's registry (0 when absent)."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_pass_is_counted_with_its_outcome_and_timed() -> None:
    before = sample("kaci_operator_reconciles_total", kind="Image", outcome="wait")
    timed = sample("kaci_operator_reconcile_duration_seconds_count", kind="Image")
    with metrics.timed_pass("Image") as said:
        said("wait")
    assert sample("kaci_operator_reconciles_total", kind="Image", outcome="wait") == before + 1
    assert sample("kaci_operator_reconcile_duration_seconds_count", kind="Image") == timed + 1


def test_a_pass_that_raises_counts_as_error() -> None:
    before = sample("kaci_operator_reconciles_total", kind="Model", outcome="error")
    with pytest.raises(RuntimeError), metrics.timed_pass("Model"):
        raise RuntimeError("a bug")
    assert sample("kaci_operator_reconciles_total", kind="Model", outcome="error") == before + 1


@pytest.mark.parametrize(
    ("raised", "result"),
    [(None, "built"), (UserError("bad step"), "failed"), (InfraDown("no builder"), "unavailable")],
)
def test_builds_are_counted_by_result_with_their_context_size(
    raised: Exception | None, result: str
) -> None:
    before = sample("kaci_operator_builds_total", what="scoring", result=result)
    sent = sample("kaci_operator_build_context_bytes_total", what="scoring")
    context = {"score.py": b"x" * 10, "Dockerfile": b"y" * 5}
    try:
        with counted_build("scoring", context) as result_of:
            if raised is not None:
                raise raised
            result_of(("sha256:abc", True))
    except (UserError, InfraDown):
        pass
    assert sample("kaci_operator_builds_total", what="scoring", result=result) == before + 1
    assert sample("kaci_operator_build_context_bytes_total", what="scoring") == sent + 15


def test_a_cache_hit_sends_no_context() -> None:
    before = sample("kaci_operator_builds_total", what="model", result="cached")
    sent = sample("kaci_operator_build_context_bytes_total", what="model")
    with counted_build("model", {"m.pkl": b"z" * 100}) as result_of:
        assert result_of(("sha256:def", False)) == ("sha256:def", False)
    assert sample("kaci_operator_builds_total", what="model", result="cached") == before + 1
    assert sample("kaci_operator_build_context_bytes_total", what="model") == sent


def test_api_errors_are_counted_by_call_and_status() -> None:
    before = sample("kaci_operator_api_errors_total", call="apply Deployment", code="409")
    with pytest.raises(ApiException), counted_api_errors("apply Deployment"):
        raise ApiException(status=409, reason="Conflict")
    assert sample("kaci_operator_api_errors_total", call="apply Deployment", code="409") == (
        before + 1
    )


def test_levels_are_read_at_scrape_time_from_the_source() -> None:
    states = [("Webservice", "Healthy"), ("Webservice", "Healthy"), ("Image", "Failed")]
    metrics.observe_levels(lambda: metrics.Levels(states, queued=3, waiting=1))
    try:
        assert sample("kaci_operator_objects", kind="Webservice", state="Healthy") == 2
        assert sample("kaci_operator_objects", kind="Image", state="Failed") == 1
        assert sample("kaci_operator_queue_depth") == 3
        assert sample("kaci_operator_objects_waiting") == 1
        states.append(("Image", "Failed"))  # a level, not an event: the next scrape sees it
        assert sample("kaci_operator_objects", kind="Image", state="Failed") == 2
    finally:
        metrics.observe_levels(None)
    assert sample("kaci_operator_objects", kind="Image", state="Failed") == 0


def test_served_over_http() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    metrics.serve(port, address="127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert "kaci_operator_reconciles_total" in text
    assert "kaci_operator_queue_depth" in text


def test_time_to_ready_is_observed_from_the_given_start() -> None:
    import datetime

    from kaci.edges.live import LiveEdges
    from kaci.settings import Settings

    count = sample("kaci_operator_time_to_ready_seconds_count", kind="Webservice")
    total = sample("kaci_operator_time_to_ready_seconds_sum", kind="Webservice")
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=30)
    LiveEdges(Settings()).became_ready("Webservice", start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert sample("kaci_operator_time_to_ready_seconds_count", kind="Webservice") == count + 1
    took = sample("kaci_operator_time_to_ready_seconds_sum", kind="Webservice") - total
    assert 29 <= took < 120


def test_watch_events_are_counted_by_kind_and_type() -> None:
    import asyncio

    from kaci.handlers import wiring

    before = sample("kaci_operator_watch_events_total", kind="Pod", type="MODIFIED")
    listed = sample("kaci_operator_watch_events_total", kind="Pod", type="listed")
    from kopf._cogs.structs.references import Resource

    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "labels": {}}}
    pods = Resource(group="", version="v1", plural="pods")  # as kopf passes it
    asyncio.run(
        wiring.child_changed(body=pod, namespace="ns", labels={}, type="MODIFIED", resource=pods)
    )  # type: ignore[arg-type]
    asyncio.run(wiring.child_changed(body=pod, namespace="ns", labels={}, type=None, resource=pods))  # type: ignore[arg-type]
    assert sample("kaci_operator_watch_events_total", kind="Pod", type="MODIFIED") == before + 1
    assert sample("kaci_operator_watch_events_total", kind="Pod", type="listed") == listed + 1
