"""Webservice: resolve the image (creating the child Model/Image), then a Deployment,
a Service and the keys Secret; status follows the Deployment and its Pods."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from kaci import conditions, kube, names, wsrender, wsstatus
from kaci.handlers.common import image_name_of, instance, instance_filter, now, poke
from kaci.settings import get_settings

log = logging.getLogger(__name__)

PLURAL = "webservices"


def child_specs(
    name: str, spec: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(Model spec, Image spec) the operator creates for modelFiles / models (pure)."""
    image_config = dict(spec.get("imageConfig") or {})
    if "modelFiles" in spec:
        source = dict(spec["modelFiles"])
        model_name = source.pop("modelName", None) or name
        model = {"modelName": model_name, "source": source}
        image = {"imageName": name, "models": [{"name": model_name}], **image_config}
        return model, image
    if "models" in spec:
        return None, {"imageName": name, "models": list(spec["models"]), **image_config}
    return None, None


def _child(
    kind: str, name: str, namespace: str, owner: dict[str, Any], spec: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "ownerReferences": [owner],
            "labels": {
                "app.kubernetes.io/managed-by": names.MANAGER,
                names.WEBSERVICE_LABEL: name,
                **({names.INSTANCE_LABEL: instance()} if instance() else {}),
            },
        },
        "spec": spec,
    }


def find_image(namespace: str, image_name: str, version: int | None) -> dict[str, Any] | None:
    images = [i for i in kube.list_custom("images", namespace) if image_name_of(i) == image_name]
    if version:
        images = [i for i in images if i.get("status", {}).get("version") == version]
    if not images:
        return None
    return max(images, key=lambda i: int(i.get("status", {}).get("version") or 0))


def ensure_keys(name: str, namespace: str, owner: dict[str, Any]) -> dict[str, str]:
    """The keys Secret: generated once, kept across reconciles (a user may rotate them)."""
    secret = kube.read_or_none(
        kube.core().read_namespaced_secret, names.keys_secret_name(name), namespace
    )
    data = (secret.data or {}) if secret is not None else {}
    keys = {
        k: base64.b64decode(v).decode()
        for k, v in data.items()
        if k in ("primaryKey", "secondaryKey")
    }
    if set(keys) != {"primaryKey", "secondaryKey"}:
        keys = {
            "primaryKey": keys.get("primaryKey") or secrets.token_urlsafe(32),
            "secondaryKey": keys.get("secondaryKey") or secrets.token_urlsafe(32),
        }
        kube.apply(wsrender.keys_secret(name, namespace, owner, keys, instance()))
    return keys


def _patch(namespace: str, name: str, fields: dict[str, Any]) -> None:
    kube.patch_status(PLURAL, namespace, name, fields)


def _image_condition(ok: bool, reason: str, message: str, gen: int) -> conditions.Condition:
    return conditions.condition("ImageReady", ok, reason, message, gen)


def _set_image(
    namespace: str,
    name: str,
    status: dict[str, Any],
    gen: int,
    cond: conditions.Condition,
    failed: bool,
) -> None:
    st = wsstatus.status(gen, cond, failed, None, None, status.get("conditions"), now())
    _patch(namespace, name, {**st, "observedGeneration": gen})


