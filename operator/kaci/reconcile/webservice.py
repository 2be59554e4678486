"""A Webservice's pass: its own Model and Image (options 1 and 2), the image it
deploys, the keys Secret, the Deployment and the Service; status from its Pods.

Steps: children -> image verdict -> keys -> Deployment and Service (applied only
when they differ from what is observed) -> status once. Observed children come
from the watches, or from what an apply just returned.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from kaci import api
from kaci.reconcile.common import Edges, Obj, Outcome, meta, write_status
from kaci.render import names
from kaci.render import webservice as render
from kaci.status import conditions
from kaci.status import webservice as ws_status


@dataclass(frozen=True)
class WebserviceSeen:
    """What a Webservice's pass observes (from the watches)."""

    body: Obj
    child_model: Obj | None = None  # the Model named like it (options 1)
    child_image: Obj | None = None  # the Image named like it (options 1 and 2)
    images: Sequence[Obj] = ()  # Images with the imageName it deploys (option 3)
    deployment: Obj | None = None
    service: Obj | None = None
    pods: Sequence[Obj] = ()
    endpoint_slices: Sequence[Obj] | None = field(default_factory=list)


@dataclass(frozen=True)
class ImageVerdict:
    """The image a Webservice can deploy now, or why not (pure)."""

    image: Obj | None
    condition: conditions.Condition
    failed: bool
    outcome: Outcome


def find_image(images: Sequence[Obj], version: int | None) -> Obj | None:
    """The Image of a name at `version`, or its highest version (pure)."""
    if version:
        images = [i for i in images if (i.get("status") or {}).get("version") == version]
    if not images:
        return None
    return max(images, key=lambda i: int((i.get("status") or {}).get("version") or 0))


def image_verdict(
    image: Obj | None, image_name: str, version: int | None, namespace: str, gen: int
) -> ImageVerdict:
    def cond(ok: bool, reason: str, message: str) -> conditions.Condition:
        return conditions.condition(api.IMAGE_READY, ok, reason, message, gen)

    if image is None:
        what = f"image {image_name}" + (f" version {version}" if version else "")
        msg = f"{what} not found in namespace {namespace}: create the Image first"
        return ImageVerdict(None, cond(False, api.REASON_IMAGE_NOT_FOUND, msg), True, Outcome.WAIT)
    ist = image.get("status") or {}
    if ist.get("state") == api.FAILED:
        ready = conditions.get(ist.get("conditions"), api.READY) or {}
        reason = ready.get("message") or "the image build failed"
        msg = f"image {image_name} failed: {reason}"
        # A failed Image that waits on something (a missing ConfigMap) is retried on
        # its own backoff; its next state wakes this Webservice.
        return ImageVerdict(None, cond(False, api.REASON_IMAGE_FAILED, msg), True, Outcome.WAIT)
    if ist.get("state") != api.SUCCEEDED or not ist.get("imageLocation"):
        msg = f"waiting for image {image_name} ({ist.get('state') or api.NOT_STARTED})"
        return ImageVerdict(None, cond(False, api.REASON_IMAGE_BUILDING, msg), False, Outcome.WAIT)
    msg = f"image {image_name} version {ist.get('version')}"
    return ImageVerdict(image, cond(True, api.IMAGE_READY, msg), False, Outcome.DONE)


def apply_if_changed(edges: Edges, desired: Obj, observed: Obj | None) -> Obj | None:
    """Apply `desired` unless the observed object is it already; what is there now."""
    desired = render.with_desired_hash(desired)
    if render.needs_apply(desired, observed):
        return edges.apply(desired)
    return observed


def ensure_children(seen: WebserviceSeen, edges: Edges, owner: Obj) -> Obj | None:
    """Options 1 and 2: the Model and Image the Webservice owns. Returns the child
    Image as it is now (None for option 3)."""
    namespace, name, _ = meta(seen.body)
    instance = edges.settings.operator_instance
    model_spec, image_spec = render.child_specs(name, dict(seen.body["spec"]))
    if model_spec is not None:
        desired = render.child(api.MODEL, name, namespace, owner, model_spec, instance)
        apply_if_changed(edges, desired, seen.child_model)
    if image_spec is None:
        return None
    desired = render.child(api.IMAGE, name, namespace, owner, image_spec, instance)
    return apply_if_changed(edges, desired, seen.child_image)


def ensure_keys(seen: WebserviceSeen, edges: Edges, owner: Obj) -> dict[str, str]:
    """The keys Secret: generated once, kept across passes (a user may rotate them)."""
    namespace, name, _ = meta(seen.body)
    data = edges.read_secret(namespace, api.keys_secret_name(name)) or {}
    keys = {k: v for k, v in data.items() if k in (api.PRIMARY_KEY, api.SECONDARY_KEY)}
    if set(keys) != {api.PRIMARY_KEY, api.SECONDARY_KEY}:
        keys = {
            api.PRIMARY_KEY: keys.get(api.PRIMARY_KEY) or secrets.token_urlsafe(32),
            api.SECONDARY_KEY: keys.get(api.SECONDARY_KEY) or secrets.token_urlsafe(32),
        }
        instance = edges.settings.operator_instance
        edges.apply(render.keys_secret(name, namespace, owner, keys, instance))
    return keys


