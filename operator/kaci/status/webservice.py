"""A Webservice's state from its Deployment and Pods (pure: objects in, status out).

Objects are in their JSON form (camelCase keys, as the API server sends them).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kaci import api
from kaci.status import conditions

Obj = Mapping[str, Any]

PULL_ERRORS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}


@dataclass(frozen=True)
class Verdict:
    state: str  # Transitioning | Healthy | Unhealthy | Failed | Unschedulable
    pod_ready: bool
    reason: str
    message: str
    code: str | None = None  # error code when something failed


def _annot(pod: Obj, key: str) -> str | None:
    return ((pod.get("metadata") or {}).get("annotations") or {}).get(key)


def _is_ready(pod: Obj) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def _active(pod: Obj) -> bool:
    """A Pod that counts as a replica (as a ReplicaSet counts them): not being
    deleted, not finished."""
    phase = (pod.get("status") or {}).get("phase")
    return not (pod.get("metadata") or {}).get("deletionTimestamp") and phase not in (
        "Succeeded",
        "Failed",
    )


def replica_status(name: str, pods: Sequence[Obj]) -> dict[str, Any]:
    """status.replicas / readyReplicas / selector: the scale subresource's view, counted
    from the Pods the state is judged from, so the two agree in the same write. (The
    Deployment's own counts follow seconds later, which would be a second write for
    each start: at 1,000 Webservices, half a status patch per Webservice.)"""
    return {
        "replicas": sum(1 for p in pods if _active(p)),
        "readyReplicas": sum(1 for p in pods if _is_ready(p)),
        "selector": f"{api.WEBSERVICE_LABEL}={name}",
    }


def _name(pod: Obj) -> str:
    return str((pod.get("metadata") or {}).get("name", ""))


def pods_needing_logs(pods: Sequence[Obj]) -> list[tuple[str, bool]]:
    """(pod name, previous?) for Pods whose scoring container terminated with an error
    and was not killed for memory: their log says why (init() raised, ...)."""
    out: list[tuple[str, bool]] = []
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            term = (cs.get("state") or {}).get("terminated")
            last = (cs.get("lastState") or {}).get("terminated")
            if term and term.get("exitCode", 0) != 0 and term.get("reason") != "OOMKilled":
                out.append((_name(pod), False))
            elif last and last.get("exitCode", 0) != 0 and last.get("reason") != "OOMKilled":
                out.append((_name(pod), True))
    return out


def _pod_problem(pod: Obj, memory_gb: Any, logs: Mapping[str, str]) -> Verdict | None:
    """Why this Pod cannot become ready, in user words; None while it may still."""
    status = pod.get("status") or {}
    for c in status.get("conditions") or []:
        if (
            c.get("type") == "PodScheduled"
            and c.get("status") == "False"
            and c.get("reason") == "Unschedulable"
        ):
            return Verdict(
                "Unschedulable",
                False,
                "Unschedulable",
                "not enough CPU/memory on any node: lower cpuCores/memoryGb "
                f"(scheduler: {c.get('message', '')})",
                "Unschedulable",
            )
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        term = (cs.get("state") or {}).get("terminated") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        if waiting.get("reason") in PULL_ERRORS:
            return Verdict(
                "Failed",
                False,
                "ImagePullFailed",
                f"the scoring image could not be pulled ({waiting.get('reason')}: "
                f"{waiting.get('message', '')}): check the Image and the registry",
                "ImagePullFailed",
            )
        # One exit may be a one-off (a killed process, a node hiccup): the kubelet
        # restarts the container and it is Unhealthy meanwhile. Failed is for a
        # container that keeps exiting: back-off, or a second restart.
        looping = waiting.get("reason") == "CrashLoopBackOff" or int(cs.get("restartCount", 0)) >= 2
        state = "Failed" if looping else "Unhealthy"
        if term.get("reason") == "OOMKilled" or last.get("reason") == "OOMKilled":
            return Verdict(
                state,
                False,
                "OOMKilled",
                f"the container ran out of memory: raise memoryGb (now {memory_gb})",
                "OOMKilled",
            )
        dead = term if term.get("exitCode", 0) != 0 else last
        if dead and dead.get("exitCode", 0) != 0:
            tail = logs.get(_name(pod), "").strip()
            if waiting.get("reason") == "CrashLoopBackOff":
                crash = " (crash loop: restarting with back-off)"
            else:
                crash = "" if looping else " (restarting it)"
            msg = f"the scoring container exited with code {dead.get('exitCode')}{crash}"
            if tail:
                msg += f"; its last log lines: {tail}"
            else:
                msg += ": init() in score.py probably raised; see the Pod's logs"
            return Verdict(state, False, "ContainerFailed", msg, "ContainerFailed")
        if waiting.get("reason") == "CreateContainerConfigError":
            # The only config a scoring container reads is kaci's own keys Secret, which
            # the operator creates: this is the kubelet's Secret cache catching up ("failed
            # to sync secret cache", seen on a busy node), and the kubelet tries again.
            # Failed would make `wait_for_deployment` give up on a Pod about to start.
            return Verdict(
                "Transitioning",
                False,
                "CreateContainerConfigError",
                "the kubelet could not create the container yet, it tries again: "
                f"{waiting.get('message', '')}",
            )
        if waiting.get("reason") == "CreateContainerError":
            return Verdict(
                "Failed",
                False,
                waiting["reason"],
                f"the container could not be created: {waiting.get('message', '')}",
                str(waiting["reason"]),
            )
    return None


def verdict(
    deployment: Obj | None,
    pods: Sequence[Obj],
    desired_hash: str,
    memory_gb: Any,
    logs: Mapping[str, str],
) -> Verdict:
    """Healthy when a Pod of the current revision is ready; Failed/Unschedulable with
    the reason when it cannot become ready; Transitioning otherwise."""
    if deployment is None:
        return Verdict("Transitioning", False, "Creating", "creating the Deployment")
    current = [p for p in pods if _annot(p, api.TEMPLATE_HASH_ANNOTATION) == desired_hash]
    old_ready = [p for p in pods if p not in current and _is_ready(p)]
    ready = sum(1 for p in current if _is_ready(p))
    if ready:
        # Healthy once a Pod of the current revision serves: more replicas (a scale-out,
        # a restart of one of them) add capacity, they do not make the service unhealthy.
        want = int(((deployment.get("spec") or {}).get("replicas")) or 1)
        if want <= 1 and ready == 1:
            return Verdict("Healthy", True, "PodReady", "the scoring Pod is ready")
        return Verdict("Healthy", True, "PodReady", f"{ready} of {want} scoring Pods are ready")
    # A Pod being deleted is going away, whatever its containers last did: the exit a
    # node restart once left in its lastState, or its own SIGTERM's, is not a failure of
    # the service (a deleted or drained Pod would otherwise flash Unhealthy).
    for pod in (p for p in current if not (p.get("metadata") or {}).get("deletionTimestamp")):
        problem = _pod_problem(pod, memory_gb, logs)
        if problem:
            if old_ready:
                how = "failed" if problem.code else "is not ready yet"
                return Verdict(
                    problem.state,
                    False,
                    problem.reason,
                    f"the new revision {how}, the previous one still serves requests: "
                    f"{problem.message}",
                    problem.code,
                )
            return problem
    if not current:
        return Verdict("Transitioning", False, "PodPending", "waiting for the scoring Pod")
    if old_ready:
        return Verdict(
            "Transitioning",
            False,
            "RollingUpdate",
            "rolling to the new revision; the previous one still serves",
        )
    return Verdict(
        "Transitioning",
        False,
        "PodStarting",
        "the scoring Pod is starting (init() runs before it turns ready)",
    )


def pod_ready_condition(v: Verdict, generation: int) -> conditions.Condition:
    return conditions.condition("PodReady", v.pod_ready, v.reason, v.message, generation)


def has_ready_endpoint(endpoint_slices: Sequence[Obj]) -> bool:
    """Whether the Service's EndpointSlices list a ready Pod: what clients reach through
    it (kube-proxy and the API server's service proxy follow them, a moment after the
    Pod turns Ready). An endpoint without a ready condition counts as ready (API rule)."""
    return any(
        (ep.get("conditions") or {}).get("ready") is not False and ep.get("addresses")
        for s in endpoint_slices
        for ep in s.get("endpoints") or []
    )


# kube-proxy programs a Service's routes at most once per second (iptables
# minSyncPeriod, 1 s by default) after its EndpointSlices change: until then a client
# that waited for Ready would be refused. The count starts when the change arrived
# (SEEN_AT, put beside the slice by the index); a slice the API server last changed
# long ago (whole seconds in managedFields) is settled even when it arrived just now,
# as every slice does when the operator starts.
PROPAGATION_S = 1.2
SEEN_AT = "kaciSeenAt"


def changed_at(obj: Obj, manager: str | None = None, subresource: str | None = None) -> float:
    """When the object last changed (by `manager`, in `subresource`: "" the object
    itself), from its managedFields' times (whole seconds); 0.0 if they do not say."""
    times = [
        datetime.datetime.fromisoformat(str(f["time"]).replace("Z", "+00:00")).timestamp()
        for f in (obj.get("metadata") or {}).get("managedFields") or []
        if f.get("time")
        and (manager is None or f.get("manager") == manager)
        and (subresource is None or (f.get("subresource") or "") == subresource)
    ]
    return max(times, default=0.0)


