"""A Webservice's Deployment, Service and keys Secret (pure: spec in, manifests out)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from kaci import api
from kaci.api import keys_hash
from kaci.render import aks, names
from kaci.render.image import PORT
from kaci.render.quantities import cpu_quantity, memory_quantity

__all__ = ["cpu_quantity", "memory_quantity"]

# An emptyDir: the root filesystem is read-only.
TMP = "/tmp"  # noqa: S108
PRESTOP_SLEEP_S = 3


def _meta(
    name: str, namespace: str, owner: dict[str, Any], instance: str | None, object_name: str = ""
) -> dict[str, Any]:
    return {
        "name": object_name or name,
        "namespace": namespace,
        "labels": names.webservice_labels(name, instance),
        "ownerReferences": [owner],
    }


def pod_template(
    name: str,
    image: str,
    deployment_config: dict[str, Any],
    keys: dict[str, str] | None,
    pull_secret: str | None,
    instance: str | None = None,
    namespace: str = "",
    placement: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The scoring Pod. `keys`: the keys Secret's data when auth is on (key auth: the two
    keys; token auth: the signing key), whose hash rolls the Pods when it changes.
    `placement`: the operator's scheduling fields (nodeSelector, tolerations)."""
    dc = deployment_config
    env: list[dict[str, Any]] = [{"name": "HOME", "value": TMP}]
    if keys and not dc.get("tokenAuthEnabled"):
        secret = names.keys_secret_name(name)
        for env_name, key in (
            ("KACI_AUTH_PRIMARY_KEY", "primaryKey"),
            ("KACI_AUTH_SECONDARY_KEY", "secondaryKey"),
        ):
            env.append(
                {"name": env_name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            )
    env.extend(aks.runtime_env(dc, name, namespace))
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        # The runtime drains in-flight requests on SIGTERM; the Service already
        # stopped sending new ones because the old Pod left the endpoints.
        "terminationGracePeriodSeconds": 30 + PRESTOP_SLEEP_S,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "scoring",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
                "env": env,
                "resources": aks.resources(dc),
                # Probed every second from the start (no initial delay), so the Pod is
                # Ready at most a second after init() ends; four misses in a row (a
                # server busy with a long run()) take it out of the Service.
                "readinessProbe": {
                    "httpGet": {"path": "/ready", "port": PORT},
                    "periodSeconds": 1,
                    "timeoutSeconds": 2,
                    "failureThreshold": 4,
                    "successThreshold": aks.readiness_success_threshold(dc),
                },
                # Only the server loop: init() may take long (large models).
                "livenessProbe": aks.liveness_probe(dc, PORT),
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "volumeMounts": [{"name": "tmp", "mountPath": TMP}],
                # kube-proxy drops the Pod from the Service a moment after the Pod is told
                # to stop; waiting 3 s before SIGTERM keeps its listener open until no new
                # connection can reach it, then the runtime drains what is in flight.
                "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_S}}},
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
    }
    claim = aks.model_data_claim(dc)
    if claim is not None:
        spec["volumes"].append(
            {"name": aks.MODEL_DATA_VOLUME, "persistentVolumeClaim": {"claimName": claim}}
        )
        spec["containers"][0]["volumeMounts"].append(
            {"name": aks.MODEL_DATA_VOLUME, "mountPath": aks.MODEL_DATA_DIR}
        )
    if pull_secret:
        spec["imagePullSecrets"] = [{"name": pull_secret}]
    spec.update({k: v for k, v in (placement or {}).items() if v})
    template: dict[str, Any] = {
        "metadata": {
            "labels": names.webservice_labels(name, instance),
            "annotations": {api.KEYS_HASH_ANNOTATION: keys_hash(keys)},
        },
        "spec": spec,
    }
    # A hash of the template itself, so status can tell the current revision's Pods.
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]
    template["metadata"]["annotations"][api.TEMPLATE_HASH_ANNOTATION] = digest
    return template


def template_hash(template: dict[str, Any]) -> str:
    return str(template["metadata"]["annotations"][api.TEMPLATE_HASH_ANNOTATION])


def deployment(
    name: str,
    namespace: str,
    owner: dict[str, Any],
    template: dict[str, Any],
    instance: str | None = None,
    replicas: int | None = 1,
) -> dict[str, Any]:
    """`replicas` None: not applied, the HorizontalPodAutoscaler owns the count."""
    spec: dict[str, Any] = {} if replicas is None else {"replicas": replicas}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, owner, instance),
        "spec": {
            **spec,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": {api.WEBSERVICE_LABEL: name}},
            # The old Pod serves until the new one is ready: no downtime on update.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": template,
        },
    }


def service(
    name: str,
    namespace: str,
    owner: dict[str, Any],
    instance: str | None = None,
    service_type: str = "ClusterIP",
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, namespace, owner, instance),
        "spec": {
            "type": service_type,
            "selector": {api.WEBSERVICE_LABEL: name},
            "ports": [{"name": "http", "port": 80, "targetPort": PORT, "protocol": "TCP"}],
        },
    }


def keys_secret(
    name: str,
    namespace: str,
    owner: dict[str, Any],
    keys: dict[str, str],
    instance: str | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(name, namespace, owner, instance, names.keys_secret_name(name)),
        "type": "Opaque",
        "stringData": keys,
    }


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


def child(
    kind: str,
    name: str,
    namespace: str,
    owner: dict[str, Any],
    spec: dict[str, Any],
    instance: str | None = None,
) -> dict[str, Any]:
    """The Model or Image a Webservice owns, named like it."""
    return {
        "apiVersion": api.API_VERSION,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "ownerReferences": [owner],
            "labels": {
                api.MANAGED_BY_LABEL: api.MANAGER,
                api.WEBSERVICE_LABEL: name,
                **({api.INSTANCE_LABEL: instance} if instance else {}),
            },
        },
        "spec": spec,
    }


def image_name_deployed(name: str, spec: Mapping[str, Any]) -> str:
    """The imageName a Webservice deploys: spec.image's, else its own child Image's,
    which carries the Webservice's name (child_specs) (pure)."""
    ref = spec.get("image") or {}
    return str(ref.get("name") or name)


def with_desired_hash(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with a hash of itself in an annotation: the next pass compares it
    with the observed object's and skips an apply that would change nothing."""
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    meta = manifest.setdefault("metadata", {})
    meta.setdefault("annotations", {})[api.DESIRED_HASH_ANNOTATION] = digest
    return manifest


def _annotation(obj: Mapping[str, Any] | None, key: str) -> str | None:
    if obj is None:
        return None
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(key)


def needs_apply(desired: Mapping[str, Any], observed: Mapping[str, Any] | None) -> bool:
    """Apply unless the observed object carries the desired object's hash and, for a
    Deployment, still runs the desired Pod template (pure)."""
    if observed is None:
        return True
    if _annotation(observed, api.DESIRED_HASH_ANNOTATION) != _annotation(
        desired, api.DESIRED_HASH_ANNOTATION
    ):
        return True
    template = (desired.get("spec") or {}).get("template")
    if template is None:
        return False
    seen_template = (observed.get("spec") or {}).get("template")
    return _annotation(seen_template, api.TEMPLATE_HASH_ANNOTATION) != _annotation(
        template, api.TEMPLATE_HASH_ANNOTATION
    )