@kopf.on.resume(names.GROUP, names.VERSION, PLURAL, labels=instance_filter())
@kopf.on.create(names.GROUP, names.VERSION, PLURAL, labels=instance_filter())
@kopf.on.update(names.GROUP, names.VERSION, PLURAL, labels=instance_filter())
def reconcile_webservice(
    body: kopf.Body,
    spec: kopf.Spec,
    name: str,
    namespace: str | None,
    status: kopf.Status,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    assert namespace is not None  # all three kinds are namespaced
    settings = get_settings()
    gen = int(body["metadata"].get("generation", 1))
    st = dict(status)
    owner = names.owner_reference(dict(body), "Webservice")
    sp = dict(spec)
    base = {
        "scoringUri": names.scoring_uri(name, namespace, settings.cluster_domain),
        "swaggerUri": names.swagger_uri(name, namespace, settings.cluster_domain),
        "observedGeneration": gen,
    }
    if not st.get("conditions"):
        first = wsstatus.status(
            gen,
            _image_condition(False, "Resolving", "resolving the image", gen),
            False,
            None,
            None,
            None,
            now(),
        )
        _patch(namespace, name, {**first, **base})
        st["conditions"] = first["conditions"]

    model_spec, image_spec = child_specs(name, sp)
    if model_spec is not None:
        kube.apply(_child("Model", name, namespace, owner, model_spec))
    if image_spec is not None:
        kube.apply(_child("Image", name, namespace, owner, image_spec))
        image = kube.get_custom("images", namespace, name)
        image_name, want_version = name, None
    else:
        image_name, want_version = sp["image"]["name"], sp["image"].get("version")
        image = find_image(namespace, image_name, want_version)
    # Waiting for the image ends this reconcile: every change of the Image's state
    # wakes this Webservice at once (wake_webservices below), instead of a retry later.
    if image is None:
        what = f"image {image_name}" + (f" version {want_version}" if want_version else "")
        msg = f"{what} not found in namespace {namespace}: create the Image first"
        _set_image(
            namespace, name, st, gen, _image_condition(False, "ImageNotFound", msg, gen), True
        )
        return
    ist = image.get("status") or {}
    if ist.get("state") == "Failed":
        reason = next(
            (c.get("message") for c in ist.get("conditions") or [] if c.get("type") == "Ready"),
            "the image build failed",
        )
        msg = f"image {image_name} failed: {reason}"
        _set_image(namespace, name, st, gen, _image_condition(False, "ImageFailed", msg, gen), True)
        return
    if ist.get("state") != "Succeeded" or not ist.get("imageLocation"):
        msg = f"waiting for image {image_name} ({ist.get('state') or 'NotStarted'})"
        _set_image(
            namespace, name, st, gen, _image_condition(False, "ImageBuilding", msg, gen), False
        )
        return

    location = str(ist["imageLocation"])
    dc = dict(sp["deploymentConfig"])
    keys = ensure_keys(name, namespace, owner) if dc.get("authEnabled") else None
    template = wsrender.pod_template(
        name, location, dc, keys, settings.image_pull_secret, instance()
    )
    kube.apply(wsrender.deployment(name, namespace, owner, template, instance()))
    kube.apply(wsrender.service(name, namespace, owner, instance()))
    image_cond = _image_condition(
        True, "ImageReady", f"image {image_name} version {ist.get('version')}", gen
    )
    _patch(
        namespace,
        name,
        {
            **base,
            "imageLocation": location,
            "image": {"name": image_name, "version": ist.get("version")},
            "models": ist.get("models") or [],
            "keysSecret": names.keys_secret_name(name) if keys else None,
            "conditions": conditions.merge(st.get("conditions"), [image_cond], now()),
        },
    )
    refresh_status(namespace, name)
    logger.info(f"webservice {name} applied with {location}")


def refresh_status(namespace: str, name: str) -> None:
    """Recompute state and conditions from the Deployment and its Pods."""
    ws = kube.get_custom(PLURAL, namespace, name)
    if ws is None:
        return
    gen = int(ws["metadata"].get("generation", 1))
    st = ws.get("status") or {}
    image_cond = conditions.get(st.get("conditions"), "ImageReady")
    if image_cond is None or image_cond.get("status") != "True":
        return  # the reconcile owns status until the image is ready
    ser = kube.to_json
    dep = kube.read_or_none(kube.apps().read_namespaced_deployment, name, namespace)
    dep_json = ser(dep) if dep is not None else None
    pods = [
        ser(p)
        for p in kube.core()
        .list_namespaced_pod(namespace, label_selector=f"{names.WEBSERVICE_LABEL}={name}")
        .items
    ]
    svc = kube.read_or_none(kube.core().read_namespaced_service, name, namespace)
    desired = ""
    if dep_json is not None:
        desired = (
            (dep_json["spec"]["template"].get("metadata") or {}).get("annotations") or {}
        ).get(names.TEMPLATE_HASH_ANNOTATION, "")
    logs: dict[str, str] = {}
    for pod_name, previous in wsstatus.pods_needing_logs(pods):
        text = kube.read_or_none(
            kube.core().read_namespaced_pod_log,
            pod_name,
            namespace,
            container="scoring",
            previous=previous,
            tail_lines=12,
        )
        logs[pod_name] = str(text or "")[-2000:]
    memory = (ws.get("spec", {}).get("deploymentConfig") or {}).get("memoryGb")
    v = wsstatus.verdict(dep_json, pods, desired, memory, logs)
    img = {
        "type": "ImageReady",
        "status": "True",
        "reason": image_cond.get("reason", "ImageReady"),
        "message": image_cond.get("message", ""),
        "observedGeneration": gen,
    }
    new = wsstatus.status(
        gen,
        img,
        False,
        v,
        ser(svc) if svc is not None else None,
        st.get("conditions"),
        now(),
        endpoint_slices=_endpoint_slices(namespace, name) if svc is not None else None,
    )
    if _same(st, new):
        return
    _patch(namespace, name, new)


# Namespaces where EndpointSlices may not be read (said once each).
_slices_forbidden: set[str] = set()


def _endpoint_slices(namespace: str, service: str) -> list[dict[str, Any]] | None:
    """The Service's EndpointSlices; None when they cannot be read (no RBAC for them:
    then the Service's existence stands for ServiceReady, as its message says)."""
    try:
        slices = kube.discovery().list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={service}"
        )
    except ApiException as e:
        if e.status != 403:
            raise
        if namespace not in _slices_forbidden:
            _slices_forbidden.add(namespace)
            log.warning(
                "cannot list EndpointSlices in %s (HTTP 403): ServiceReady there means "
                "the Service exists, not that it routes to the Pod yet",
                namespace,
            )
        return None
    return [kube.to_json(s) for s in slices.items]


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def strip(conds: Any) -> list[tuple[Any, ...]]:
        return sorted(
            (
                c.get("type"),
                c.get("status"),
                c.get("reason"),
                c.get("message"),
                c.get("observedGeneration"),
            )
            for c in conds or []
        )

    return (
        old.get("state") == new["state"]
        and old.get("error") == new["error"]
        and strip(old.get("conditions")) == strip(new["conditions"])
    )


