"""A Webservice's pass: its own Model and Image (options 1 and 2), the image it
deploys, the keys Secret, the Deployment and the Service, and for AKS-class serving
its HorizontalPodAutoscaler, PodDisruptionBudget and Ingress; status from its Pods.

Steps: children -> image verdict -> keys -> Deployment, Service, HPA, PDB, Ingress
(applied only when they differ from what is observed, deleted when no longer
wanted) -> status once. Observed children come from the watches, or from what an
apply just returned.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from kaci import api
from kaci.reconcile.common import Edges, Obj, Outcome, meta, write_status
from kaci.render import aks, names
from kaci.render import webservice as render
from kaci.status import access as ws_access
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
    hpa: Obj | None = None
    pdb: Obj | None = None
    ingress: Obj | None = None
    network_policy: Obj | None = None


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


def new_signing_key() -> str:
    """32 random bytes, base64url without padding (the token contract)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def ensure_keys(
    seen: WebserviceSeen, edges: Edges, owner: Obj, token: bool = False
) -> dict[str, str]:
    """The keys Secret: generated once, kept across passes (a user may rotate them).
    Key auth: the two keys; token auth (`token`): the signing key too, and only it is
    returned (what the Pods get, whose hash rolls them when it changes)."""
    namespace, name, _ = meta(seen.body)
    data = edges.read_secret(namespace, api.keys_secret_name(name)) or {}
    wanted = (api.PRIMARY_KEY, api.SECONDARY_KEY) + ((api.TOKEN_SIGNING_KEY,) if token else ())
    keys = {k: v for k, v in data.items() if k in wanted and v}
    if not set(wanted) <= set(keys):
        fresh = {
            api.PRIMARY_KEY: secrets.token_urlsafe(32),
            api.SECONDARY_KEY: secrets.token_urlsafe(32),
            api.TOKEN_SIGNING_KEY: new_signing_key(),
        }
        keys = {k: keys.get(k) or fresh[k] for k in wanted}
        instance = edges.settings.operator_instance
        edges.apply(render.keys_secret(name, namespace, owner, keys, instance))
    if token:
        return {api.TOKEN_SIGNING_KEY: keys[api.TOKEN_SIGNING_KEY]}
    return keys


def ensure_optional(
    edges: Edges, desired: Obj | None, observed: Obj | None, api_version: str, kind: str
) -> Obj | None:
    """Apply a child that is wanted; delete one that is no longer wanted."""
    if desired is not None:
        return apply_if_changed(edges, desired, observed)
    if observed is not None:
        m = observed.get("metadata") or {}
        edges.delete(api_version, kind, str(m.get("namespace") or ""), str(m["name"]))
    return None


def ingress_settings(edges: Edges) -> aks.IngressSettings:
    s = edges.settings
    return aks.IngressSettings(
        s.ingress_class, s.ingress_host, s.ingress_tls_secret, s.ingress_base_url
    )


def ensure_scaling(seen: WebserviceSeen, edges: Edges, owner: Obj, dc: Obj) -> None:
    """The HPA (autoscale), the PDB (more than one replica), the Ingress and the
    NetworkPolicy."""
    namespace, name, _ = meta(seen.body)
    instance = edges.settings.operator_instance
    hpa = aks.hpa(name, namespace, owner, dc, instance) if aks.autoscaled(dc) else None
    ensure_optional(edges, hpa, seen.hpa, "autoscaling/v2", "HorizontalPodAutoscaler")
    pdb = aks.pdb(name, namespace, owner, dc, instance)
    ensure_optional(edges, pdb, seen.pdb, "policy/v1", "PodDisruptionBudget")
    wants_ingress = bool((dc.get("ingress") or {}).get("enabled"))
    ingress = (
        aks.ingress(name, namespace, owner, ingress_settings(edges), instance)
        if wants_ingress
        else None
    )
    ensure_optional(edges, ingress, seen.ingress, "networking.k8s.io/v1", "Ingress")
    s = edges.settings
    policy = (
        aks.network_policy(name, namespace, owner, s.network_policy_from, instance)
        if s.network_policy
        else None
    )
    ensure_optional(edges, policy, seen.network_policy, "networking.k8s.io/v1", "NetworkPolicy")


def access_status(seen: WebserviceSeen, edges: Edges, service: Obj | None) -> Obj:
    """scoringUri, swaggerUri and access: the outside address when there is one."""
    namespace, name, _ = meta(seen.body)
    dc = seen.body["spec"].get("deploymentConfig") or {}
    node = edges.node_address() if dc.get("serviceType") == ws_access.NODE_PORT else None
    where = ws_access.access(
        name,
        namespace,
        dc,
        service,
        edges.settings.cluster_domain,
        aks.ingress_base_url(ingress_settings(edges)),
        node,
    )
    return {"scoringUri": where.scoring_uri, "swaggerUri": where.swagger_uri, "access": where.kind}


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
    token = bool(dc.get("tokenAuthEnabled"))
    keys = ensure_keys(seen, edges, owner, token) if dc.get("authEnabled") or token else None
    settings = edges.settings
    instance = settings.operator_instance
    placement = {
        "nodeSelector": settings.scoring_node_selector,
        "tolerations": settings.scoring_tolerations,
    }
    template = render.pod_template(
        name, location, dc, keys, settings.image_pull_secret, instance, namespace, placement
    )
    desired = render.deployment(name, namespace, owner, template, instance, aks.replicas(dc))
    deployment = apply_if_changed(edges, desired, seen.deployment)
    service_type = str(dc.get("serviceType") or "ClusterIP")
    service = apply_if_changed(
        edges, render.service(name, namespace, owner, instance, service_type), seen.service
    )
    ensure_scaling(seen, edges, owner, dc)
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
        **access_status(seen, edges, service),
        **ws_status.replica_status(name, seen.pods),
        **serving,
    }
    return status, state


def tell_progress(edges: Edges, body: Obj, status: Obj) -> None:
    """Write the status, unless it is only the next step of a start told moments ago."""
    if not ws_status.progress_held(body, status, edges.epoch()):
        write_status(edges, api.WEBSERVICES, body, status)


def reconcile_webservice(seen: WebserviceSeen, edges: Edges) -> Outcome:
    body = seen.body
    _, _, gen = meta(body)
    owner = names.owner_reference(body, api.WEBSERVICE)
    iv = image_to_deploy(seen, ensure_children(seen, edges, owner))
    if iv.image is None:
        old = (body.get("status") or {}).get("conditions")
        st = ws_status.status(gen, iv.condition, iv.failed, None, None, old, edges.now())
        tell_progress(edges, body, {**base_status(seen, edges), **st})
        return iv.outcome
    status, pods_state = deploy(seen, edges, owner, iv)
    tell_progress(edges, body, status)
    if pods_state == api.HEALTHY and status["state"] == api.HEALTHY:
        return Outcome.DONE
    if pods_state == api.HEALTHY and ws_status.propagating_for(
        seen.endpoint_slices or [], edges.epoch()
    ):
        return Outcome.SOON
    if pods_state in (api.FAILED, api.UNSCHEDULABLE):
        return Outcome.FAILED  # the Pods' next change (or the resync) looks again
    return Outcome.WAIT
