"""Image: a scoring image the operator builds (Azure's azureml.core.image.Image)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from kaci import api
from kaci.azureml import _manifests
from kaci.azureml._names import split_id, validate_image_name
from kaci.azureml._wait import Display, new_log_lines, wait_for
from kaci.azureml.exceptions import (
    FailedStateException,
    ResourceNotFoundException,
    UserErrorException,
    WebserviceException,
)

if TYPE_CHECKING:
    from kaci.azureml.core.image.container import ContainerImageConfig
    from kaci.azureml.core.model import Model
    from kaci.azureml.core.workspace import Workspace

Obj = dict[str, Any]
# `list` is also a method name in the classes below (Azure's API).
AnyList = list[Any]
StrList = list[str]
PLURAL = api.IMAGES
TERMINAL = ("Succeeded", "Failed")


def image_verdict(obj: Obj) -> str:
    if not _manifests.is_observed(obj):
        return "pending"
    state = obj.get("status", {}).get("state")
    if state == "Succeeded":
        return "done"
    if state == "Failed":
        return "failed"
    return "pending"


def failure_reason(obj: Obj) -> str:
    status = obj.get("status", {})
    for ctype in ("Ready", "Built"):
        c = _manifests.condition(obj, ctype)
        if c and c.get("status") == "False" and c.get("message"):
            return str(c["message"])
    return str(status.get("error", {}).get("message") or status.get("state") or "unknown")


def _config_spec(config: Any, workspace: Workspace) -> Obj:
    """An InferenceConfig's build spec (it may upload a source_directory), or a
    ContainerImage configuration's."""
    spec_for = getattr(config, "_spec_for", None)
    if spec_for is not None:
        return dict(spec_for(workspace))
    return dict(config._spec())


