"""Model: Azure ML's registered model, as a kaci Model object.

One Model object per model name holds every version (status.versions); each
registration of changed files is a new version, like Azure. Registering the same
files again is not a new version (kaci versions by content digest).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from kaci import api
from kaci.azureml import _files, _manifests
from kaci.azureml._names import (
    LABEL_MODEL,
    model_object_name,
    split_id,
    validate_model_name,
)
from kaci.azureml._registry import RegistryClient
from kaci.azureml._upload import upload
from kaci.azureml._wait import wait_for
from kaci.azureml.core._inference import InferenceConfig
from kaci.azureml.exceptions import (
    FailedStateException,
    KaciCompatibilityWarning,
    ModelNotFoundException,
    UserErrorException,
    WebserviceException,
)

if TYPE_CHECKING:
    from kaci.azureml.core.workspace import Workspace

Obj = dict[str, Any]
# `list` is also a method name in the classes below (Azure's API).
AnyList = list[Any]
StrList = list[str]
PLURAL = api.MODELS
__all__ = ["InferenceConfig", "Model"]
MODELS_DIR = "azureml-models"
# Seconds Model.register waits for the operator to take in the new version.
REGISTER_TIMEOUT_S = 600.0
FAILED_REASONS = frozenset({"BadSource", "BadSpec", "Failed"})


def model_name_of(obj: Obj) -> str:
    return str(obj.get("spec", {}).get("modelName") or obj["metadata"]["name"])


def versions_of(obj: Obj) -> list[Obj]:
    """Every known version of a Model object, oldest first."""
    status = obj.get("status", {}) or {}
    versions = [dict(v) for v in status.get("versions", []) or [] if v.get("version")]
    current = status.get("version")
    if current and not any(v["version"] == current for v in versions):
        versions.append(
            {"version": current, "digest": status.get("digest"), "location": status.get("location")}
        )
    return sorted(versions, key=lambda v: int(v["version"]))


def find_model(ws: Workspace, name: str) -> Obj | None:
    """The Model object for an Azure model name (or a Kubernetes object name)."""
    kube = ws._kube
    try:
        candidate = model_object_name(name)
    except UserErrorException:
        candidate = None
    if candidate:
        obj = kube.get(PLURAL, candidate)
        if obj is not None and model_name_of(obj) == name:
            return obj
    for obj in kube.list_objects(PLURAL):
        if model_name_of(obj) == name or obj["metadata"]["name"] == name:
            return obj
    return None


def _tag_match(have: dict[str, str], wanted: list[Any] | None) -> bool:
    """Azure's filter: each entry is 'key' or [key, value]."""
    for w in wanted or []:
        if isinstance(w, (list, tuple)):
            if have.get(str(w[0])) != str(w[1]):
                return False
        elif w not in have:
            return False
    return True


def _model_verdict(obj: Obj) -> str:
    if not _manifests.is_observed(obj):
        return "pending"
    ready = _manifests.condition(obj, api.READY)
    if ready is None:
        return "done" if obj.get("status", {}).get("version") else "pending"
    if ready.get("status") == "True":
        return "done"
    # The operator's permanent failures; other False reasons (Fetching, a source not
    # there yet) can still turn True, so keep waiting.
    if ready.get("status") == "False" and ready.get("reason") in FAILED_REASONS:
        return "failed"
    return "pending"


