"""The docker driver: builds with a Docker Engine (docker-py), streamed output, pushes.

For clusters where a Docker Engine is at hand (settings.docker_host). The engine
holds its own registry configuration; the push gets the credentials of
registry_push_config. Each build gets its own API client so a timed-out build can
be cut off (closing the connection makes the engine cancel the build) without
touching other builds. Docker 20.10 pushes gzip layers only (image_compression
does not apply here).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import docker
import docker.errors
import requests
import urllib3.exceptions
from docker.auth import load_config, resolve_authconfig
from docker.utils import parse_repository_tag

from kaci import api
from kaci.edges.builder import (
    UNREACHABLE,
    Builder,
    BuildError,
    BuilderUnavailableError,
    Kind,
    build_outcome,
)
from kaci.edges.buildlog import BuildLog
from kaci.errors import InfraDown, UserError
from kaci.render import image as imagerender


class EngineUnavailableError(BuilderUnavailableError):
    """The Docker engine or the registry could not be reached: try again."""

    default_reason = "EngineUnavailable"


# A connection to the engine that breaks mid-stream: the engine stopped or restarted.
_DROPPED = (
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
    docker.errors.DockerException,
    OSError,
)


class DockerBuilder(Builder):
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

    def answers(self) -> bool:
        return self.engine_answers()

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

    def base_digest(self, ref: str) -> str | None:
        """A digest of the base image: the registry's when it has one, else the local ID
        (a base image made on the engine's host and never pushed, or on a registry
        out of reach: the engine has its own way there)."""
        try:
            found = self.remote_digest(ref)
        except (InfraDown, UserError):
            found = None
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
        kind: Kind = "scoring",
        compression: str | None = None,
    ) -> str:
        """Build `context` as `ref`, push it, return the pushed manifest digest."""
        if compression not in (None, "gzip"):
            raise UserError(
                f"layerCompression {compression}: the docker builder pushes gzip layers only; "
                "drop layerCompression or set it to gzip, or use the buildkit builder",
                reason=api.REASON_BAD_SPEC,
            )
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
                if outcome == "builder":
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
                    if any(u in error.lower() for u in UNREACHABLE):
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
