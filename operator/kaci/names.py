"""Names, labels and registry references the operator derives (pure)."""

from __future__ import annotations

import hashlib
import re

GROUP = "kaci.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
MANAGER = "kaci"

# Annotation a dependency patches on a dependent object so kopf re-runs its reconcile
# (an annotation change is a change of the object's essence for kopf).
POKE_ANNOTATION = f"{GROUP}/dependency-changed"
# Pod-template annotations: a change rolls the Pod.
KEYS_HASH_ANNOTATION = f"{GROUP}/keys-hash"
TEMPLATE_HASH_ANNOTATION = f"{GROUP}/template-hash"
WEBSERVICE_LABEL = f"{GROUP}/webservice"
INSTANCE_LABEL = f"{GROUP}/operator"


def repo_component(name: str) -> str:
    """A registry path component from an Azure name (which may hold '_' or capitals).

    Registry path components are lowercase [a-z0-9] separated by '.', '_', '-';
    when the name had to change, a short hash keeps two names from colliding.
    """
    clean = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "x"
    if clean == name:
        return clean
    return f"{clean}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def model_image_ref(registry: str, namespace: str, model_name: str, digest: str) -> str:
    hexpart = digest.split(":", 1)[-1]
    return f"{registry}/kaci-models/{namespace}/{repo_component(model_name)}:{hexpart[:16]}"


def scoring_repo(registry: str, namespace: str, image_name: str) -> str:
    return f"{registry}/kaci/{namespace}/{repo_component(image_name)}"


def scoring_uri(name: str, namespace: str, cluster_domain: str) -> str:
    return f"http://{name}.{namespace}.svc.{cluster_domain}/score"


def swagger_uri(name: str, namespace: str, cluster_domain: str) -> str:
    return f"http://{name}.{namespace}.svc.{cluster_domain}/swagger.json"


def keys_secret_name(webservice: str) -> str:
    return f"{webservice}-keys"


def webservice_labels(name: str, instance: str | None = None) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": "kaci-webservice",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": MANAGER,
        WEBSERVICE_LABEL: name,
    }
    if instance:
        labels[INSTANCE_LABEL] = instance
    return labels


def owner_reference(
    body: dict[str, object], kind: str, *, controller: bool = True
) -> dict[str, object]:
    meta = body["metadata"]
    assert isinstance(meta, dict)
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }
