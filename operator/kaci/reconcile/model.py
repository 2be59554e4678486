"""A Model's pass: fetch the files, digest them, store the version in the registry.

Steps: settled? (nothing to do) -> fetch and digest -> store -> status once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kaci import api
from kaci.errors import InfraDown, UserError, Waiting
from kaci.reconcile.common import Edges, Outcome, meta, short, write_status
from kaci.render import modelfiles, names
from kaci.status import model as model_status


def model_name_of(model: Mapping[str, Any]) -> str:
    return str((model.get("spec") or {}).get("modelName") or model["metadata"]["name"])


def fetch_and_store(body: Mapping[str, Any], edges: Edges) -> tuple[str, str, list[str], bool]:
    """(digest, location, file names, built): the Model's files, stored once per digest."""
    namespace, name, _ = meta(body)
    files = edges.fetch_model(namespace, body["spec"]["source"], name)
    digest = modelfiles.digest(files)
    ref = names.model_image_ref(edges.settings.registry, namespace, model_name_of(body), digest)
    _stored, built = edges.store_model(files, ref)
    return digest, ref, sorted(files), built


def reconcile_model(body: Mapping[str, Any], edges: Edges) -> Outcome:
    if model_status.settled(body, edges.settings.registry):
        return Outcome.DONE
    _, _, gen = meta(body)
    old = body.get("status") or {}
    try:
        digest, location, files, _built = fetch_and_store(body, edges)
    except UserError as e:
        write_status(
            edges, api.MODELS, body, model_status.trouble(old, gen, e.reason, short(e), edges.now())
        )
        return Outcome.FAILED
    except (Waiting, InfraDown) as e:
        write_status(
            edges, api.MODELS, body, model_status.trouble(old, gen, e.reason, short(e), edges.now())
        )
        return Outcome.WAIT
    new, version, is_new = model_status.stored(old, gen, digest, location, files, edges.now())
    write_status(edges, api.MODELS, body, new)
    if is_new:
        edges.event(body, False, "Registered", f"model {model_name_of(body)} version {version}")
    return Outcome.DONE