def propagating_for(endpoint_slices: Sequence[Obj], now: float | None) -> float:
    """Seconds until a ready endpoint's route is surely programmed (0: it is)."""
    if now is None:
        return 0.0
    wait = 0.0
    for s in endpoint_slices:
        if SEEN_AT not in s:
            continue
        changed = changed_at(s)
        if changed and now - changed >= PROPAGATION_S + 1.0:
            continue  # changed long ago (the +1: managedFields keep whole seconds)
        wait = max(wait, float(s[SEEN_AT]) + PROPAGATION_S - now)
    return wait


def service_condition(
    service: Obj | None,
    endpoint_slices: Sequence[Obj] | None,
    generation: int,
    now: float | None = None,
) -> conditions.Condition:
    """ServiceReady: the Service exists and routes to a ready Pod (endpoint_slices None:
    not known, e.g. no right to read them, so the Service's existence decides)."""
    if service is None:
        return conditions.condition(
            "ServiceReady", False, "Creating", "creating the Service", generation
        )
    if endpoint_slices is not None and not has_ready_endpoint(endpoint_slices):
        return conditions.condition(
            "ServiceReady",
            False,
            "NoReadyEndpoint",
            "the Service does not route to a ready scoring Pod yet",
            generation,
        )
    if endpoint_slices is not None and propagating_for(endpoint_slices, now) > 0:
        return conditions.condition(
            "ServiceReady",
            False,
            "EndpointPropagating",
            "the Service lists the ready Pod; kube-proxy is programming its route",
            generation,
        )
    message = (
        "the Service is in place"
        if endpoint_slices is None
        else "the Service routes to a ready scoring Pod"
    )
    return conditions.condition("ServiceReady", True, "ServiceReady", message, generation)


