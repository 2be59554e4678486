from __future__ import annotations

from typing import Any

import pytest
from kaci import api
from kaci.status import conditions
from kaci.status import webservice as ws

H = "hash1"
DEP: dict[str, Any] = {"metadata": {"name": "w"}}


def pod(name: str = "p", h: str = H, ready: bool = False, **status: Any) -> dict[str, Any]:
    conds = [{"type": "Ready", "status": "True" if ready else "False"}]
    conds += status.pop("conditions", [])
    return {
        "metadata": {"name": name, "annotations": {api.TEMPLATE_HASH_ANNOTATION: h}},
        "status": {"conditions": conds, **status},
    }


def cs(state: dict[str, Any] | None = None, last: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "containerStatuses": [{"name": "scoring", "state": state or {}, "lastState": last or {}}]
    }


def test_healthy_when_current_pod_ready() -> None:
    v = ws.verdict(DEP, [pod(ready=True)], H, 1, {})
    assert (v.state, v.pod_ready) == ("Healthy", True)


def test_transitioning_while_starting_and_rolling() -> None:
    assert ws.verdict(None, [], H, 1, {}).state == "Transitioning"
    assert ws.verdict(DEP, [pod()], H, 1, {}).reason == "PodStarting"
    v = ws.verdict(DEP, [pod("old", "h0", ready=True), pod()], H, 1, {})
    assert (v.state, v.reason) == ("Transitioning", "RollingUpdate")


def test_init_raised_shows_log_tail() -> None:
    p = pod(
        **cs(
            {"waiting": {"reason": "CrashLoopBackOff"}},
            {"terminated": {"exitCode": 3, "reason": "Error"}},
        )
    )
    assert ws.pods_needing_logs([p]) == [("p", True)]
    v = ws.verdict(DEP, [p], H, 1, {"p": "ValueError: model file is broken"})
    assert v.state == "Failed"
    assert "exited with code 3" in v.message
    assert "crash loop" in v.message
    assert "ValueError: model file is broken" in v.message


def test_oom_says_raise_memory() -> None:
    p = pod(
        **cs(
            {"waiting": {"reason": "CrashLoopBackOff"}},
            {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
        )
    )
    assert ws.pods_needing_logs([p]) == []
    v = ws.verdict(DEP, [p], H, 0.25, {})
    assert (v.state, v.code) == ("Failed", "OOMKilled")
    assert "raise memoryGb (now 0.25)" in v.message


def test_pull_error_and_unschedulable() -> None:
    v = ws.verdict(
        DEP, [pod(**cs({"waiting": {"reason": "ImagePullBackOff", "message": "nf"}}))], H, 1, {}
    )
    assert (v.state, v.code) == ("Failed", "ImagePullFailed")
    sched = pod(
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/1 nodes: Insufficient cpu",
            }
        ]
    )
    v = ws.verdict(DEP, [sched], H, 1, {})
    assert v.state == "Unschedulable"
    assert "lower cpuCores/memoryGb" in v.message
    assert "Insufficient cpu" in v.message


def test_a_secret_cache_not_synced_yet_is_transitioning_not_failed() -> None:
    msg = "failed to sync secret cache: timed out waiting for the condition"
    waiting = {"waiting": {"reason": "CreateContainerConfigError", "message": msg}}
    v = ws.verdict(DEP, [pod(**cs(waiting))], H, 1, {})
    assert (v.state, v.pod_ready, v.code) == ("Transitioning", False, None)
    assert v.reason == "CreateContainerConfigError"
    assert msg in v.message
    v = ws.verdict(DEP, [pod("old", "h0", ready=True), pod(**cs(waiting))], H, 1, {})
    assert v.state == "Transitioning"
    assert "the new revision is not ready yet, the previous one still serves" in v.message
    broken = {"waiting": {"reason": "CreateContainerError", "message": "no such file"}}
    v = ws.verdict(DEP, [pod(**cs(broken))], H, 1, {})
    assert (v.state, v.code) == ("Failed", "CreateContainerError")


def test_failed_new_revision_while_old_serves() -> None:
    bad = pod(**cs({"waiting": {"reason": "ErrImagePull"}}))
    v = ws.verdict(DEP, [pod("old", "h0", ready=True), bad], H, 1, {})
    assert v.state == "Failed"
    assert "previous one still serves" in v.message


def test_status_conditions_and_ready() -> None:
    img = conditions.condition("ImageReady", True, "ImageReady", "", 2)
    svc = {"metadata": {"name": "w"}}
    healthy = ws.status(2, img, False, ws.verdict(DEP, [pod(ready=True)], H, 1, {}), svc, None, "T")
    assert healthy["state"] == "Healthy"
    assert healthy["error"] is None
    assert conditions.is_true(healthy["conditions"], "Ready")
    assert {c["type"] for c in healthy["conditions"]} == {
        "Ready",
        "ImageReady",
        "PodReady",
        "ServiceReady",
    }
    assert all(c["observedGeneration"] == 2 for c in healthy["conditions"])
    no_svc = ws.status(2, img, False, ws.verdict(DEP, [pod(ready=True)], H, 1, {}), None, None, "T")
    assert no_svc["state"] == "Transitioning"
    failed_img = conditions.condition("ImageReady", False, "ImageFailed", "pip: x", 2)
    st = ws.status(2, failed_img, True, None, None, None, "T")
    assert st["state"] == "Failed"
    assert st["error"] == {"code": "ImageFailed", "message": "pip: x"}
    assert not conditions.is_true(st["conditions"], "Ready")


