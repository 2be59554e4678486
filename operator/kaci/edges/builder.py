"""The builder interface: scoring images and model images, built once per tag, pushed.

A driver only builds and pushes (`build_and_push`); what every driver shares is
here: one build per tag at a time in this process, a bounded number at once,
and the registry asked first (the tag is a content hash: finding it means the
same inputs were built before, by this process or an earlier one). Registry
look-ups and model-file reads go through kaci.edges.registry, with no engine.

Drivers (settings.builder): `buildkit` and `remote` (kaci.edges.buildkit_builder,
buildctl against a buildkitd), `docker` (kaci.edges.docker_builder, a Docker Engine).
"""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Literal

from kaci.edges.buildlog import BuildLog
from kaci.edges.registry import Registry
from kaci.errors import InfraDown, UserError
from kaci.render.modelfiles import ModelFileError, check_name
from kaci.settings import Settings

# What an image is for: scoring images get the configured compression and the build
# cache; model images stay gzip (Python and older engines read them) and need no cache.
Kind = Literal["scoring", "model"]
OnLines = Callable[[list[str], BuildLog], None]


class BuildError(UserError):
    """The build failed on its own inputs (a step, a package, the base image)."""

    default_reason = "BuildFailed"

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(message, log_tail=log_tail)


class BuilderUnavailableError(InfraDown):
    """The builder or the registry could not be reached: worth trying again, unlike a
    build that failed on its own inputs."""

    default_reason = "BuilderUnavailable"

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(message, log_tail=log_tail)


# What a registry that is down (or restarting) makes a push or a pull report.
UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "connection reset",
    "server misbehaving",
)


def build_outcome(
    error: str | None, image_id: str | None, builder_answers: Callable[[], bool]
) -> str:
    """How a build ended (pure): "built", "failed" (the inputs' fault: a step failed
    while the builder kept running) or "builder" (try again: the builder went away, or
    the build ended without a result, as when the builder stops mid-build).

    A builder that shuts down kills the build's step first, so the step "failed" just
    like a step that failed on its own: only whether the builder still answers
    afterwards tells the two apart (asked only then)."""
    if image_id and not error:
        return "built"
    if error and builder_answers():
        return "failed"
    return "builder"


class Builder:
    """What every driver shares; a driver implements build_and_push and answers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._slots = threading.BoundedSemaphore(settings.max_parallel_builds)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.settings)

    def build_and_push(
        self,
        context: Mapping[str, bytes],
        ref: str,
        on_lines: OnLines | None = None,
        kind: Kind = "scoring",
        compression: str | None = None,
    ) -> str:
        """Build `context` as `ref`, push it, return the pushed manifest digest.
        `compression`: the layers' (an Image's layerCompression; None: the default)."""
        raise NotImplementedError

    def answers(self) -> bool:
        """Does the builder answer now (a fresh connection, a short timeout)?"""
        raise NotImplementedError

    def lock_for(self, key: str) -> threading.Lock:
        """One build per tag at a time in this process: a second asker waits, then
        finds the tag in the registry."""
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def remote_digest(self, ref: str) -> str | None:
        """The manifest digest of `ref` in its registry, or None when it is not there."""
        return self.registry.digest(ref)

    def base_digest(self, ref: str) -> str | None:
        """A digest of the base image (part of the content hash): the registry's."""
        return self.remote_digest(ref)

    def ensure(
        self,
        context: Mapping[str, bytes],
        ref: str,
        on_lines: OnLines | None = None,
        before_build: Callable[[], None] | None = None,
        kind: Kind = "scoring",
        compression: str | None = None,
    ) -> tuple[str, bool]:
        """(digest, built): the image `ref` names is in the registry, built only when it
        was not there."""
        with self.lock_for(ref):
            found = self.remote_digest(ref)
            if found:
                return found, False
            if before_build:
                before_build()
            return self.build_and_push(context, ref, on_lines, kind, compression), True

    def files_from_image(self, ref: str, path: str, max_bytes: int) -> dict[str, bytes]:
        """The regular files under `path` in image `ref` (read from the registry)."""
        return self.registry.files(ref, path, max_bytes)


def files_from_tar(data: bytes, max_bytes: int, strip_first: bool) -> dict[str, bytes]:
    """Regular files of a tar, names checked (no '..', not absolute), total size capped.

    `strip_first` drops the top folder `tar -C parent -c folder` puts in an archive.
    """
    files: dict[str, bytes] = {}
    total = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            name = member.name.lstrip("/")
            if strip_first and "/" in name.strip("/"):
                name = name.strip("/").split("/", 1)[1]
            elif strip_first:
                name = name.strip("/").rsplit("/", 1)[-1]
            name = check_name(name)
            total += member.size
            if total > max_bytes:
                raise ModelFileError(f"the model files are larger than {max_bytes} bytes")
            f = tar.extractfile(member)
            if f is not None:
                files[name] = f.read()
    if not files:
        raise ModelFileError("no files found in the model source")
    return files
