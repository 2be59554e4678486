"""InferenceConfig (Azure's azureml.core.model.InferenceConfig).

An InferenceConfig is the build part of an Image spec: entry_script (read now),
an Environment (condaFile, baseImage, environmentVariables) or the older
runtime/conda_file/extra_docker_file_steps/base_image, and source_directory: a code
folder pushed to the registry as a one-layer image (like large model files) and
copied to the app root, so score.py imports its sibling modules.
"""

from __future__ import annotations

import ast
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kaci.azureml import _files, _manifests
from kaci.azureml._names import content_name
from kaci.azureml._registry import FILES_DIR, RegistryClient
from kaci.azureml.exceptions import UserErrorException, WebserviceException

if TYPE_CHECKING:
    from kaci.azureml.core.environment import Environment
    from kaci.azureml.core.workspace import Workspace

Obj = dict[str, Any]
SUPPORTED_RUNTIMES = ("python",)
# Folders of a source_directory that never belong in an image.
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".ipynb_checkpoints", ".azureml", "aml_config"})


def _join(source_directory: str | None, path: str) -> str:
    return str(Path(source_directory) / path) if source_directory else path


def _must_exist(path: str, what: str, extra: str = "") -> None:
    if not Path(path).exists():
        raise WebserviceException(f"Error, provided {what} path {path} does not exist. {extra}")


class InferenceConfig:
    """What to run and how to build it (Azure's InferenceConfig, same parameters)."""

    def __init__(
        self,
        entry_script: str,
        runtime: str | None = None,
        conda_file: str | None = None,
        extra_docker_file_steps: str | None = None,
        source_directory: str | None = None,
        enable_gpu: bool | None = None,
        description: str | None = None,
        base_image: str | None = None,
        base_image_registry: Any = None,
        cuda_version: str | None = None,
        environment: Environment | None = None,
    ) -> None:
        self.entry_script = entry_script
        self.runtime = runtime
        self.conda_file = conda_file
        self.extra_docker_file_steps = extra_docker_file_steps
        self.source_directory = source_directory
        self.enable_gpu = enable_gpu
        self.description = description
        self.base_image = base_image
        self.base_image_registry = base_image_registry
        self.cuda_version = cuda_version
        self.environment = environment
        self.validate_configuration()

    def validate_configuration(self) -> None:
        """Azure's checks, then what kaci refuses (GPU, other runtimes, registries)."""
        if not self.entry_script:
            raise WebserviceException("Error, need to specify entry_script.")
        if self.environment is not None:
            if (
                self.runtime
                or self.conda_file
                or self.extra_docker_file_steps
                or self.enable_gpu
                or self.cuda_version
                or self.base_image
            ):
                raise WebserviceException(
                    "Error, unable to provide runtime, conda_file, extra_docker_file_steps, "
                    "enable_gpu, cuda_version, or base_image along with an environment object."
                )
            docker = self.environment.docker
            if docker.base_dockerfile and docker.base_image:
                raise WebserviceException(
                    "Error, only one of base_dockerfile or base_image should be provided to the "
                    "environment.docker object."
                )
        if self.source_directory:
            self.source_directory = os.path.realpath(self.source_directory)
            _must_exist(self.source_directory, "source directory")
        script = _join(self.source_directory, self.entry_script)
        _must_exist(
            script,
            "entry_script",
            "entry_script should be path relative to current working directory",
        )
        if Path(script).suffix != ".py":
            raise WebserviceException(
                "Invalid driver type. Currently only Python drivers are supported."
            )
        if self.runtime and self.runtime.lower() not in SUPPORTED_RUNTIMES:
            raise WebserviceException(
                f"runtime {self.runtime!r} is not supported: kaci runs Python score.py files "
                "only; use runtime='python' (or leave it out)"
            )
        if self.enable_gpu or self.cuda_version:
            raise WebserviceException(
                "enable_gpu/cuda_version: kaci scoring images are CPU-only; drop these parameters"
            )
        if self.base_image_registry is not None and getattr(
            self.base_image_registry, "address", self.base_image_registry
        ):
            raise WebserviceException(
                "base_image_registry: registry credentials are configured on the operator "
                "(its image pull/push settings), not per image"
            )
        if self.conda_file:
            _must_exist(_join(self.source_directory, self.conda_file), "Conda file")
        if self.extra_docker_file_steps:
            _must_exist(
                _join(self.source_directory, self.extra_docker_file_steps),
                "extra docker file steps",
            )
        try:
            ast.parse(Path(script).read_text(), script)
        except SyntaxError as exc:
            raise UserErrorException(f"Failed to parse entry script {script}: {exc}") from exc

    def __repr__(self) -> str:
        return (
            f"InferenceConfig(entry_script={self.entry_script}, runtime={self.runtime}, "
            f"conda_file={self.conda_file}, extra_docker_file_steps="
            f"{self.extra_docker_file_steps}, source_directory={self.source_directory}, "
            f"base_image={self.base_image}, environment={getattr(self.environment, 'name', None)})"
        )

    def _spec_for(self, workspace: Workspace | None) -> Obj:
        """The Image spec's build part; a source_directory is pushed to the registry now."""
        script = Path(_join(self.source_directory, self.entry_script)).read_text()
        conda = (
            Path(_join(self.source_directory, self.conda_file)).read_text()
            if self.conda_file
            else None
        )
        steps = (
            Path(_join(self.source_directory, self.extra_docker_file_steps)).read_text()
            if self.extra_docker_file_steps
            else None
        )
        spec = _manifests.image_config_spec(
            execution_script=script,
            runtime="python",
            conda_file=conda,
            docker_steps=steps,
            base_image=self.base_image,
            description=self.description,
        )
        if self.environment is not None:
            spec.update(self.environment._image_spec())
        if self.source_directory:
            if workspace is None:
                raise WebserviceException("a source_directory needs a workspace to upload to")
            spec["sourceDirectory"] = {
                "image": push_source_directory(workspace, self.source_directory)
            }
            folder = _folder_of(self.entry_script)
            if folder:
                # score.py runs from the app root; its own folder goes on sys.path too,
                # so `import helper` beside it works (the runtime reads this variable).
                env = dict(spec.get("environmentVariables") or {})
                env["AZUREML_SOURCE_DIRECTORY"] = folder
                spec["environmentVariables"] = env
        return spec

    def _spec(self) -> Obj:
        return self._spec_for(None)


