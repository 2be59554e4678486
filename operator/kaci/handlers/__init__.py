"""kopf handlers for Model, Image and Webservice (`kopf run -m kaci.handlers`).

Only wiring: indexes and event handlers (handlers.wiring) feed a work queue
(handlers.queue) whose passes (handlers.runner) run each kind's reconcile.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf

from kaci.edges import kube
from kaci.handlers import index_gate, wiring

__all__ = ["wiring"]

# Before kopf starts: its start-up gate, linear in the objects listed (see index_gate).
# KACI_INDEX_GATE=kopf keeps kopf's own, for the scale bench's side-by-side restart.
if os.environ.get("KACI_INDEX_GATE") != "kopf":
    index_gate.install()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # kopf keeps no state of ours: kaci has no change handlers (only events and
    # indexes), so kopf writes no progress or diff-base annotations. Its prefix stays
    # its own, never under kaci.dev/, should a handler that needs one appear.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kopf.kaci.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kopf.kaci.dev", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "kopf.kaci.dev/finalizer"
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    wiring.select_children_on_server(settings)
    kube.load()