@kopf.on.event(
    "apps",
    "v1",
    "deployments",
    labels={"app.kubernetes.io/name": "kaci-webservice", **instance_filter()},
)
@kopf.on.event(
    "", "v1", "pods", labels={"app.kubernetes.io/name": "kaci-webservice", **instance_filter()}
)
# EndpointSlices carry their Service's labels (the EndpointSlice controller copies
# them): a Pod becoming an endpoint makes the Webservice Ready (ServiceReady).
@kopf.on.event(
    "discovery.k8s.io",
    "v1",
    "endpointslices",
    labels={"app.kubernetes.io/name": "kaci-webservice", **instance_filter()},
)
def follow_children(namespace: str | None, labels: Mapping[str, str], **_: Any) -> None:
    owner = labels.get(names.WEBSERVICE_LABEL)
    if owner and namespace:
        refresh_status(namespace, owner)


def image_name_deployed(name: str, spec: Mapping[str, Any]) -> str:
    """The imageName a Webservice deploys: spec.image's, else its own child Image's,
    which carries the Webservice's name (child_specs) (pure)."""
    ref = spec.get("image") or {}
    return str(ref.get("name") or name)


def wake_value(image: Mapping[str, Any], waiter: Mapping[str, str]) -> str | None:
    """The poke that makes a Webservice look at its Image again, or None when it need
    not (pure). `waiter` is the Webservice as the index keeps it: name, the image it
    deploys now (location) and the last poke it got. The value names the Image's state
    and content, so each change wakes it once; an image it deploys already wakes nothing."""
    st = image.get("status") or {}
    state = str(st.get("state") or "NotStarted")
    if state == "Succeeded" and st.get("imageLocation") == waiter["location"]:
        return None
    value = f"{state}:{str(st.get('contentHash') or '')[:16]}"
    return None if value == waiter["poke"] else value


@kopf.index(names.GROUP, names.VERSION, PLURAL, labels=instance_filter())
def webservices_by_image(
    name: str,
    namespace: str | None,
    spec: kopf.Spec,
    status: kopf.Status,
    annotations: kopf.Annotations,
    **_: Any,
) -> dict[tuple[str | None, str], dict[str, str]]:
    """(namespace, imageName) -> the Webservices deploying it: who to wake."""
    return {
        (namespace, image_name_deployed(name, spec)): {
            "name": name,
            "location": str(status.get("imageLocation") or ""),
            "poke": str(annotations.get(names.POKE_ANNOTATION, "")),
        }
    }


@kopf.on.event(names.GROUP, names.VERSION, "images", labels=instance_filter())
def wake_webservices(
    body: kopf.Body,
    namespace: str | None,
    type: str,
    webservices_by_image: kopf.Index[tuple[str | None, str], dict[str, str]] | None = None,
    **_: Any,
) -> None:
    """An Image changed (or was listed at start): wake the Webservices deploying it."""
    if type == "DELETED" or namespace is None or webservices_by_image is None:
        return
    for waiter in webservices_by_image.get((namespace, image_name_of(dict(body))), []):
        value = wake_value(body, waiter)
        if value is not None:
            poke(PLURAL, namespace, waiter["name"], value)
