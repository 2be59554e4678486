"""kopf wiring: the indexes (what is observed), the event handlers (who to look at
again), and the work queue's start and stop. No reconcile logic lives here.

Every watch event of a kaci object queues that object and the objects waiting on
it, in memory: a Model queues the Images naming its modelName, an Image the
Webservices deploying its imageName and the Webservice owning it, a child
(Deployment, Pod, Service, EndpointSlice) its Webservice. Nothing is written to
wake anyone, so a wake-up is never lost to a value it shares with an earlier one;
and a waiting object is looked at again on its backoff anyway (handlers.queue).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf

from kaci import api
from kaci.edges import metrics
from kaci.handlers import runner
from kaci.handlers.prune import Indexed, Resource
from kaci.handlers.store import Index, snapshot
from kaci.reconcile.image import image_name_of
from kaci.reconcile.model import model_name_of
from kaci.render.webservice import image_name_deployed
from kaci.settings import get_settings
from kaci.status.webservice import SEEN_AT

log = logging.getLogger(__name__)


def instance_filter() -> dict[str, Any]:
    """kopf label filter: this operator's objects only (see Settings.operator_instance)."""
    return {api.INSTANCE_LABEL: get_settings().operator_instance or kopf.ABSENT}


def child_filter() -> dict[str, Any]:
    return {api.NAME_LABEL: api.WEBSERVICE_APP, **instance_filter()}


def child_selector(instance: str | None) -> str:
    """child_filter as a label selector, for the API server (pure)."""
    mine = f"{api.INSTANCE_LABEL}={instance}" if instance else f"!{api.INSTANCE_LABEL}"
    return f"{api.NAME_LABEL}={api.WEBSERVICE_APP},{mine}"


G, V = api.GROUP, api.VERSION


# --- indexes: the observed state, filled before any handler runs -----------------

# The index functions are coroutines that never await: kopf runs a plain function in
# a thread pool, a hop to a thread and back for every watch event of every object
# (a tenth of the operator's CPU at 1,000 Webservices), for a copy of a dict.


@kopf.index(G, V, api.MODELS, labels=instance_filter())
async def model_objects(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Any, Any]:
    return {(namespace, name): snapshot(body)}


# Images take Models, and Webservices Images, of any operator instance in their
# namespace (a canary operator's Webservice may deploy the main one's Image): the
# by-name indexes and the wake-ups of dependents are not filtered by instance.
@kopf.index(G, V, api.MODELS)
async def models_by_name(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, model_name_of(body)): snapshot(body)}


@kopf.index(G, V, api.IMAGES, labels=instance_filter())
async def image_objects(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Any, Any]:
    return {(namespace, name): snapshot(body)}


@kopf.index(G, V, api.IMAGES)
async def images_by_name(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, image_name_of(body)): snapshot(body)}


