"""The real side effects of a pass: the API server, the builder, the model sources.

`LiveEdges` is what reconcile/ asks for the outside (reconcile.common.Edges).
"""

from __future__ import annotations

import base64
import datetime
import time
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from kaci.edges import kube, sources
from kaci.edges.builder import Builder
from kaci.edges.buildkit_builder import BuildkitBuilder
from kaci.edges.buildlog import BuildLog
from kaci.edges.docker_builder import DockerBuilder
from kaci.render import image as render_image
from kaci.settings import Settings

LOG_TAIL_LINES = 30


class LiveEdges:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def builder(self) -> Builder:
        """The driver settings.builder names (`remote` is buildkit's, elsewhere)."""
        if self.settings.builder == "docker":
            return DockerBuilder(self.settings)
        return BuildkitBuilder(self.settings)

    def now(self) -> str:
        return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def epoch(self) -> float:
        return time.time()

    def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        kube.patch_status(plural, namespace, name, status)

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return kube.apply(manifest)

    def event(self, body: Mapping[str, Any], warning: bool, reason: str, message: str) -> None:
        kube.post_event(body, warning, reason, message)

    def read_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        cm = kube.read_or_none(kube.core().read_namespaced_config_map, name, namespace)
        return None if cm is None else dict(cm.data or {})

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        secret = kube.read_or_none(kube.core().read_namespaced_secret, name, namespace)
        if secret is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

    def fetch_model(
        self, namespace: str, source: Mapping[str, Any], owner: str
    ) -> dict[str, bytes]:
        return sources.fetch(namespace, source, owner, self.settings, self.builder)

    def store_model(self, files: Mapping[str, bytes], ref: str) -> tuple[str, bool]:
        return self.builder.ensure(render_image.model_context(files), ref, kind="model")

    def base_digest(self, ref: str) -> str | None:
        return self.builder.base_digest(ref)

    def build(
        self,
        context: Mapping[str, bytes],
        ref: str,
        on_log: Callable[[list[str], str], None],
        before_build: Callable[[], None],
    ) -> tuple[str, bool]:
        def lines(new: list[str], log: BuildLog) -> None:
            on_log(new, log.tail(LOG_TAIL_LINES))

        return self.builder.ensure(context, ref, lines, before_build=before_build)

    def pod_log(self, namespace: str, pod: str, previous: bool) -> str:
        text = kube.read_or_none(
            kube.core().read_namespaced_pod_log,
            pod,
            namespace,
            container="scoring",
            previous=previous,
            tail_lines=12,
        )
        return str(text or "")