class Model:
    """A registered model version (Azure's azureml.core.model.Model)."""

    class Framework:
        """Azure's framework constants (for register, list and no-code deploys)."""

        CUSTOM = "Custom"
        TENSORFLOW = "TensorFlow"
        SCIKITLEARN = "ScikitLearn"
        ONNX = "Onnx"
        TFKERAS = "TfKeras"
        PYTORCH = "PyTorch"
        MULTI = "Multi"

    # Frameworks kaci has a built-in scorer for (Azure's list also has TensorFlow
    # and Multi; see kaci.azureml.core._no_code).
    _SUPPORTED_FRAMEWORKS_FOR_NO_CODE_DEPLOY: ClassVar[tuple[str, ...]] = (
        Framework.SCIKITLEARN,
        Framework.ONNX,
    )

    def __init__(
        self,
        workspace: Workspace,
        name: str | None = None,
        id: str | None = None,
        tags: list[Any] | None = None,
        properties: list[Any] | None = None,
        version: int | None = None,
        run_id: str | None = None,
        model_framework: str | None = None,
        expand: bool = True,
        **kwargs: Any,
    ) -> None:
        self.workspace = workspace
        obj: Obj | None = kwargs.get("_obj")
        if obj is None:
            if run_id is not None:
                warnings.warn(
                    "Model: run_id is not used: kaci has no experiment runs",
                    KaciCompatibilityWarning,
                    stacklevel=2,
                )
            if id is not None:
                name, id_version = split_id(id)
                version = version or id_version
            if not name:
                raise UserErrorException("Model needs a name or an id")
            obj = find_model(workspace, name)
            if obj is None:
                raise ModelNotFoundException(
                    f"ModelNotFound: model {name!r} not found in namespace {workspace.namespace}"
                )
        self._initialize(obj, version)
        if not _tag_match(self.tags, tags) or not _tag_match(self.properties, properties):
            raise ModelNotFoundException(f"ModelNotFound: model {self.name} has no such tags")
        if model_framework is not None and self.model_framework != model_framework:
            raise ModelNotFoundException(
                f"ModelNotFound: model {self.name} has framework {self.model_framework}"
            )

    def _initialize(self, obj: Obj, version: int | None) -> None:
        if version is not None and not isinstance(version, int):
            raise WebserviceException("version should be an int")
        spec = obj.get("spec", {})
        versions = versions_of(obj)
        if version is None:
            entry = versions[-1] if versions else {}
        else:
            found = [v for v in versions if int(v["version"]) == version]
            if not found:
                have = ", ".join(str(v["version"]) for v in versions) or "none yet"
                raise ModelNotFoundException(
                    f"ModelNotFound: model {model_name_of(obj)} has no version {version} "
                    f"(versions: {have})"
                )
            entry = found[0]
        self._obj = obj
        self._object_name = str(obj["metadata"]["name"])
        self.name = model_name_of(obj)
        self.version: int | None = int(entry["version"]) if entry.get("version") else None
        self.id = f"{self.name}:{self.version}" if self.version else self.name
        self.tags: dict[str, str] = dict(spec.get("tags") or {})
        self.properties: dict[str, str] = dict(spec.get("properties") or {})
        self.description: str | None = spec.get("description")
        self.model_framework: str | None = spec.get("framework")
        self.model_framework_version: str | None = None
        self.digest: str | None = entry.get("digest")
        self.url: str | None = entry.get("location")
        self.files: list[str] = list(obj.get("status", {}).get("files") or [])
        created = entry.get("created") or obj["metadata"].get("creationTimestamp")
        self.created_time: datetime | None = (
            datetime.fromisoformat(str(created).replace("Z", "+00:00")) if created else None
        )
        self.unpack = False
        self.run_id = None
        self.experiment_name = None

    def __repr__(self) -> str:
        return (
            f"Model(workspace={self.workspace!r}, name={self.name}, id={self.id}, "
            f"version={self.version}, tags={self.tags}, properties={self.properties})"
        )

    # -- registration -----------------------------------------------------------

    @staticmethod
    def register(
        workspace: Workspace,
        model_path: str,
        model_name: str,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        datasets: list[Any] | None = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
        child_paths: list[str] | None = None,
        sample_input_dataset: Any = None,
        sample_output_dataset: Any = None,
        resource_configuration: Any = None,
        *,
        timeout_sec: float | None = REGISTER_TIMEOUT_S,
    ) -> Model:
        """Upload the file or folder and create (or add a version to) the Model."""
        validate_model_name(model_name)
        if model_framework is None and model_framework_version is not None:
            raise WebserviceException(
                "Model framework version cannot be provided without a valid framework"
            )
        unused = [
            n
            for n, v in (
                ("datasets", datasets),
                ("sample_input_dataset", sample_input_dataset),
                ("sample_output_dataset", sample_output_dataset),
                ("resource_configuration", resource_configuration),
            )
            if v is not None
        ]
        if unused:
            warnings.warn(
                f"Model.register: {', '.join(unused)} are not used by kaci (no datasets; "
                "resources are set per Webservice)",
                KaciCompatibilityWarning,
                stacklevel=2,
            )
        if model_framework_version is not None:
            properties = {**(properties or {}), "frameworkVersion": model_framework_version}
        files = _files.collect(model_path, child_paths)
        print(f"Registering model {model_name}")
        return _register_files(
            workspace,
            files,
            model_name,
            tags=tags,
            properties=properties,
            description=description,
            framework=model_framework,
            timeout_sec=timeout_sec,
        )

    # -- queries ------------------------------------------------------------------

    @staticmethod
    def list(
        workspace: Workspace,
        name: str | None = None,
        tags: list[Any] | None = None,
        properties: list[Any] | None = None,
        run_id: str | None = None,
        latest: bool = False,
        dataset_id: str | None = None,
        expand: bool = True,
        page_count: int = 255,
        model_framework: str | None = None,
    ) -> list[Model]:
        """Every version of every model (or the latest only), filtered like Azure."""
        out: list[Model] = []
        for obj in workspace._kube.list_objects(PLURAL):
            if name is not None and model_name_of(obj) != name:
                continue
            spec = obj.get("spec", {})
            if not _tag_match(spec.get("tags") or {}, tags):
                continue
            if not _tag_match(spec.get("properties") or {}, properties):
                continue
            if model_framework is not None and spec.get("framework") != model_framework:
                continue
            versions = versions_of(obj)
            picked = versions[-1:] if latest else versions
            if not picked:  # registered, but no version yet: still listed
                out.append(Model(workspace, _obj=obj))
            for v in picked:
                out.append(Model(workspace, _obj=obj, version=int(v["version"])))
        return out

    @staticmethod
    def get_model_path(
        model_name: str, version: int | None = None, _workspace: Workspace | None = None
    ) -> str:
        """Path of a model's files: the local cache, ./<name>, or downloaded from the cluster."""
        if version is not None and not isinstance(version, int):
            raise WebserviceException("version should be an int")
        if _workspace is not None and version is None:
            return Model._get_model_path_remote(model_name, version, _workspace)
        try:
            return Model._get_model_path_local(model_name, version)
        except ModelNotFoundException:
            if _workspace is None:
                raise
            return Model._get_model_path_remote(model_name, version, _workspace)

    @staticmethod
    def _get_model_path_local(model_name: str, version: int | None) -> str:
        cached = Path(MODELS_DIR) / model_name
        if cached.is_dir():
            if version is None:
                numbers = [int(p.name) for p in cached.iterdir() if p.name.isdigit()]
                version = max(numbers) if numbers else None
            if version is not None:
                vdir = cached / str(version)
                if vdir.is_dir():
                    entries = sorted(vdir.iterdir())
                    if len(entries) != 1:
                        raise WebserviceException(
                            f"Dir {vdir} can contain only 1 file or folder. Found {entries}"
                        )
                    return str(entries[0])
        if Path(model_name).exists():
            return model_name
        raise ModelNotFoundException(
            f"Model {model_name} not found in cache at {MODELS_DIR} or in current working "
            f"directory {Path.cwd()}."
        )

    @staticmethod
    def _get_model_path_remote(model_name: str, version: int | None, ws: Workspace) -> str:
        model = Model(ws, name=model_name, version=version)
        target = Path(MODELS_DIR) / model_name / str(model.version)
        return model.download(str(target), exist_ok=True)

    # -- files ----------------------------------------------------------------------

    def download(
        self, target_dir: str = ".", exist_ok: bool = False, exists_ok: bool | None = None
    ) -> str:
        """Download this version's files into target_dir; returns their common path."""
        if exists_ok is not None:
            exist_ok = exists_ok
        with tempfile.TemporaryDirectory(prefix="kaci-model-") as tmp:
            staged = Path(tmp)
            names = self._fetch_into(staged)
            if not names:
                raise WebserviceException(f"model {self.id} has no files to download")
            target = Path(target_dir)
            dests = [target / n for n in names]
            if not exist_ok:
                for d in dests:
                    if d.exists():
                        raise WebserviceException(
                            f"File already exists. To overwrite, set exist_ok to True. {d}"
                        )
            for n, d in zip(names, dests, strict=True):
                d.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(staged / n, d)
        return os.path.commonpath([str(d) for d in dests])

    def _fetch_into(self, staged: Path) -> StrList:
        ws = self.workspace
        source = self._obj.get("spec", {}).get("source", {})
        latest = versions_of(self._obj)[-1:] or [{}]
        is_latest = latest[0].get("version") == self.version
        reference, subpath = None, "/"
        if self.url:
            reference = self.url
        elif "image" in source:
            reference, subpath = source["image"]["reference"], source["image"].get("path", "/")
        if reference:
            if ws.registry_pull and reference.startswith(ws.registry_pull + "/"):
                reference = ws.registry + reference[len(ws.registry_pull) :]
            client = RegistryClient(reference.split("/", 1)[0], ws.registry_insecure)
            written = client.pull_files(reference, subpath, staged)
            return sorted(p.relative_to(staged.resolve()).as_posix() for p in written)
        if "configMap" in source and is_latest:
            import base64

            cm = ws._kube.read_configmap(source["configMap"]["name"])
            keys = source["configMap"].get("keys")
            blobs = {k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()}
            blobs.update({k: v.encode() for k, v in (cm.get("data") or {}).items()})
            for k, data in blobs.items():
                if keys is None or k in keys:
                    (staged / k).write_bytes(data)
            return sorted(blobs if keys is None else [k for k in keys if k in blobs])
        raise WebserviceException(
            f"model {self.id}: its files are not stored where the SDK can read them "
            "(no registry location yet and the source is not a ConfigMap or image)"
        )

    # -- changes --------------------------------------------------------------------

    def update(
        self, tags: dict[str, str] | None = None, description: str | None = None, **kwargs: Any
    ) -> None:
        """Replace tags and/or description (Azure's update)."""
        patch: Obj = {}
        if tags is not None:
            patch["tags"] = {str(k): str(v) for k, v in tags.items()}
        if description is not None:
            patch["description"] = description
        if kwargs:
            warnings.warn(
                f"Model.update: {', '.join(kwargs)} are not used by kaci",
                KaciCompatibilityWarning,
                stacklevel=2,
            )
        if patch:
            obj = self.workspace._kube.patch(PLURAL, self._object_name, {"spec": patch})
            self._initialize(obj, self.version)

    def add_tags(self, tags: dict[str, str]) -> None:
        self.update(tags={**self.tags, **tags})

    def remove_tags(self, tags: StrList) -> None:
        self.update(tags={k: v for k, v in self.tags.items() if k not in tags})

    def add_properties(self, properties: dict[str, str]) -> None:
        merged = {**self.properties, **{str(k): str(v) for k, v in properties.items()}}
        obj = self.workspace._kube.patch(
            PLURAL, self._object_name, {"spec": {"properties": merged}}
        )
        self._initialize(obj, self.version)

    def delete(self) -> None:
        """Delete the model (all its versions: kaci keeps them in one object).

        Like Azure, refused while an Image uses it.
        """
        users = [
            i["metadata"]["name"]
            for i in self.workspace._kube.list_objects(api.IMAGES)
            if any(m.get("name") == self.name for m in i.get("spec", {}).get("models", []))
        ]
        if users:
            raise WebserviceException(
                f"The model cannot be deleted because it is currently being used in one or more "
                f"images: {', '.join(users)}. Delete those images first."
            )
        self.workspace._kube.delete_and_wait(PLURAL, self._object_name)

    # -- deployment (Azure's 2019+ entry points) ---------------------------------------

    @staticmethod
    def deploy(
        workspace: Workspace,
        name: str,
        models: AnyList,
        inference_config: Any = None,
        deployment_config: Any = None,
        deployment_target: Any = None,
        overwrite: bool = False,
        show_output: bool = False,
    ) -> Any:
        """Deploy zero or more registered models (see core.webservice._deploy for the dispatch)."""
        from kaci.azureml.core.webservice._deploy import deploy

        return deploy(
            workspace,
            name,
            models,
            inference_config,
            deployment_config,
            deployment_target,
            overwrite,
            show_output,
        )

    @staticmethod
    def package(
        workspace: Workspace,
        models: AnyList,
        inference_config: Any = None,
        generate_dockerfile: bool = False,
        image_name: str | None = None,
        image_label: str | None = None,
    ) -> Any:
        """Build the scoring image without deploying it: an Image (wait_for_creation, location)."""
        if generate_dockerfile:
            raise WebserviceException(
                "Model.package(generate_dockerfile=True): the operator renders and builds the "
                "context itself; package without it and pull the image from image.location"
            )
        if image_label is not None:
            warnings.warn(
                "Model.package: image_label is not used (kaci tags images by content hash "
                "and version)",
                KaciCompatibilityWarning,
                stacklevel=2,
            )
        return package_image(workspace, list(models), inference_config, image_name)

    @staticmethod
    def profile(*args: Any, **kwargs: Any) -> Any:
        raise WebserviceException(
            "Model.profile is not offered by kaci (Azure retired it too): size the service "
            "with cpu_cores/memory_gb and measure it (the repository's bench/ shows how)"
        )

    def serialize(self) -> Obj:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "tags": self.tags,
            "properties": self.properties,
            "description": self.description,
            "framework": self.model_framework,
            "digest": self.digest,
            "location": self.url,
            "createdTime": self.created_time.isoformat() if self.created_time else None,
            "files": self.files,
        }


