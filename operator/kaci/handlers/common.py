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


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=1)
def builder() -> Builder:
    return Builder(get_settings())


def poke(plural: str, namespace: str, name: str, value: str) -> None:
    """Make kopf re-run a waiting object's reconcile at once: an annotation change is a
    change. (A dependency on its way is never polled: the waiter's reconcile ends, and
    its dependency's next state pokes it; see webservice.wake_webservices and
    model.wake_images.)"""
    kube.patch_annotations(plural, namespace, name, {names.POKE_ANNOTATION: value})


def model_name_of(model: dict[str, Any]) -> str:
    return str(model.get("spec", {}).get("modelName") or model["metadata"]["name"])


def image_name_of(image: dict[str, Any]) -> str:
    return str(image.get("spec", {}).get("imageName") or image["metadata"]["name"])
