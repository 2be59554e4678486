"""Push and pull model files as a one-layer OCI image, with the registry HTTP API.

Only the Distribution API (`/v2/`) is used, anonymously (the local registry of a
kaci install) — no Docker Engine is needed on the SDK user's machine.
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
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import urllib3

from kaci.azureml._files import ModelFile
from kaci.azureml.exceptions import UserErrorException, WebserviceException

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ACCEPT = ", ".join([MANIFEST_V2, OCI_MANIFEST, MANIFEST_LIST, OCI_INDEX])


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
    def __init__(self, registry: str, insecure: bool) -> None:
        self.registry = registry
        self.base = f"{'http' if insecure else 'https'}://{registry}"
        self.http = urllib3.PoolManager(retries=urllib3.Retry(connect=3, read=2, redirect=3))

    def _req(self, method: str, url: str, **kw: Any) -> urllib3.BaseHTTPResponse:
        try:
            return self.http.request(method, url, **kw)
        except urllib3.exceptions.HTTPError as exc:
            raise WebserviceException(f"registry {self.registry} unreachable: {exc}") from None

    @staticmethod
    def _check(resp: urllib3.BaseHTTPResponse, what: str, ok: tuple[int, ...]) -> None:
        if resp.status not in ok:
            body = resp.data[:300].decode(errors="replace").strip()
            raise WebserviceException(f"{what}: registry answered {resp.status} {body}")

    def _put_blob(self, repo: str, data: bytes) -> None:
        digest = _sha(data)
        head = self._req("HEAD", f"{self.base}/v2/{repo}/blobs/{digest}")
        if head.status == 200:
            return  # the registry already has it: uploads are content-addressed
        start = self._req("POST", f"{self.base}/v2/{repo}/blobs/uploads/")
        self._check(start, f"start upload to {repo}", (202,))
        location = start.headers["Location"]
        if location.startswith("/"):
            location = self.base + location
        sep = "&" if "?" in location else "?"
        put = self._req(
            "PUT",
            f"{location}{sep}digest={digest}",
            body=data,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        self._check(put, f"upload blob to {repo}", (201,))

    def push_files(self, repository: str, tag: str, files: list[ModelFile]) -> str:
        """Push the files as `registry/repository:tag`; returns the digest reference."""
        layer, config, manifest = image_blobs(files)
        self._put_blob(repository, layer)
        self._put_blob(repository, config)
        resp = self._req(
            "PUT",
            f"{self.base}/v2/{repository}/manifests/{tag}",
            body=manifest,
            headers={"Content-Type": MANIFEST_V2},
        )
        self._check(resp, f"push manifest {repository}:{tag}", (201,))
        return f"{self.registry}/{repository}@{_sha(manifest)}"

    def _manifest(self, ref: Reference) -> dict[str, Any]:
        resp = self._req(
            "GET",
            f"{self.base}/v2/{ref.repository}/manifests/{ref.ref}",
            headers={"Accept": ACCEPT},
        )
        self._check(resp, f"read manifest of {ref}", (200,))
        doc: dict[str, Any] = json.loads(resp.data)
        if doc.get("mediaType") in (MANIFEST_LIST, OCI_INDEX) or "manifests" in doc:
            entries = doc.get("manifests") or []
            pick = next(
                (m for m in entries if m.get("platform", {}).get("os") in (None, "linux")), None
            )
            if pick is None:
                raise WebserviceException(f"{ref}: image index has no linux image")
            return self._manifest(Reference(ref.registry, ref.repository, None, pick["digest"]))
        return doc

    def pull_files(self, reference: str, subpath: str, target: Path) -> list[Path]:
        """Extract the image's files under `subpath` (e.g. "/") into `target`."""
        ref = parse_reference(reference)
        manifest = self._manifest(ref)
        prefix = subpath.strip("/")
        written: list[Path] = []
        target.mkdir(parents=True, exist_ok=True)
        root = target.resolve()
        for layer in manifest.get("layers", []):
            resp = self._req(
                "GET",
                f"{self.base}/v2/{ref.repository}/blobs/{layer['digest']}",
                preload_content=False,
            )
            self._check(resp, f"read layer of {ref}", (200,))
            with tarfile.open(fileobj=resp, mode="r|*") as tar:
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
                        raise WebserviceException(f"{ref}: layer path {member.name!r} escapes")
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(member)
                    assert src is not None
                    with dest.open("wb") as out:
                        shutil.copyfileobj(src, out)
                    written.append(dest)
            resp.release_conn()
        return written
