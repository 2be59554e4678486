"""The operator's door to the registry: tag look-ups and model files, no engine.

kaci.registry speaks the distribution API; this edge gives it the operator's
settings (the push config.json's credentials, plain HTTP for the configured
registries when `registry_insecure`) and turns its errors into the operator's
three kinds of trouble: no answer is InfraDown (retry, say so), a refusal or a
missing image is the user's to fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

from kaci.errors import InfraDown, UserError
from kaci.registry import reference
from kaci.registry.auth import ConfigError, load_config
from kaci.registry.client import Distribution, RegistryDenied, RegistryError, RegistryUnreachable
from kaci.registry.layers import LayerError, read_files
from kaci.render.modelfiles import ModelFileError, check_name
from kaci.settings import Settings


class RegistryUnavailableError(InfraDown):
    default_reason = "RegistryUnavailable"


def plain_http_hosts(settings: Settings) -> set[str]:
    """The registries spoken to without TLS: the configured ones, when insecure."""
    if not settings.registry_insecure:
        return set()
    return {r.split("/", 1)[0] for r in (settings.registry, settings.pull_registry)}


class Registry:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def client(self) -> Distribution:
        config = {}
        if self.settings.registry_push_config:
            try:
                config = load_config(self.settings.registry_push_config)
            except ConfigError as e:
                raise UserError(f"KACI_REGISTRY_PUSH_CONFIG: {e}", "BadRegistryConfig") from e
        return Distribution(config, plain_http_hosts(self.settings))

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except RegistryUnreachable as e:
            raise RegistryUnavailableError(f"{what}: {e}; trying again") from e
        except reference.ReferenceError as e:
            raise UserError(f"{what}: {e}", "BadImageReference") from e

    def digest(self, ref: str) -> str | None:
        """The manifest digest `ref` names in its registry; None when it is not there."""
        with self._errors(f"looking up {ref}"):
            try:
                return self.client.manifest_digest(reference.parse(ref))
            except RegistryDenied as e:
                raise UserError(str(e), "RegistryDenied") from e

    def files(self, ref: str, path: str, max_bytes: int) -> dict[str, bytes]:
        """The regular files under `path` in image `ref`, read from its layers."""
        with self._errors(f"reading model files from image {ref}"):
            parsed = reference.parse(ref)
            try:
                manifest = self.client.image_manifest(parsed)
            except RegistryError as e:  # denied, missing: the user's reference
                raise ModelFileError(f"reading model files from image {ref}: {e}") from e

            def layers() -> Iterator[tuple[str, object]]:
                for layer in manifest.get("layers") or []:
                    stream = self.client.open_blob(parsed, str(layer["digest"]))
                    try:
                        yield str(layer.get("mediaType") or ""), stream
                    finally:
                        stream.release_conn()

            try:
                found = read_files(layers(), path, max_bytes)  # type: ignore[arg-type]
            except LayerError as e:
                raise ModelFileError(f"image {ref}: {e}") from e
        if not found:
            raise ModelFileError(f"no files found under {path} in image {ref}")
        return {check_name(name): data for name, data in found.items()}
