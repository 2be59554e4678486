"""Names, labels and registry references the operator derives (pure)."""

from __future__ import annotations

import hashlib
import re

from kaci.api import (
    API_VERSION,
    INSTANCE_LABEL,
    INSTANCE_NAME_LABEL,
    MANAGED_BY_LABEL,
    MANAGER,
    NAME_LABEL,
    WEBSERVICE_APP,
    WEBSERVICE_LABEL,
    keys_secret_name,
)

__all__ = ["keys_secret_name"]


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


def webservice_labels(name: str, instance: str | None = None) -> dict[str, str]:
    labels = {
        NAME_LABEL: WEBSERVICE_APP,
        INSTANCE_NAME_LABEL: name,
        MANAGED_BY_LABEL: MANAGER,
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


def as_the_builder_sees(ref: str, registry: str, pull_registry: str) -> str:
    """`ref` named by the builder's address of kaci's registry (KACI_REGISTRY) when it
    names the registry by its pull address (KACI_REGISTRY_PULL: the kubelet's and the
    SDK's, e.g. 127.0.0.1:5000 on a node, which is a buildkitd Pod's own loopback).
    Any other reference is left as it is."""
    if registry == pull_registry or not ref.startswith(pull_registry.rstrip("/") + "/"):
        return ref
    return registry.rstrip("/") + ref[len(pull_registry.rstrip("/")) :]
