"""The Docker Engine edge: registry look-ups, builds with streamed output, pushes.

Everything that touches the registry goes through the engine (it holds the
registry configuration and credentials), so the operator needs only the engine's
address. Each build gets its own API client so a timed-out build can be cut off
(closing the connection makes the engine cancel the build) without touching
other builds.
"""

from __future__ import annotations

import io
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import docker
import docker.errors
import requests
import urllib3.exceptions
from docker.auth import load_config, resolve_authconfig
from docker.utils import parse_repository_tag

from kaci.edges.buildlog import BuildLog
from kaci.errors import InfraDown, UserError
from kaci.render import image as imagerender
from kaci.render.modelfiles import ModelFileError, check_name
from kaci.settings import Settings


class BuildError(UserError):
    """The build failed on its own inputs (a step, a package, the base image)."""

    default_reason = "BuildFailed"

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(message, log_tail=log_tail)


class EngineUnavailableError(InfraDown):
    """The Docker engine or the registry could not be reached: worth trying again,
    unlike a build that failed on its own inputs."""

    default_reason = "EngineUnavailable"

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(message, log_tail=log_tail)


# What a registry that is down (or restarting) makes a push report.
_UNREACHABLE = ("connection refused", "no such host", "i/o timeout", "connection reset")

# A connection to the engine that breaks mid-stream: the engine stopped or restarted.
_DROPPED = (
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
    docker.errors.DockerException,
    OSError,
)


def build_outcome(
    error: str | None, image_id: str | None, engine_answers: Callable[[], bool]
) -> str:
    """How a build stream ended (pure): "built", "failed" (the inputs' fault: a step
    failed while the engine kept running) or "engine" (try again: the engine went away,
    or the stream ended without a result, as when the engine stops mid-build).

    An engine that shuts down kills the build's container first, so the last step
    "returned a non-zero code" just like a step that failed on its own: only whether
    the engine still answers afterwards tells the two apart (asked only then)."""
    if image_id and not error:
        return "built"
    if error and engine_answers():
        return "failed"
    return "engine"