def _folder_of(entry_script: str) -> str:
    """The entry script's folder inside the source directory ("" at its top)."""
    parent = Path(entry_script.replace("\\", "/")).parent.as_posix()
    return "" if parent == "." else parent


def source_files(folder: str) -> list[_files.ModelFile]:
    """The files of a source_directory (caches and config folders left out)."""
    root = Path(folder)
    picked = [
        p
        for p in sorted(root.rglob("*"))
        if p.is_file() and not SKIPPED_DIRS & set(p.relative_to(root).parts[:-1])
    ]
    if not picked:
        raise UserErrorException(f"source_directory {folder} holds no files")
    return [_files._file(p.relative_to(root).as_posix(), p) for p in picked]


def push_source_directory(ws: Workspace, folder: str) -> Obj:
    """Push the folder as a one-layer image; returns {reference, path} for the Image spec."""
    files = source_files(folder)
    digest = _files.digest(files)
    repo = f"kaci/{ws.namespace}/source/{content_name('src', digest)}"
    tag = digest.removeprefix("sha256:")[:20]
    pushed = RegistryClient(ws.registry, ws.registry_insecure).push_files(repo, tag, files)
    if ws.registry_pull:
        pushed = ws.registry_pull + pushed[len(ws.registry) :]
    return {"reference": pushed, "path": f"/{FILES_DIR}"}


def warn_deprecated(what: str) -> None:
    warnings.warn(what, DeprecationWarning, stacklevel=3)