def endpoint_slice(*readiness: bool | None) -> dict[str, Any]:
    eps = []
    for i, ready in enumerate(readiness):
        ep: dict[str, Any] = {"addresses": [f"10.88.0.{i + 2}"]}
        if ready is not None:
            ep["conditions"] = {"ready": ready}
        eps.append(ep)
    return {"metadata": {"name": "w-abc"}, "endpoints": eps}


def test_ready_only_once_the_service_routes_to_a_ready_pod() -> None:
    img = conditions.condition("ImageReady", True, "ImageReady", "", 2)
    svc = {"metadata": {"name": "w"}}
    v = ws.verdict(DEP, [pod(ready=True)], H, 1, {})
    # The Pod is Ready, but the EndpointSlice controller has not listed it yet.
    for slices in ([], [{"metadata": {"name": "w-abc"}}], [endpoint_slice(False)]):
        st = ws.status(2, img, False, v, svc, None, "T", endpoint_slices=slices)
        assert st["state"] == "Transitioning", slices
        assert not conditions.is_true(st["conditions"], "Ready")
        service = conditions.get(st["conditions"], "ServiceReady")
        assert service is not None
        assert service["reason"] == "NoReadyEndpoint"
    # Listed and ready (a missing ready condition means ready, the API's rule).
    for slices in ([endpoint_slice(False, True)], [endpoint_slice(None)]):
        st = ws.status(2, img, False, v, svc, None, "T", endpoint_slices=slices)
        assert st["state"] == "Healthy", slices
        assert conditions.is_true(st["conditions"], "Ready")
    # An endpoint without addresses routes nowhere.
    assert not ws.has_ready_endpoint([{"endpoints": [{"addresses": [], "conditions": {}}]}])


def test_one_restart_is_unhealthy_a_crash_loop_is_failed() -> None:
    killed = {"terminated": {"exitCode": 137, "reason": "Error"}}
    # the kubelet restarted the container once (a killed process): Unhealthy, not Failed
    once = pod(**cs({"running": {}}, killed))
    once["status"]["containerStatuses"][0]["restartCount"] = 1
    v = ws.verdict(DEP, [once], H, 1, {})
    assert (v.state, v.reason) == ("Unhealthy", "ContainerFailed")
    assert "exited with code 137 (restarting it)" in v.message
    # it keeps exiting: a second restart, or back-off, is Failed
    twice = pod(**cs({"running": {}}, killed))
    twice["status"]["containerStatuses"][0]["restartCount"] = 2
    assert ws.verdict(DEP, [twice], H, 1, {}).state == "Failed"
    backoff = pod(**cs({"waiting": {"reason": "CrashLoopBackOff"}}, killed))
    assert ws.verdict(DEP, [backoff], H, 1, {}).state == "Failed"
    # and once ready again, it is Healthy
    back = pod(ready=True, **cs({"running": {}}, killed))
    assert ws.verdict(DEP, [back], H, 1, {}).state == "Healthy"


def test_a_pod_being_deleted_is_no_failure_whatever_its_container_last_did() -> None:
    killed = {"terminated": {"exitCode": 137, "reason": "Error"}}
    # restarted once by a node restart, then deleted: it turns unready while it stops
    going = pod("going", **cs({"running": {}}, killed))
    going["status"]["containerStatuses"][0]["restartCount"] = 1
    going["metadata"]["deletionTimestamp"] = "2026-12-03T17:40:00Z"
    v = ws.verdict(DEP, [going, pod("new")], H, 1, {})
    assert (v.state, v.reason) == ("Transitioning", "PodStarting")
    stopped = pod("stopped", **cs({"terminated": {"exitCode": 143, "reason": "Error"}}))
    stopped["metadata"]["deletionTimestamp"] = "2026-12-03T17:40:00Z"
    assert ws.verdict(DEP, [stopped], H, 1, {}).state == "Transitioning"
    # the same Pod not being deleted is the restart it is
    going["metadata"].pop("deletionTimestamp")
    assert ws.verdict(DEP, [going, pod("new")], H, 1, {}).reason == "ContainerFailed"


def test_a_fresh_endpoint_waits_for_kube_proxy_and_an_old_one_does_not() -> None:
    from kaci.status.webservice import PROPAGATION_S, SEEN_AT, propagating_for

    fresh = {SEEN_AT: 100.0, "metadata": {"managedFields": [{"time": "1970-01-01T00:01:40Z"}]}}
    assert propagating_for([fresh], 100.5) == pytest.approx(PROPAGATION_S - 0.5)
    assert propagating_for([fresh], 100.0 + PROPAGATION_S) == 0
    # listed at the operator's start (arrived now) but changed by the server long ago
    old = {SEEN_AT: 100.0, "metadata": {"managedFields": [{"time": "1970-01-01T00:00:10Z"}]}}
    assert propagating_for([old], 100.1) == 0
    svc = {"metadata": {"name": "w"}}
    ready = [{**fresh, "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}]}]
    assert ws.service_condition(svc, ready, 1, 100.5)["reason"] == "EndpointPropagating"
    assert ws.service_condition(svc, ready, 1, 102.0)["status"] == "True"
