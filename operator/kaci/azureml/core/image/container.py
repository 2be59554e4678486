"""ContainerImage and its configuration (Azure's azureml.core.image.container)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from kaci.azureml import _manifests
from kaci.azureml.core.image.image import Image
from kaci.azureml.exceptions import KaciCompatibilityWarning, WebserviceException

SUPPORTED_RUNTIMES = ("python",)


def _read(path: str | None, what: str) -> str | None:
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise WebserviceException(
            f"Error, provided {what} path {path} does not exist or is not a file"
        )
    return p.read_text()


class ContainerImageConfig:
    """What to build: score.py, the conda file, extra Docker steps, base image."""

    def __init__(
        self,
        execution_script: str,
        runtime: str,
        conda_file: str | None = None,
        docker_file: str | None = None,
        schema_file: str | None = None,
        dependencies: list[str] | None = None,
        enable_gpu: bool | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        base_image: str | None = None,
        base_image_registry: Any = None,
        cuda_version: str | None = None,
    ) -> None:
        self.execution_script = execution_script
        self.runtime = runtime
        self.conda_file = conda_file
        self.docker_file = docker_file
        self.schema_file = schema_file
        self.dependencies = dependencies
        self.enable_gpu = enable_gpu
        self.tags = tags
        self.properties = properties
        self.description = description
        self.base_image = base_image
        self.base_image_registry = base_image_registry
        self.cuda_version = cuda_version
        self.validate_configuration()

    def validate_configuration(self) -> None:
        """Refuse what kaci cannot do; warn about what it does differently."""
        if not self.execution_script:
            raise WebserviceException("Error, execution_script is required")
        if not isinstance(self.runtime, str) or self.runtime.lower() not in SUPPORTED_RUNTIMES:
            raise WebserviceException(
                f"runtime {self.runtime!r} is not supported: kaci runs Python score.py files "
                "only; use runtime='python'"
            )
        if self.enable_gpu or self.cuda_version:
            raise WebserviceException(
                "enable_gpu/cuda_version: kaci scoring images are CPU-only (ACI's GPU "
                "images have no equivalent here); drop these parameters"
            )
        if self.dependencies:
            raise WebserviceException(
                "dependencies: extra files are not copied into kaci images; put them in the "
                "model (Model.register of a folder) or add them with docker_file steps"
            )
        if self.base_image_registry is not None:
            raise WebserviceException(
                "base_image_registry: registry credentials are configured on the operator "
                "(its image pull/push settings), not per image"
            )
        for name, value, why in (
            ("schema_file", self.schema_file, "the runtime serves /swagger.json itself"),
            ("properties", self.properties, "Image objects keep tags only"),
        ):
            if value is not None:
                warnings.warn(
                    f"image_configuration: {name} is not used ({why})",
                    KaciCompatibilityWarning,
                    stacklevel=4,
                )

    def _spec(self) -> dict[str, Any]:
        """The build part of Image.spec (reads the files now, like Azure's create)."""
        script = _read(self.execution_script, "execution_script")
        assert script is not None
        return _manifests.image_config_spec(
            execution_script=script,
            runtime=self.runtime.lower(),
            conda_file=_read(self.conda_file, "conda_file"),
            docker_steps=_read(self.docker_file, "docker_file"),
            base_image=self.base_image,
            description=self.description,
            tags=self.tags,
        )


class ContainerImage(Image):
    """A scoring image built by the operator (Azure's ContainerImage)."""

    @staticmethod
    def image_configuration(  # type: ignore[override]
        execution_script: str,
        runtime: str,
        conda_file: str | None = None,
        docker_file: str | None = None,
        schema_file: str | None = None,
        dependencies: list[str] | None = None,
        enable_gpu: bool | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        base_image: str | None = None,
        base_image_registry: Any = None,
        cuda_version: str | None = None,
    ) -> ContainerImageConfig:
        return ContainerImageConfig(
            execution_script,
            runtime,
            conda_file,
            docker_file,
            schema_file,
            dependencies,
            enable_gpu,
            tags,
            properties,
            description,
            base_image,
            base_image_registry,
            cuda_version=cuda_version,
        )
