"""What the handlers share: settings, the builder, time, pokes."""

from __future__ import annotations

import datetime
from functools import lru_cache
from typing import Any

import kopf

from kaci import kube, names
from kaci.builder import Builder
from kaci.settings import get_settings


def instance() -> str | None:
    return get_settings().operator_instance


def instance_filter() -> dict[str, Any]:
    """kopf label filter: this operator's objects only (see Settings.operator_instance)."""
    return {names.INSTANCE_LABEL: instance() or kopf.ABSENT}


def waiting_delay(retry: int) -> float:
    """Seconds before looking again at a dependency that is on its way (a build, a model
    being stored): soon at first, then less often, at most every 10 s."""
    return float(min(2 + retry, 10))


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=1)
def builder() -> Builder:
    return Builder(get_settings())


def poke(plural: str, namespace: str, name: str, value: str) -> None:
    """Make kopf re-run a dependent object's reconcile: an annotation change is a change."""
    kube.patch_annotations(plural, namespace, name, {names.POKE_ANNOTATION: value})


def model_name_of(model: dict[str, Any]) -> str:
    return str(model.get("spec", {}).get("modelName") or model["metadata"]["name"])


def image_name_of(image: dict[str, Any]) -> str:
    return str(image.get("spec", {}).get("imageName") or image["metadata"]["name"])