@kopf.index(G, V, api.IMAGES, labels=instance_filter())
async def images_by_model(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[Any, Any]:
    """(namespace, modelName) -> the Images built from it: who a Model wakes."""
    return {(namespace, str(m["name"])): name for m in spec.get("models") or []}


@kopf.index(G, V, api.WEBSERVICES, labels=instance_filter())
async def webservice_objects(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Any, Any]:
    return {(namespace, name): snapshot(body)}


@kopf.index(G, V, api.WEBSERVICES, labels=instance_filter())
async def webservices_by_image(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[Any, Any]:
    """(namespace, imageName) -> the Webservices deploying it: who an Image wakes."""
    return {(namespace, image_name_deployed(name, spec)): name}


def _owner(labels: Mapping[str, str]) -> str | None:
    return labels.get(api.WEBSERVICE_LABEL)


# The children of a Webservice, each kind in an index by (namespace, owning
# Webservice): the Deployment, Service and Pods it runs on, and AKS-class serving's
# HPA, PDB, Ingress and NetworkPolicy, compared with what a pass wants instead of
# applied again on every pass, and deleted when no longer wanted (autoscale off, one
# replica, ingress off, the policy setting off).
CHILD_INDEXES = {
    "ws_deployments": ("apps", "v1", "deployments"),
    "ws_services": ("", "v1", "services"),
    "ws_pods": ("", "v1", "pods"),
    "ws_hpas": ("autoscaling", "v2", "horizontalpodautoscalers"),
    "ws_pdbs": ("policy", "v1", "poddisruptionbudgets"),
    "ws_ingresses": ("networking.k8s.io", "v1", "ingresses"),
    "ws_network_policies": ("networking.k8s.io", "v1", "networkpolicies"),
}


async def child_by_owner(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[Any, Any]:
    owner = _owner(labels)
    return {(namespace, owner): snapshot(body)} if owner else {}


for _id, (_group, _version, _plural) in CHILD_INDEXES.items():
    kopf.index(_group, _version, _plural, labels=child_filter(), id=_id)(child_by_owner)

ENDPOINT_SLICES = ("discovery.k8s.io", "v1", "endpointslices")
# Every index of a Webservice's children and its kind (EndpointSlices have an index
# function of their own, below): the kinds the operator watches only for children.
CHILD_RESOURCES = {**CHILD_INDEXES, "ws_endpoint_slices": ENDPOINT_SLICES}
CHILD_KINDS = frozenset(CHILD_RESOURCES.values())


def select_children_on_server(settings: kopf.OperatorSettings) -> None:
    """Ask the API server for the children only: kopf's `labels=` filters what it was
    sent, so without this the operator lists, watches and decodes every Pod, Service,
    Deployment and EndpointSlice of the cluster (a shared cluster's other workloads,
    each of their changes) to keep a few. Every handler of these kinds filters on
    child_filter(), so the selector drops nothing one of them wants."""
    selector = child_selector(get_settings().operator_instance)
    for group, version, plural in CHILD_KINDS:
        settings.watching.label_selectors[group, version, plural] = selector


# EndpointSlices carry their Service's labels (the EndpointSlice controller copies
# them): a Pod becoming an endpoint makes the Webservice Ready (ServiceReady).
@kopf.index(*ENDPOINT_SLICES, labels=child_filter())
async def ws_endpoint_slices(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[Any, Any]:
    """With the moment the change arrived: kube-proxy follows a little later."""
    owner = _owner(labels)
    return {(namespace, owner): {**snapshot(body), SEEN_AT: time.time()}} if owner else {}


# --- events: who to look at again ------------------------------------------------


# A child's events come in bursts (a Pod is created, scheduled, started, turns
# ready within a second): its Webservice is looked at once per burst.
CHILD_COALESCE_S = 0.2

# What each kaci object looked like when it was last woken for itself: its own status
# writes change none of it, so they do not make it look at itself again (kubebuilder's
# generation-changed predicate, plus labels and annotations, which users and the SDK's
# key rotation change). Its dependents are woken by every event all the same.
_last_seen: dict[tuple[str, str, str], tuple[Any, ...]] = {}


def _essence(body: Mapping[str, Any]) -> tuple[Any, ...]:
    m = body.get("metadata") or {}
    annotations = {
        k: v for k, v in (m.get("annotations") or {}).items() if not k.startswith("kopf.")
    }
    return (
        m.get("uid"),
        m.get("generation"),
        tuple(sorted((m.get("labels") or {}).items())),
        tuple(sorted(annotations.items())),
        m.get("deletionTimestamp"),
    )


def wake_self(kind: str, namespace: str, name: str, body: Mapping[str, Any], type: str) -> None:
    key = (kind, namespace, name)
    if type == "DELETED":
        _last_seen.pop(key, None)
        runner.wake(key, _why(body, type), gone=True)
        return
    essence = _essence(body)
    # Listed or added, or more than its status changed.
    if type in (None, "ADDED") or _last_seen.get(key) != essence:
        _last_seen[key] = essence
        runner.wake(key, _why(body, type))


def _why(body: Mapping[str, Any], event: str | None) -> str:
    """A wake-up names the dependency object, never a name several objects share."""
    m = body.get("metadata") or {}
    rv = m.get("resourceVersion")
    return f"{body.get('kind')}/{m.get('name')} uid={m.get('uid')} rv={rv} ({event or 'listed'})"


@kopf.on.event(G, V, api.MODELS, labels=instance_filter())
async def model_changed(
    body: kopf.Body, name: str, namespace: str | None, type: str, **_: Any
) -> None:
    wake_self(api.MODEL, namespace or "", name, body, type)


@kopf.on.event(G, V, api.MODELS)
async def model_dependents(
    body: kopf.Body, namespace: str | None, type: str, **kwargs: Any
) -> None:
    metrics.watch_event(api.MODEL, type)
    runner.saw(_resource(kwargs), type)
    ns, why = namespace or "", _why(body, type)
    waiting: kopf.Index[Any, Any] = kwargs["images_by_model"]
    for image in waiting.get((ns, model_name_of(body)), []):
        runner.wake((api.IMAGE, ns, str(image)), why)


@kopf.on.event(G, V, api.IMAGES, labels=instance_filter())
async def image_changed(
    body: kopf.Body, name: str, namespace: str | None, type: str, **_: Any
) -> None:
    wake_self(api.IMAGE, namespace or "", name, body, type)


@kopf.on.event(G, V, api.IMAGES)
async def image_dependents(
    body: kopf.Body, namespace: str | None, type: str, **kwargs: Any
) -> None:
    metrics.watch_event(api.IMAGE, type)
    runner.saw(_resource(kwargs), type)
    ns, why = namespace or "", _why(body, type)
    waiting: kopf.Index[Any, Any] = kwargs["webservices_by_image"]
    for ws in waiting.get((ns, image_name_of(body)), []):
        runner.wake((api.WEBSERVICE, ns, str(ws)), why)
    for owner in body["metadata"].get("ownerReferences") or []:
        if owner.get("kind") == api.WEBSERVICE:
            runner.wake((api.WEBSERVICE, ns, str(owner["name"])), why)


@kopf.on.event(G, V, api.WEBSERVICES, labels=instance_filter())
async def webservice_changed(
    body: kopf.Body, name: str, namespace: str | None, type: str, **kwargs: Any
) -> None:
    metrics.watch_event(api.WEBSERVICE, type)
    runner.saw(_resource(kwargs), type)
    wake_self(api.WEBSERVICE, namespace or "", name, body, type)


@kopf.on.event("apps", "v1", "deployments", labels=child_filter())
@kopf.on.event("", "v1", "pods", labels=child_filter())
@kopf.on.event("", "v1", "services", labels=child_filter())
@kopf.on.event(*ENDPOINT_SLICES, labels=child_filter())
# Not HPAs: the HPA controller writes their status every 15 s, which would wake each
# autoscaled Webservice as often for nothing; a deleted HPA comes back at the resync.
@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels=child_filter())
@kopf.on.event("networking.k8s.io", "v1", "ingresses", labels=child_filter())
@kopf.on.event("networking.k8s.io", "v1", "networkpolicies", labels=child_filter())
async def child_changed(
    body: kopf.Body, namespace: str | None, labels: kopf.Labels, type: str, **kwargs: Any
) -> None:
    metrics.watch_event(str(body.get("kind")), type)
    runner.saw(_resource(kwargs), type)
    owner = _owner(labels)
    if owner:
        why = _why(body, type)
        runner.wake((api.WEBSERVICE, namespace or "", owner), why, after=CHILD_COALESCE_S)


# --- start and stop --------------------------------------------------------------


def watched_resources(instance: str | None) -> dict[Resource, Indexed]:
    """Each watched resource, the indexes holding its objects, and the watch's selector:
    what handlers.prune lists again."""
    selector = child_selector(instance)
    return {
        (G, V, api.MODELS): Indexed(("model_objects", "models_by_name")),
        (G, V, api.IMAGES): Indexed(("image_objects", "images_by_name")),
        (G, V, api.WEBSERVICES): Indexed(("webservice_objects",)),
        **{kind: Indexed((index,), selector) for index, kind in CHILD_RESOURCES.items()},
    }


def _resource(kwargs: Mapping[str, Any]) -> Resource:
    r = kwargs["resource"]
    return (str(r.group), str(r.version), str(r.plural))


@kopf.on.startup()
async def start(**kwargs: Any) -> None:
    """Start the queue's workers and the resync, on kopf's loop, with its indexes."""
    indexes: dict[str, Index] = {k: v for k, v in kwargs.items() if k in runner.INDEXES}
    settings = get_settings()
    runner.start(indexes, settings, watched_resources(settings.operator_instance))


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    await runner.stop()
