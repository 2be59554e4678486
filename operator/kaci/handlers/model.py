"""Model: fetch the files, digest them, store each version as an image in the registry."""

from __future__ import annotations

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
        kopf.info(body, reason="Registered", message=f"model {model_name} version {version}")
        # Images that use the latest version of this model rebuild with it.
        for image in kube.list_custom("images", namespace):
            for m in image.get("spec", {}).get("models", []):
                if m.get("name") == model_name and not m.get("version"):
                    poke("images", namespace, image["metadata"]["name"], f"{model_name}:{version}")
