"""Put local model files where the cluster can read them (see _files for the choice)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kaci.azureml import _files, _manifests
from kaci.azureml._names import content_name
from kaci.azureml._registry import FILES_DIR, RegistryClient

if TYPE_CHECKING:
    from kaci.azureml.core.workspace import Workspace


@dataclass(frozen=True)
class Uploaded:
    source: dict[str, Any]  # a Model source: {"configMap": ...} or {"image": ...}
    configmap: str | None  # the ConfigMap to give an owner once the owner exists
    digest: str


def upload(
    ws: Workspace, files: list[_files.ModelFile], prefix: str, labels: dict[str, str]
) -> Uploaded:
    """Upload `files`; objects are named `<prefix>-<digest>` so a change is a new name."""
    digest = _files.digest(files)
    if _files.fits_configmap(files):
        name = content_name(prefix, digest)
        body = _manifests.configmap_body(
            name, {f.name: f.local.read_bytes() for f in files}, labels
        )
        ws._kube.create_or_replace_configmap(body)
        source = {"configMap": {"name": name, "keys": [f.name for f in files]}}
        return Uploaded(source, name, digest)
    repo = f"kaci/{ws.namespace}/model-files/{prefix}"
    tag = digest.removeprefix("sha256:")[:20]
    pushed = RegistryClient(ws.registry, ws.registry_insecure).push_files(repo, tag, files)
    if ws.registry_pull:
        # The cluster pulls from another address than the one we pushed to.
        pushed = ws.registry_pull + pushed[len(ws.registry) :]
    return Uploaded({"image": {"reference": pushed, "path": f"/{FILES_DIR}"}}, None, digest)
