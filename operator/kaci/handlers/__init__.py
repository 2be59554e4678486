"""kopf handlers for Model, Image and Webservice (`kopf run -m kaci.handlers`)."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from kaci import kube
from kaci.handlers import image, model, webservice

__all__ = ["image", "model", "webservice"]


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # kopf's own bookkeeping goes into annotations under a prefix of its own, never
    # into status (the CRD schemas describe status exactly) and never under kaci.dev/,
    # whose annotations (the dependency poke) must count as changes.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kopf.kaci.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kopf.kaci.dev", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "kopf.kaci.dev/finalizer"
    settings.posting.level = logging.INFO
    # Builds and fetches run in sync handlers, in kopf's thread pool.
    settings.execution.max_workers = 16
    settings.watching.server_timeout = 300
    kube.load()