class Image:
    """An image version; `Image(ws, name)` returns the current one."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Image:
        if cls is Image:
            from kaci.azureml.core.image.container import ContainerImage

            return super().__new__(ContainerImage)
        return super().__new__(cls)

    def __init__(
        self,
        workspace: Workspace,
        name: str | None = None,
        id: str | None = None,
        tags: list[Any] | None = None,
        properties: list[Any] | None = None,
        version: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.workspace = workspace
        obj: Obj | None = kwargs.get("_obj")
        if obj is None:
            if id is not None:
                name, id_version = split_id(id)
                version = version or id_version
            if not name:
                raise UserErrorException("Image needs a name or an id")
            obj = workspace._kube.get(PLURAL, name)
            if obj is None:
                raise ResourceNotFoundException(
                    f"ImageNotFound: image {name!r} not found in namespace {workspace.namespace}"
                )
        self._initialize(obj)
        if version is not None and self.version is not None and int(version) != self.version:
            raise ResourceNotFoundException(
                f"ImageNotFound: image {self.name} is at version {self.version}; kaci keeps "
                f"only the current version, not {version}"
            )

    def _initialize(self, obj: Obj) -> None:
        spec, status = obj.get("spec", {}), obj.get("status", {}) or {}
        self._obj = obj
        self._object_name = str(obj["metadata"]["name"])
        self.name = str(spec.get("imageName") or obj["metadata"]["name"])
        self.version: int | None = status.get("version")
        self.id = f"{self.name}:{self.version}" if self.version else self.name
        self.creation_state: str = status.get("state") or "NotStarted"
        self.image_location: str | None = status.get("imageLocation")
        # Model.package's result reads `location` (Azure's ModelPackage).
        self.location: str | None = self.image_location
        self.image_build_log: str = status.get("buildLog") or ""
        # Azure gave a blob URL; here the log is in the object (image_build_log).
        self.image_build_log_uri: str | None = None
        self.generated_dockerfile_uri: str | None = None
        self.description: str | None = spec.get("description")
        self.tags: dict[str, str] = dict(spec.get("tags") or {})
        self.properties: dict[str, str] = {}
        self.image_type = "Docker"
        self.image_flavor = "WebApiContainer"
        used = status.get("models") or spec.get("models") or []
        self.model_ids = [
            f"{m['name']}:{m['version']}" if m.get("version") else m["name"] for m in used
        ]
        created = obj["metadata"].get("creationTimestamp")
        self.created_time = (
            datetime.fromisoformat(str(created).replace("Z", "+00:00")) if created else None
        )

    @property
    def models(self) -> list[Model]:
        from kaci.azureml.core.model import Model

        out = []
        for mid in self.model_ids:
            name, version = split_id(mid)
            out.append(Model(self.workspace, name=name, version=version))
        return out

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(workspace={self.workspace!r}, name={self.name}, "
            f"id={self.id}, tags={self.tags}, properties={self.properties}, version={self.version})"
        )

    @staticmethod
    def create(
        workspace: Workspace, name: str, models: list[Model], image_config: ContainerImageConfig
    ) -> Image:
        """Create (or rebuild) the Image; returns at once — wait with wait_for_creation()."""
        validate_image_name(name)
        body = _manifests.image_body(
            name, [(m.name, m.version) for m in models], _config_spec(image_config, workspace)
        )
        obj = workspace._kube.apply(PLURAL, body)
        from kaci.azureml.core.image.container import ContainerImage

        return ContainerImage(workspace, _obj=obj)

    def update_creation_state(self) -> None:
        obj = self.workspace._kube.get(PLURAL, self._object_name)
        if obj is None:
            raise ResourceNotFoundException(f"Error: image {self.id} not found")
        self._initialize(obj)

    def wait_for_creation(
        self, show_output: bool = False, timeout_sec: float | None = None
    ) -> None:
        """Wait for Succeeded or Failed; with show_output, stream the build log."""
        display = Display(show_output)
        shown: list[str] = []
        last_state: list[str] = []

        def on_poll(obj: Obj) -> None:
            nonlocal shown
            state = obj.get("status", {}).get("state") or "NotStarted"
            if not last_state or last_state[-1] != state:
                display.line(state, style="bold")
                last_state.append(state)
            log = (obj.get("status", {}).get("buildLog") or "").splitlines()
            for line in new_log_lines(shown, log):
                display.line(line)
            shown = log
            display.status(f"image {self.name}: {state}")

        with display.running(f"image {self.name}"):
            obj = wait_for(
                lambda: self.workspace._kube.get(PLURAL, self._object_name),
                image_verdict,  # type: ignore[arg-type]
                timeout_sec,
                on_poll,
                f"image {self.name}",
            )
        self._initialize(obj)
        if self.creation_state != "Succeeded":
            raise FailedStateException(
                f"Image creation polling reached non-successful terminal state, current state: "
                f"{self.creation_state}. Error: {failure_reason(obj)} "
                f"(full log: image.image_build_log or `kaci image logs {self.name}`)"
            )
        print(f'Image creation operation finished for image {self.id}, operation "Succeeded"')

    @staticmethod
    def list(
        workspace: Workspace,
        image_name: str | None = None,
        model_name: str | None = None,
        model_id: str | None = None,
        tags: list[Any] | None = None,
        properties: list[Any] | None = None,
    ) -> list[Image]:
        from kaci.azureml.core.image.container import ContainerImage
        from kaci.azureml.core.model import _tag_match

        out: list[Image] = []
        for obj in workspace._kube.list_objects(PLURAL):
            img = ContainerImage(workspace, _obj=obj)
            if image_name is not None and img.name != image_name:
                continue
            names = [split_id(m)[0] for m in img.model_ids]
            if model_name is not None and model_name not in names:
                continue
            if model_id is not None and model_id not in img.model_ids:
                continue
            if not _tag_match(img.tags, tags) or properties:
                continue
            out.append(img)
        return out

    def update(self, tags: dict[str, str]) -> None:
        obj = self.workspace._kube.patch(
            PLURAL, self._object_name, {"spec": {"tags": {str(k): str(v) for k, v in tags.items()}}}
        )
        self._initialize(obj)

    def add_tags(self, tags: dict[str, str]) -> None:
        self.update({**self.tags, **tags})

    def remove_tags(self, tags: StrList) -> None:
        self.update({k: v for k, v in self.tags.items() if k not in tags})

    def delete(self) -> None:
        """Delete the image; refused while a Webservice deploys it (like Azure)."""
        users = [
            w["metadata"]["name"]
            for w in self.workspace._kube.list_objects(api.WEBSERVICES)
            if (w.get("spec", {}).get("image") or {}).get("name") == self.name
        ]
        if users:
            raise WebserviceException(
                "The image cannot be deleted because it is currently being used in one or more "
                f"webservices: {', '.join(users)}. Delete those first."
            )
        self.workspace._kube.delete_and_wait(PLURAL, self._object_name)
        self.creation_state = "Deleting"

    def serialize(self) -> Obj:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "creationState": self.creation_state,
            "imageLocation": self.image_location,
            "modelIds": self.model_ids,
            "tags": self.tags,
            "description": self.description,
            "createdTime": self.created_time.isoformat() if self.created_time else None,
        }

    def pull(self) -> None:
        raise WebserviceException(
            f"pull: kaci's SDK needs no Docker engine; pull it yourself: docker pull "
            f"{self.image_location or '<not built yet>'}"
        )

    def save(self, output_directory: str) -> None:
        raise WebserviceException(
            "save: Model.package(generate_dockerfile=True) is not offered (the operator "
            "renders the build context); the built image is at image.location"
        )

    def get_logs(self, decode: bool = True, offset: int = 0) -> str:
        return self.image_build_log[offset:]

    @staticmethod
    def image_configuration() -> Any:
        raise NotImplementedError("use ContainerImage.image_configuration")