def base_status(seen: WebserviceSeen, edges: Edges) -> Obj:
    namespace, name, gen = meta(seen.body)
    domain = edges.settings.cluster_domain
    return {
        "scoringUri": names.scoring_uri(name, namespace, domain),
        "swaggerUri": names.swagger_uri(name, namespace, domain),
        "observedGeneration": gen,
    }


def pod_logs(seen: WebserviceSeen, edges: Edges) -> dict[str, str]:
    """The last log lines of scoring containers that exited with an error."""
    namespace, _, _ = meta(seen.body)
    return {
        pod: edges.pod_log(namespace, pod, previous)[-2000:]
        for pod, previous in ws_status.pods_needing_logs(seen.pods)
    }


def serving_status(
    seen: WebserviceSeen,
    edges: Edges,
    deployment: Obj | None,
    service: Obj | None,
    image_cond: conditions.Condition,
) -> tuple[Obj, str]:
    """State, error and conditions from the Deployment, its Pods and the Service."""
    _, _, gen = meta(seen.body)
    old = seen.body.get("status") or {}
    desired_hash = ""
    if deployment is not None:
        template = (deployment.get("spec") or {}).get("template") or {}
        desired_hash = ((template.get("metadata") or {}).get("annotations") or {}).get(
            api.TEMPLATE_HASH_ANNOTATION, ""
        )
    memory = (seen.body["spec"].get("deploymentConfig") or {}).get("memoryGb")
    verdict = ws_status.verdict(
        deployment, list(seen.pods), desired_hash, memory, pod_logs(seen, edges)
    )
    st = ws_status.status(
        gen,
        image_cond,
        False,
        verdict,
        service,
        old.get("conditions"),
        edges.now(),
        endpoint_slices=seen.endpoint_slices if service is not None else None,
        epoch=edges.epoch(),
    )
    return st, verdict.state


def image_to_deploy(seen: WebserviceSeen, child_image: Obj | None) -> ImageVerdict:
    """Option 3's named Image (at its version, or the latest), else its own child's."""
    namespace, name, gen = meta(seen.body)
    ref = seen.body["spec"].get("image")
    if ref is None:
        return image_verdict(child_image, name, None, namespace, gen)
    version = ref.get("version")
    return image_verdict(
        find_image(list(seen.images), version), str(ref["name"]), version, namespace, gen
    )


def deploy(seen: WebserviceSeen, edges: Edges, owner: Obj, iv: ImageVerdict) -> tuple[Obj, str]:
    """The keys Secret, Deployment and Service for the image; the status they give."""
    namespace, name, _ = meta(seen.body)
    assert iv.image is not None
    ist = iv.image.get("status") or {}
    location = str(ist["imageLocation"])
    dc = dict(seen.body["spec"]["deploymentConfig"])
    keys = ensure_keys(seen, edges, owner) if dc.get("authEnabled") else None
    settings = edges.settings
    instance = settings.operator_instance
    template = render.pod_template(name, location, dc, keys, settings.image_pull_secret, instance)
    desired = render.deployment(name, namespace, owner, template, instance)
    deployment = apply_if_changed(edges, desired, seen.deployment)
    service = apply_if_changed(
        edges, render.service(name, namespace, owner, instance), seen.service
    )
    serving, state = serving_status(seen, edges, deployment, service, iv.condition)
    image_name = str(iv.image["spec"].get("imageName") or iv.image["metadata"]["name"])
    status = {
        **base_status(seen, edges),
        "imageLocation": location,
        "image": {"name": image_name, "version": ist.get("version")},
        "models": [
            {"name": m.get("name"), "version": m.get("version")} for m in ist.get("models") or []
        ],
        "keysSecret": api.keys_secret_name(name) if keys else None,
        **serving,
    }
    return status, state


def reconcile_webservice(seen: WebserviceSeen, edges: Edges) -> Outcome:
    body = seen.body
    _, _, gen = meta(body)
    owner = names.owner_reference(body, api.WEBSERVICE)
    iv = image_to_deploy(seen, ensure_children(seen, edges, owner))
    if iv.image is None:
        old = (body.get("status") or {}).get("conditions")
        st = ws_status.status(gen, iv.condition, iv.failed, None, None, old, edges.now())
        write_status(edges, api.WEBSERVICES, body, {**base_status(seen, edges), **st})
        return iv.outcome
    status, pods_state = deploy(seen, edges, owner, iv)
    write_status(edges, api.WEBSERVICES, body, status)
    if pods_state == api.HEALTHY and status["state"] == api.HEALTHY:
        return Outcome.DONE
    if pods_state == api.HEALTHY and ws_status.propagating_for(
        seen.endpoint_slices or [], edges.epoch()
    ):
        return Outcome.SOON
    if pods_state in (api.FAILED, api.UNSCHEDULABLE):
        return Outcome.FAILED  # the Pods' next change (or the resync) looks again
    return Outcome.WAIT
