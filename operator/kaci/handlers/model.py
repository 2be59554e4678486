"""Model: fetch the files, digest them, store each version as an image in the registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from kaci import conditions, imagerender, kube, modelfiles, modelsource, names
from kaci.handlers.common import builder, instance_filter, model_name_of, now, poke
from kaci.settings import get_settings

PLURAL = "models"


def _status(
    status: dict[str, Any], gen: int, ok: bool, reason: str, message: str, **fields: Any
) -> dict[str, Any]:
    cond = conditions.condition("Ready", ok, reason, message, gen)
    return {
        **fields,
        "observedGeneration": gen,
        "conditions": conditions.merge(status.get("conditions"), [cond], now()),
    }


@kopf.on.resume(names.GROUP, names.VERSION, PLURAL, labels=instance_filter())
@kopf.on.create(names.GROUP, names.VERSION, PLURAL, labels=instance_filter())
@kopf.on.update(names.GROUP, names.VERSION, PLURAL, labels=instance_filter())
def reconcile_model(
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
    if not st.get("conditions"):
        kube.patch_status(
            PLURAL, namespace, name, _status(st, gen, False, "Fetching", "fetching the model files")
        )
    model_name = model_name_of(dict(body))
    try:
        files = modelsource.fetch(namespace, spec["source"], name, settings, builder())
        digest = modelfiles.digest(files)
    except modelfiles.ModelFileError as e:
        kube.patch_status(PLURAL, namespace, name, _status(st, gen, False, "BadSource", str(e)))
        raise kopf.PermanentError(str(e)) from e
    except modelsource.SourceNotReadyError as e:
        kube.patch_status(PLURAL, namespace, name, _status(st, gen, False, e.reason, str(e)))
        raise kopf.TemporaryError(str(e), delay=20) from e

    versions = list(st.get("versions") or [])
    version, is_new = modelfiles.next_version(versions, digest, st.get("digest"))
    ref = names.model_image_ref(settings.registry, namespace, model_name, digest)
    _stored, built = builder().ensure(imagerender.model_context(files), ref)
    if built:
        logger.info(f"stored version {version} of model {model_name} as {ref}")
    if is_new:
        versions.append({"version": version, "digest": digest, "location": ref, "created": now()})
    kube.patch_status(
        PLURAL,
        namespace,
        name,
        _status(
            st,
            gen,
            True,
            "Stored",
            f"version {version} stored in the registry",
            version=version,
            digest=digest,
            location=ref,
            files=sorted(files),
            versions=versions,
        ),
    )
    if is_new:
        # The Images that use this model are woken by the new status (wake_images).
        kopf.info(body, reason="Registered", message=f"model {model_name} version {version}")


def wake_value(model: Mapping[str, Any], waiter: Mapping[str, Any]) -> str | None:
    """The poke that makes an Image look at this Model again, or None (pure).

    `waiter` is the Image as the index keeps it: name, the model versions it was built
    with, the last poke it got. A new latest version wakes it (an Image waiting for its
    first version, or one following the latest, rebuilds with it); so does a Model
    refused for good (the Image then fails saying why); a Model on its way does not.
    Each value is sent once."""
    st = model.get("status") or {}
    name = model_name_of(dict(model))
    versions = [int(v["version"]) for v in st.get("versions") or []]
    if versions:
        latest = max(versions)
        if [name, latest] in waiter["built"]:
            return None
        value = f"{name}:{latest}"
    else:
        ready = conditions.get(st.get("conditions"), "Ready")
        if ready is None or ready.get("reason") != "BadSource":
            return None
        value = f"{name}:failed"
    return None if value == waiter["poke"] else value


@kopf.index(names.GROUP, names.VERSION, "images", labels=instance_filter())
def images_by_model(
    name: str,
    namespace: str | None,
    spec: kopf.Spec,
    status: kopf.Status,
    annotations: kopf.Annotations,
    **_: Any,
) -> dict[tuple[str | None, str], dict[str, Any]]:
    """(namespace, modelName) -> the Images built from it: who to wake."""
    waiter = {
        "name": name,
        "built": [[m.get("name"), m.get("version")] for m in status.get("models") or []],
        "poke": str(annotations.get(names.POKE_ANNOTATION, "")),
    }
    return {(namespace, str(m["name"])): waiter for m in spec.get("models") or []}


@kopf.on.event(names.GROUP, names.VERSION, PLURAL, labels=instance_filter())
def wake_images(
    body: kopf.Body,
    namespace: str | None,
    type: str,
    images_by_model: kopf.Index[tuple[str | None, str], dict[str, Any]] | None = None,
    **_: Any,
) -> None:
    """A Model changed (or was listed at start): wake the Images that use it."""
    if type == "DELETED" or namespace is None or images_by_model is None:
        return
    for waiter in images_by_model.get((namespace, model_name_of(dict(body))), []):
        value = wake_value(body, waiter)
        if value is not None:
            poke("images", namespace, waiter["name"], value)
