"""The real side effects of a pass: the API server, the builder, the model sources.

`LiveEdges` is what reconcile/ asks for the outside (reconcile.common.Edges).
"""

from __future__ import annotations

import base64
import datetime
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from kaci.edges import kube, metrics, sources
from kaci.edges.builder import Builder
from kaci.edges.buildkit_builder import BuildkitBuilder
from kaci.edges.buildlog import BuildLog
from kaci.edges.docker_builder import DockerBuilder
from kaci.errors import InfraDown, UserError
from kaci.render import image as render_image
from kaci.settings import Settings

LOG_TAIL_LINES = 30
NODE_ADDRESS_TTL_S = 60.0


class LiveEdges:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._node_address: tuple[float, str | None] | None = None

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
        with counted_api_errors(f"patch_status {plural}"):
            kube.patch_status(plural, namespace, name, status)

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        with counted_api_errors(f"apply {manifest.get('kind', '?')}"):
            return kube.apply(manifest)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        kube.delete(api_version, kind, namespace, name)

    def node_address(self) -> str | None:
        """Settings.node_address, else a node's address, read at most once a minute."""
        if self.settings.node_address:
            return self.settings.node_address
        now = time.monotonic()
        if self._node_address is None or now - self._node_address[0] > NODE_ADDRESS_TTL_S:
            self._node_address = (now, kube.node_address())
        return self._node_address[1]

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
        context = render_image.model_context(files)
        with counted_build("model", context) as result:
            return result(self.builder.ensure(context, ref, kind="model"))

    def base_digest(self, ref: str) -> str | None:
        return self.builder.base_digest(ref)

    def build(
        self,
        context: Mapping[str, bytes],
        ref: str,
        on_log: Callable[[list[str], str], None],
        before_build: Callable[[], None],
        compression: str | None = None,
    ) -> tuple[str, bool]:
        def lines(new: list[str], log: BuildLog) -> None:
            on_log(new, log.tail(LOG_TAIL_LINES))

        with counted_build("scoring", context) as result:
            return result(
                self.builder.ensure(
                    context, ref, lines, before_build=before_build, compression=compression
                )
            )

    def became_ready(self, kind: str, since: str) -> None:
        started = datetime.datetime.fromisoformat(since.replace("Z", "+00:00"))
        seconds = (datetime.datetime.now(datetime.UTC) - started).total_seconds()
        metrics.time_to_ready(kind, seconds)

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


@contextmanager
def counted_api_errors(call: str) -> Iterator[None]:
    """Count a failed API call (by its HTTP status; 0 when nothing answered), then
    let it go on to the pass, which waits and retries."""
    try:
        yield
    except ApiException as e:
        metrics.api_error(call, e.status)
        raise
    except HTTPError:
        metrics.api_error(call, None)
        raise


@contextmanager
def counted_build(
    what: str, context: Mapping[str, bytes]
) -> Iterator[Callable[[tuple[str, bool]], tuple[str, bool]]]:
    """Count and time one `ensure` of an image: built, cached (its tag was there),
    failed (the user's inputs), unavailable (the builder or registry) or error."""
    size = sum(len(v) for v in context.values())
    start = time.monotonic()
    said: list[str] = []

    def result(found: tuple[str, bool]) -> tuple[str, bool]:
        said.append("built" if found[1] else "cached")
        return found

    try:
        yield result
    except UserError:
        said.append("failed")
        raise
    except InfraDown:
        said.append("unavailable")
        raise
    finally:
        outcome = said[0] if said else "error"  # an unexpected exception: a bug
        metrics.observe_build(what, outcome, time.monotonic() - start, size)
