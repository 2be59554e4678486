"""Push and pull model files as a one-layer OCI image, with the registry HTTP API.

Only the Distribution API (`/v2/`) is used (kaci.registry), with the user's own
registry credentials as `docker login` keeps them ($DOCKER_CONFIG/config.json or
~/.docker/config.json: `auths`, Basic or the token flow), so ECR, GAR, ACR and
Harbor work as well as a local registry — no Docker Engine is needed on the SDK
user's machine.
The image is a plain Docker schema-2 image (config + one gzip tar layer holding
the files at `/`), so `docker pull`, a Dockerfile `COPY --from=` and the operator
all read it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kaci.azureml._files import ModelFile
from kaci.azureml.exceptions import UserErrorException, WebserviceException
from kaci.registry.auth import ConfigError, load_config, user_config_path
from kaci.registry.client import (
    Distribution,
    RegistryDenied,
    RegistryError,
    RegistryUnreachable,
)
from kaci.registry.reference import Reference as ImageRef

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def ref(self) -> str:
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str) -> Reference:
    """`host[:port]/repo[:tag][@sha256:...]` (the host part is required here)."""
    rest, _, digest = text.partition("@")
    registry, slash, path = rest.partition("/")
    if (
        not slash
        or not path
        or ("." not in registry and ":" not in registry and registry != "localhost")
    ):
        raise UserErrorException(f"image reference {text!r} must start with a registry host")
    tag = None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, _, tag = path.rpartition(":")
    if digest and not digest.startswith("sha256:"):
        raise UserErrorException(f"image reference {text!r}: only sha256 digests are supported")
    return Reference(registry, path, tag or None, digest or None)


# The files sit in one folder of the image, not at its root: a container made from
# the image (how a Docker Engine reads it) also holds the engine's own files at /.
FILES_DIR = "model"


def layer_tar(files: list[ModelFile]) -> bytes:
    """A reproducible tar of the files under FILES_DIR/ (fixed times, owners, modes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for f in sorted(files, key=lambda f: f.name):
            path = f"{FILES_DIR}/{f.name}"
            for parent in reversed(PurePosixPath(path).parents[:-1]):
                if str(parent) not in dirs:
                    dirs.add(str(parent))
                    info = tarfile.TarInfo(str(parent))
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                    tar.addfile(info)
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = f.size, 0o644, 0
            with f.local.open("rb") as src:
                tar.addfile(info, src)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_blobs(files: list[ModelFile]) -> tuple[bytes, bytes, bytes]:
    """(layer.tar.gz, config json, manifest json) of the one-layer image."""
    raw = layer_tar(files)
    layer = gzip.compress(raw, compresslevel=6, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"dev.kaci.content": "model-files"}},
            "rootfs": {"type": "layers", "diff_ids": [_sha(raw)]},
            "history": [{"created_by": "kaci.azureml Model.register"}],
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": {"mediaType": CONFIG_V1, "size": len(config), "digest": _sha(config)},
            "layers": [{"mediaType": LAYER_GZIP, "size": len(layer), "digest": _sha(layer)}],
        },
        sort_keys=True,
    ).encode()
    return layer, config, manifest


class RegistryClient:
    def __init__(self, registry: str, insecure: bool, config: dict[str, Any] | None = None) -> None:
        self.registry = registry
        host = registry.split("/", 1)[0]
        try:
            creds = load_config(user_config_path()) if config is None else config
        except ConfigError as e:
            raise UserErrorException(str(e)) from None
        self.http = Distribution(creds, [host] if insecure else [])

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except RegistryUnreachable as e:
            raise WebserviceException(f"{what}: {e}") from None
        except RegistryDenied as e:
            raise UserErrorException(f"{what}: {e}") from None
        except RegistryError as e:
            raise WebserviceException(f"{what}: {e}") from None

    def _ref(self, repository: str, tag: str | None = None) -> ImageRef:
        return ImageRef(self.registry.split("/", 1)[0], repository, tag)

    def push_files(self, repository: str, tag: str, files: list[ModelFile]) -> str:
        """Push the files as `registry/repository:tag`; returns the digest reference."""
        layer, config, manifest = image_blobs(files)
        ref = self._ref(repository, tag)
        with self._errors(f"push of {self.registry}/{repository}:{tag}"):
            self.http.upload_blob(ref, layer)
            self.http.upload_blob(ref, config)
            digest = self.http.put_manifest(ref, manifest, MANIFEST_V2)
        return f"{self.registry}/{repository}@{digest}"

    def pull_files(self, reference: str, subpath: str, target: Path) -> list[Path]:
        """Extract the image's files under `subpath` (e.g. "/") into `target`."""
        ref = parse_reference(reference)
        image = self._ref(ref.repository, ref.tag)
        if ref.digest:
            image = image.with_digest(ref.digest)
        prefix = subpath.strip("/")
        written: list[Path] = []
        target.mkdir(parents=True, exist_ok=True)
        root = target.resolve()
        with self._errors(f"read of {reference}"):
            manifest = self.http.image_manifest(image)
            for layer in manifest.get("layers", []):
                resp = self.http.open_blob(image, str(layer["digest"]))
                try:
                    written += _extract(resp, prefix, root, reference)
                finally:
                    resp.release_conn()
        return written


def _extract(stream: Any, prefix: str, root: Path, reference: str) -> list[Path]:
    """A layer's regular files under `prefix` into `root` (names may not escape it)."""
    written: list[Path] = []
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            name = member.name.lstrip("./").lstrip("/")
            if prefix:
                if not name.startswith(prefix + "/"):
                    continue
                name = name[len(prefix) + 1 :]
            if not member.isfile() or not name or name.split("/")[-1].startswith(".wh."):
                continue
            dest = (root / name).resolve()
            if not dest.is_relative_to(root):
                raise WebserviceException(f"{reference}: layer path {member.name!r} escapes")
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None
            with dest.open("wb") as out:
                shutil.copyfileobj(src, out)
            written.append(dest)
    return written