class Builder:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._slots = threading.BoundedSemaphore(settings.max_parallel_builds)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _client(self, timeout: int = 120) -> docker.APIClient:
        try:
            return docker.APIClient(
                base_url=self.settings.docker_host, timeout=timeout, version="auto"
            )
        except docker.errors.DockerException as e:  # "auto" asks the engine its version
            raise self._unreachable(e, BuildLog()) from e

    def _unreachable(self, e: Exception, log: BuildLog) -> EngineUnavailableError:
        return EngineUnavailableError(
            f"the Docker engine at {self.settings.docker_host} is unreachable ({e}); trying again",
            log.tail(),
        )

    def _went_away(self, log: BuildLog, what: str, seen: object) -> EngineUnavailableError:
        at = f" at {log.step}" if log.step else ""
        return EngineUnavailableError(
            f"the Docker engine at {self.settings.docker_host} stopped or restarted during "
            f"the {what}{at} ({str(seen)[:300]}); trying again",
            log.tail(),
        )

    def engine_answers(self) -> bool:
        """Does the engine answer a ping now (a fresh connection, a short timeout)?"""
        try:
            client = docker.APIClient(
                base_url=self.settings.docker_host, timeout=10, version="auto"
            )
        except docker.errors.DockerException:
            return False
        try:
            return bool(client.ping())
        except _DROPPED:
            return False
        finally:
            client.close()

    def _auth(self, ref: str) -> dict[str, Any] | None:
        if not self.settings.registry_push_config:
            return None
        config = load_config(self.settings.registry_push_config)
        return resolve_authconfig(config, ref.split("/", 1)[0])  # type: ignore[no-any-return]

    def lock_for(self, key: str) -> threading.Lock:
        """One build per tag at a time in this process: a second asker waits, then
        finds the tag in the registry."""
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def remote_digest(self, ref: str) -> str | None:
        """The manifest digest of `ref` in its registry, or None when it is not there."""
        client = self._client()
        try:
            info = client.inspect_distribution(ref, auth_config=self._auth(ref))
            return str(info["Descriptor"]["digest"])
        except docker.errors.APIError:
            return None
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as e:
            raise self._unreachable(e, BuildLog()) from e
        finally:
            client.close()

    def base_digest(self, ref: str) -> str | None:
        """A digest of the base image: the registry's when it has one, else the local ID."""
        found = self.remote_digest(ref)
        if found:
            return found
        client = self._client()
        try:
            return str(client.inspect_image(ref)["Id"])
        except docker.errors.APIError:
            return None
        finally:
            client.close()

    def build_and_push(
        self,
        context: Mapping[str, bytes],
        ref: str,
        on_lines: Callable[[list[str], BuildLog], None] | None = None,
    ) -> str:
        """Build `context` as `ref`, push it, return the pushed manifest digest."""
        deadline = time.monotonic() + self.settings.build_timeout_s
        log = BuildLog()
        with self._slots:
            client = self._client(timeout=self.settings.build_timeout_s)
            try:
                stream = client.build(
                    fileobj=io.BytesIO(imagerender.tar_context(context)),
                    custom_context=True,
                    tag=ref,
                    rm=True,
                    forcerm=True,
                    decode=True,
                    pull=False,
                )
                self._follow(stream, log, deadline, on_lines)
                outcome = build_outcome(log.error, log.image_id, self.engine_answers)
                if outcome == "engine":
                    seen = log.error or "the build output ended without a result"
                    raise self._went_away(log, "build", seen)
                if outcome == "failed":
                    raise BuildError(log.explain(), log.tail())
                return self._push(client, ref, log, deadline, on_lines)
            except docker.errors.APIError as e:
                if not self.engine_answers():
                    raise self._went_away(log, "build", e) from e
                raise BuildError(
                    f"the Docker engine refused the build: {e.explanation or e}", log.tail()
                ) from e
            except (requests.exceptions.ConnectionError, docker.errors.DockerException) as e:
                # A dropped or refused connection to the engine, not an answer from it.
                raise self._unreachable(e, log) from e
            finally:
                client.close()

    def _follow(
        self,
        stream: Iterator[dict[str, Any]],
        log: BuildLog,
        deadline: float,
        on_lines: Callable[[list[str], BuildLog], None] | None,
    ) -> None:
        items = iter(stream)
        while True:
            try:
                item = next(items)
            except StopIteration:
                return
            except _DROPPED as e:
                # The stream broke off (the engine stopped mid-build): not an answer.
                raise self._went_away(log, "build", f"the build output broke off: {e}") from e
            new = log.feed(item)
            if new and on_lines:
                on_lines(new, log)
            if time.monotonic() > deadline:
                raise BuildError(
                    f"build timed out after {self.settings.build_timeout_s}s"
                    f" at {log.step or 'start'}",
                    log.tail(),
                )

    def _push(
        self,
        client: docker.APIClient,
        ref: str,
        log: BuildLog,
        deadline: float,
        on_lines: Callable[[list[str], BuildLog], None] | None,
    ) -> str:
        repo, tag = parse_repository_tag(ref)
        digest: str | None = None
        try:
            for item in client.push(
                repo, tag=tag, stream=True, decode=True, auth_config=self._auth(ref)
            ):
                if "error" in item:
                    error = str(item["error"])
                    if any(u in error.lower() for u in _UNREACHABLE):
                        raise EngineUnavailableError(
                            f"push to {repo} failed, the registry is unreachable ({error}); "
                            "trying again",
                            log.tail(),
                        )
                    if not self.engine_answers():  # the engine shut down mid-push
                        raise self._went_away(log, "push", error)
                    raise BuildError(f"push to {repo} failed: {error}", log.tail())
                aux = item.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = str(aux["Digest"])
                if time.monotonic() > deadline:
                    raise BuildError("push timed out", log.tail())
        except (docker.errors.APIError, BuildError):
            raise
        except _DROPPED as e:
            raise self._went_away(log, "push", f"the push output broke off: {e}") from e
        if on_lines:
            on_lines([f"pushed {ref}"], log)
        if not digest:
            digest = self.remote_digest(ref)
        if not digest:
            raise BuildError(f"push of {ref} reported no digest", log.tail())
        return digest

    def ensure(
        self,
        context: Mapping[str, bytes],
        ref: str,
        on_lines: Callable[[list[str], BuildLog], None] | None = None,
        before_build: Callable[[], None] | None = None,
    ) -> tuple[str, bool]:
        """(digest, built): the image `ref` names is in the registry, built only when it
        was not there. The tag is a content hash, so finding it means the same inputs were
        built before, by this process or an earlier one."""
        with self.lock_for(ref):
            found = self.remote_digest(ref)
            if found:
                return found, False
            if before_build:
                before_build()
            return self.build_and_push(context, ref, on_lines), True

    def files_from_image(self, ref: str, path: str, max_bytes: int) -> dict[str, bytes]:
        """The regular files under `path` in image `ref` (pulled through the engine)."""
        client = self._client(timeout=600)
        repo, tag = parse_repository_tag(ref)
        try:
            try:
                client.inspect_image(ref)
            except docker.errors.ImageNotFound:
                client.pull(repo, tag=tag or "latest", auth_config=self._auth(ref))
            # create (never start) a container just to read its filesystem.
            container = client.create_container(ref, command=["/kaci-never-runs"])
            try:
                stream, _ = client.get_archive(container["Id"], path or "/")
                data = b"".join(stream)
            finally:
                client.remove_container(container["Id"], force=True)
        finally:
            client.close()
        return files_from_tar(data, max_bytes, strip_first=path not in ("", "/"))


# What the engine adds to every container's filesystem (empty placeholders): not model files.
_INIT_LAYER = {".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf", "etc/mtab"}
_INIT_DIRS = {"dev", "proc", "sys"}


def files_from_tar(data: bytes, max_bytes: int, strip_first: bool) -> dict[str, bytes]:
    """Regular files of a tar, names checked (no '..', not absolute), total size capped.

    `strip_first` drops the top folder the engine puts in an archive of a folder.
    """
    files: dict[str, bytes] = {}
    total = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            # The engine roots an archive of "/" at "/": relative to the asked path.
            name = member.name.lstrip("/")
            if strip_first and "/" in name.strip("/"):
                name = name.strip("/").split("/", 1)[1]
            elif strip_first:
                name = name.strip("/").rsplit("/", 1)[-1]
            name = check_name(name)
            if not strip_first and (name in _INIT_LAYER or name.split("/", 1)[0] in _INIT_DIRS):
                continue
            total += member.size
            if total > max_bytes:
                raise ModelFileError(f"the model files are larger than {max_bytes} bytes")
            f = tar.extractfile(member)
            if f is not None:
                files[name] = f.read()
    if not files:
        raise ModelFileError("no files found in the model source")
    return files