def package_image(
    workspace: Workspace,
    models: list[Model],
    inference_config: Any,
    image_name: str | None = None,
    layer_compression: str | None = None,
) -> Any:
    """An Image in the cluster for these models and this InferenceConfig (applied: the
    operator builds it once per content). Unnamed, it is named by its spec, so the same
    inputs name the same Image. `layer_compression`: gzip for a Docker Engine that
    cannot pull zstd layers (the LocalWebservice's docker mode)."""
    import hashlib
    import json

    from kaci.azureml._names import validate_image_name
    from kaci.azureml.core.image.container import ContainerImage
    from kaci.azureml.core.webservice._deploy import build_spec

    spec = build_spec(workspace, models, inference_config)
    if layer_compression is not None:
        spec["layerCompression"] = layer_compression
    if image_name is None:
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        image_name = f"package-{digest[:10]}"
    validate_image_name(image_name)
    body = _manifests.image_body(image_name, [(m.name, m.version) for m in models], spec)
    obj = workspace._kube.apply(api.IMAGES, body)
    return ContainerImage(workspace, _obj=obj)


def _register_files(
    ws: Workspace,
    files: list[_files.ModelFile],
    model_name: str,
    *,
    tags: dict[str, str] | None,
    properties: dict[str, str] | None,
    description: str | None,
    framework: str | None,
    timeout_sec: float | None,
) -> Model:
    kube = ws._kube
    existing = find_model(ws, model_name)
    object_name = existing["metadata"]["name"] if existing else model_object_name(model_name)
    uploaded = upload(ws, files, object_name, {LABEL_MODEL: object_name})
    body = _manifests.model_body(
        object_name, model_name, uploaded.source, tags, properties, description, framework
    )
    obj = kube.apply(PLURAL, body)
    if uploaded.configmap:
        kube.set_owner("ConfigMap", uploaded.configmap, obj)
    obj = wait_for(
        lambda: kube.get(PLURAL, object_name),
        _model_verdict,  # type: ignore[arg-type]
        timeout_sec,
        lambda o: None,
        f"model {model_name}",
    )
    if _model_verdict(obj) == "failed":
        ready = _manifests.condition(obj, api.READY) or {}
        raise FailedStateException(
            f"model {model_name} could not be registered: "
            f"{ready.get('message') or ready.get('reason')}"
        )
    # Earlier ConfigMaps of this model are no longer read: the operator keeps every
    # version's files in the registry (status.versions[].location).
    if uploaded.configmap and all(v.get("location") for v in versions_of(obj)):
        for cm in kube.list_configmaps(f"{LABEL_MODEL}={object_name}"):
            if cm["metadata"]["name"] != uploaded.configmap:
                kube.delete_configmap(cm["metadata"]["name"])
    return Model(ws, _obj=obj)
