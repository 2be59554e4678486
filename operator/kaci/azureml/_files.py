"""Model files on the local disk: which files, their digest, and where they go.

Storage choice (why): a ConfigMap is the simplest home that needs nothing but the
API server, and the operator reads it directly; but a ConfigMap holds at most
1 MiB (etcd's object limit) and its keys are flat file names. So flat sets of
files up to CONFIGMAP_LIMIT go to a ConfigMap (binaryData, owned by the Model),
and anything larger or with sub-folders is pushed as a one-layer OCI image to the
registry the cluster's builder pulls from (Model.spec.source.image). The registry
is already part of every kaci install (scoring images live there), streams large
blobs, deduplicates identical uploads by digest, and needs no helper Pod or PVC.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from kaci.azureml._names import CONFIGMAP_KEY_RE
from kaci.azureml.exceptions import UserErrorException

# etcd refuses objects over 1.5 MiB and the API server's default is 1 MiB of
# ConfigMap data; base64 in binaryData costs 4/3, so keep the raw bytes well under.
CONFIGMAP_LIMIT = 700 * 1024


@dataclass(frozen=True)
class ModelFile:
    """One file: its path inside the model (POSIX, relative) and on the local disk."""

    name: str
    local: Path
    size: int
    sha256: str


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def collect(
    model_path: str | os.PathLike[str], child_paths: list[str] | None = None
) -> list[ModelFile]:
    """The files of `model_path` (Azure's rule: a folder keeps its own name as prefix)."""
    root = Path(model_path)
    if not root.exists():
        raise UserErrorException(f"model_path {str(model_path)!r} does not exist")
    if root.is_file():
        if child_paths:
            raise UserErrorException("child_paths can only be used when model_path is a folder")
        return [_file(root.name, root)]
    base = root.resolve().name
    if child_paths:
        picked = []
        for child in child_paths:
            p = root / child
            if not p.is_file():
                raise UserErrorException(f"child path {child!r} is not a file under {model_path}")
            picked.append(p)
    else:
        picked = sorted(p for p in root.rglob("*") if p.is_file())
    if not picked:
        raise UserErrorException(f"model_path {str(model_path)!r} holds no files")
    return [_file(f"{base}/{p.relative_to(root).as_posix()}", p) for p in picked]


def _file(name: str, local: Path) -> ModelFile:
    return ModelFile(name=name, local=local, size=local.stat().st_size, sha256=_hash_file(local))


def merge(groups: list[list[ModelFile]]) -> list[ModelFile]:
    """Several model_paths into one file set; two files with one name are an error."""
    seen: dict[str, ModelFile] = {}
    for group in groups:
        for f in group:
            if f.name in seen:
                raise UserErrorException(f"two model files are both named {f.name!r}")
            seen[f.name] = f
    return sorted(seen.values(), key=lambda f: f.name)


def digest(files: list[ModelFile]) -> str:
    """Content digest of a file set: names and contents, order-independent."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.name):
        h.update(f"{f.name}\0{f.sha256}\n".encode())
    return f"sha256:{h.hexdigest()}"


def fits_configmap(files: list[ModelFile]) -> bool:
    """True when the files can be ConfigMap keys: flat names, small in total."""
    return sum(f.size for f in files) <= CONFIGMAP_LIMIT and all(
        CONFIGMAP_KEY_RE.match(f.name) for f in files
    )