def status(
    generation: int,
    image_ready: conditions.Condition,
    image_failed: bool,
    v: Verdict | None,
    service: Obj | None,
    old_conditions: Sequence[Mapping[str, Any]] | None,
    now: str,
    endpoint_slices: Sequence[Obj] | None = None,
    epoch: float | None = None,
) -> dict[str, Any]:
    """The status fields that follow the Pods: state, error, conditions (`epoch`: the
    time now, for the route's propagation)."""
    pod_cond = (
        pod_ready_condition(v, generation)
        if v
        else conditions.condition(
            "PodReady", False, "WaitingForImage", "waiting for the image", generation
        )
    )
    svc_cond = service_condition(service, endpoint_slices, generation, epoch)
    parts = [image_ready, pod_cond, svc_cond]
    ready = conditions.ready(parts, generation)
    if image_failed:
        state, error = "Failed", {"code": image_ready["reason"], "message": image_ready["message"]}
    elif v is None:
        state, error = "Transitioning", None
    else:
        state = (
            v.state if (v.state != "Healthy" or svc_cond["status"] == "True") else "Transitioning"
        )
        error = {"code": v.code, "message": v.message} if v.code else None
    return {
        "state": state,
        "error": error,
        "conditions": conditions.merge(old_conditions, [ready, *parts], now),
    }


# A Webservice on its way is told at most every PROGRESS_WRITE_S: the steps of a Pod's
# start (created, scheduled, started, ready, routed) come within a second or two of
# each other, and each would be a status patch and an Event, for a story nobody reads
# at that pace. A change of state, an error, a new generation and Ready are written at
# once; the step being held is written by a later pass (one waiting on its Pods is
# looked at again on its backoff).
PROGRESS_WRITE_S = 5.0


def progress_held(body: Obj, new: Mapping[str, Any], now: float | None) -> bool:
    """Whether the status `new` only tells the next step of the same Transitioning
    story within PROGRESS_WRITE_S of the operator's last status write (pure)."""
    old = body.get("status") or {}
    if now is None or not (old.get("state") == new.get("state") == api.TRANSITIONING):
        return False
    if new.get("error") or old.get("observedGeneration") != new.get("observedGeneration"):
        return False
    written = changed_at(body, api.MANAGER, "status")
    return bool(written) and now - written < PROGRESS_WRITE_S
