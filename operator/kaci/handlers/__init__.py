"""kopf handlers for Model, Image and Webservice (`kopf run -m kaci.handlers`).

Only wiring: indexes and event handlers (handlers.wiring) feed a work queue
(handlers.queue) whose passes (handlers.runner) run each kind's reconcile.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

import kopf

from kaci.edges import kube
from kaci.handlers import index_gate, wiring

__all__ = ["wiring"]

# Before kopf starts: its start-up gate, linear in the objects listed (see index_gate).
# KACI_INDEX_GATE=kopf keeps kopf's own, for the scale bench's side-by-side restart.
if os.environ.get("KACI_INDEX_GATE") != "kopf":
    index_gate.install()


class NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kaci has no change handlers (only events and indexes: tests/unit/
    test_op_kopf_settings.py holds it), so nothing reads the "essence" kopf builds of
    every object at every watch event to diff it: a deep copy of the whole body, a
    seventh of the operator's CPU at 1,000 Webservices. Built empty instead."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # kopf keeps no state of ours: kaci has no change handlers, so kopf writes no
    # progress or diff-base annotations. Its prefix stays its own, never under
    # kaci.dev/.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kopf.kaci.dev")
    settings.persistence.diffbase_storage = NoDiffBase(
        prefix="kopf.kaci.dev", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "kopf.kaci.dev/finalizer"
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    wiring.select_children_on_server(settings)
    kube.load()
