"""Environment: the Python packages, base image and variables a scoring image gets.

Azure's Environment (azureml.core.environment), for deployment: `python` (a
CondaDependencies, or user_managed_dependencies), `docker.base_image`,
`environment_variables`, `inferencing_stack_version`. At deploy time it becomes the
build part of an Image spec: `condaFile` (the serialized conda file), `baseImage`,
`environmentVariables`.

A registered Environment is a versioned object in the cluster: one ConfigMap per
version (`kaci-env-<name>-<version>`), labelled with the environment and its version,
holding the definition as JSON. Why a ConfigMap and not a fourth CRD: nothing needs
reconciling (an Environment is data the SDK reads back when it deploys), so there is
no operator work, no new RBAC and no chart change; a ConfigMap is immutable per
version (`immutable: true`), listed by label, and readable with plain kubectl.

Curated environments (`AzureML-sklearn-1.5`, `AzureML-Minimal`, ...) come from a
built-in table of their CPU packages (the package families, not Azure's exact pins:
the cluster's package index decides the versions). GPU-only ones are refused.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kaci import api
from kaci.azureml._names import LABEL_MANAGED_BY, SDK_MANAGER
from kaci.azureml.core.conda_dependencies import CondaDependencies
from kaci.azureml.exceptions import KaciCompatibilityWarning, UserErrorException

if TYPE_CHECKING:
    from kaci.azureml.core.workspace import Workspace

Obj = dict[str, Any]
# Azure's default base images (azureml-core 1.57). An Environment left at the CPU
# default gets the operator's default base image (Azure's needs conda and the
# internet); the GPU one is refused when deployed.
DEFAULT_CPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:20230509.v1"
DEFAULT_GPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.3-cudnn8-ubuntu20.04:20230509.v1"
# Azure's own base images (conda inside, built for Azure's builder): the operator's
# default base image stands in for them.
_AZURE_BASE_IMAGES = re.compile(r"^mcr\.microsoft\.com/azureml/")
_DEFAULT_SHM_SIZE = "2g"
EXAMPLE_ENV_VAR = {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"}
CURATED_PREFIX = "AzureML-"

# Curated environments kaci can build on CPU: name -> pip packages (besides what the
# runtime brings). From Azure's published definitions, as package families.
CURATED: dict[str, list[str]] = {
    "AzureML-Minimal": [],
    "AzureML-Tutorial": ["numpy", "scipy", "scikit-learn", "joblib", "pandas", "matplotlib"],
    "AzureML-sklearn-0.24-ubuntu18.04-py37-cpu": ["scikit-learn", "numpy", "scipy", "joblib"],
    "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu": ["scikit-learn", "numpy", "scipy", "joblib"],
    "AzureML-sklearn-1.1": ["scikit-learn>=1.1", "numpy", "scipy", "joblib"],
    "AzureML-sklearn-1.5": ["scikit-learn>=1.5", "numpy", "scipy", "joblib"],
    "AzureML-Scikit-learn-0.20.3": ["scikit-learn", "numpy", "scipy", "joblib"],
    "AzureML-lightgbm-3.2-ubuntu18.04-py37-cpu": ["lightgbm", "scikit-learn", "numpy", "pandas"],
    "AzureML-pytorch-1.10-ubuntu18.04-py38-cpu-inference": ["torch", "numpy"],
    "AzureML-tensorflow-2.4-ubuntu18.04-py37-cpu-inference": ["tensorflow-cpu", "numpy"],
    "AzureML-onnxruntime-1.6-ubuntu18.04-py37-cpu-inference": ["onnxruntime", "numpy"],
}
_GPU_NAME = re.compile(r"(gpu|cuda|cudnn)", re.IGNORECASE)


def _object_key(name: str) -> str:
    """A label value and name part for an Environment name (<= 40 chars, with a hash)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "env"
    return f"{cleaned[:32].strip('-')}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"


class PythonSection:
    """Azure's PythonSection: the conda dependencies, or a user-managed interpreter."""

    def __init__(self, _skip_defaults: bool = False) -> None:
        self.interpreter_path = "python"
        self.user_managed_dependencies = False
        self.conda_dependencies: CondaDependencies | None = (
            None if _skip_defaults else CondaDependencies()
        )
        self.base_conda_environment: str | None = None

    @property
    def conda_dependencies_file(self) -> None:
        return None


class DockerSection:
    """Azure's DockerSection: the base image (Dockerfiles and registries are refused)."""

    def __init__(self, _skip_defaults: bool = False) -> None:
        self.enabled = False
        self.shm_size: str | None = None if _skip_defaults else _DEFAULT_SHM_SIZE
        self.arguments: list[str] = []
        self._base_image: str | None = None if _skip_defaults else DEFAULT_CPU_IMAGE
        self._base_dockerfile: str | None = None
        self.base_image_registry: Any = None

    @property
    def base_image(self) -> str | None:
        return self._base_image

    @base_image.setter
    def base_image(self, value: str | None) -> None:
        self._base_image = value
        if value:
            self._base_dockerfile = None

    @property
    def base_dockerfile(self) -> str | None:
        return self._base_dockerfile

    @base_dockerfile.setter
    def base_dockerfile(self, value: str | None) -> None:
        self._base_dockerfile = value
        if value:
            self._base_image = None


class Environment:
    """An environment for scoring (Azure's azureml.core.Environment)."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"Environment name expected str, {type(name)} found")
        skip = bool(kwargs.get("_skip_defaults", False))
        self.name = name
        self.version: str | None = None
        self.python = PythonSection(_skip_defaults=skip)
        self.docker = DockerSection(_skip_defaults=skip)
        self._environment_variables: dict[str, str] = {} if skip else dict(EXAMPLE_ENV_VAR)
        self.inferencing_stack_version: str | None = None
        self.r = None
        self.spark = None
        self.asset_id: str | None = None
        # Curated: a name from the built-in table (not registered in the cluster).
        self._curated = False

    @property
    def environment_variables(self) -> dict[str, str]:
        return self._environment_variables

    @environment_variables.setter
    def environment_variables(self, value: dict[str, str]) -> None:
        self._environment_variables = dict(value or {})

    def __repr__(self) -> str:
        return json.dumps(self._serialize(), indent=4, sort_keys=True)

    def __str__(self) -> str:
        return f"Environment(Name: {self.name},\nVersion: {self.version})"

    # -- constructors ------------------------------------------------------------------

    @staticmethod
    def from_conda_specification(name: str, file_path: str) -> Environment:
        env = Environment(name=name)
        env.python.conda_dependencies = CondaDependencies(conda_dependencies_file_path=file_path)
        return env

    @staticmethod
    def from_pip_requirements(
        name: str, file_path: str, pip_version: str | None = None
    ) -> Environment:
        env = Environment(name=name)
        deps = env.python.conda_dependencies
        assert deps is not None
        deps.set_pip_requirements(Path(file_path).read_text().splitlines())
        deps.add_conda_package(f"pip={pip_version}" if pip_version else "pip")
        return env

    @staticmethod
    def from_docker_image(
        name: str,
        image: str,
        container_registry: Any = None,
        conda_specification: str | None = None,
        pip_requirements: str | None = None,
    ) -> Environment:
        if container_registry is not None:
            raise UserErrorException(
                "container_registry: registry credentials are set on the operator, not per "
                "Environment"
            )
        env = Environment(name=name)
        env.docker.base_image = image
        if conda_specification and pip_requirements:
            raise UserErrorException(
                "Only one of conda_specification or pip_requirements can be provided"
            )
        if conda_specification:
            env.python.conda_dependencies = CondaDependencies(conda_specification)
        elif pip_requirements:
            assert env.python.conda_dependencies is not None
            env.python.conda_dependencies.set_pip_requirements(
                Path(pip_requirements).read_text().splitlines()
            )
        return env

    def clone(self, new_name: str) -> Environment:
        if not new_name:
            raise UserErrorException("Name is required to instantiate an Environment object")
        env = Environment._deserialize(self._serialize())
        env.name = new_name
        env.version = None
        env.asset_id = None
        env._curated = False
        return env

    # -- registry in the cluster -------------------------------------------------------

    def register(self, workspace: Workspace) -> Environment:
        """A new version in the cluster, unless the definition equals the latest one."""
        if self.name is None or not self.name:
            raise UserErrorException("an Environment needs a name to be registered")
        if self.name.startswith(CURATED_PREFIX):
            raise UserErrorException(
                f"Environment names starting with {CURATED_PREFIX} are reserved for curated "
                "environments; clone it under another name first"
            )
        definition = self._serialize(with_version=False)
        versions = _versions(workspace, self.name)
        if versions:
            latest = max(versions, key=lambda v: int(v[0]))
            if latest[1]._serialize(with_version=False) == definition:
                self.version = latest[1].version
                return latest[1]
        number = str(max((int(v) for v, _ in versions), default=0) + 1)
        key = _object_key(self.name)
        body: Obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"kaci-env-{key}-{number}",
                "labels": {
                    LABEL_MANAGED_BY: SDK_MANAGER,
                    api.ENVIRONMENT_LABEL: key,
                    api.ENVIRONMENT_VERSION_LABEL: number,
                },
                "annotations": {api.ENVIRONMENT_NAME_ANNOTATION: self.name},
            },
            "immutable": True,
            "data": {api.ENVIRONMENT_KEY: json.dumps({**definition, "version": number})},
        }
        workspace._kube.create_or_replace_configmap(body)
        self.version = number
        return Environment._deserialize({**definition, "version": number})

    @staticmethod
    def get(
        workspace: Workspace, name: str, version: str | None = None, label: str | None = None
    ) -> Environment:
        """A registered version (the latest by default), or a curated environment."""
        if label and version:
            raise UserErrorException("Only one of version or label can be specified")
        if label:
            raise UserErrorException(
                "Environment labels are not kept by kaci: ask for a version instead"
            )
        if name.startswith(CURATED_PREFIX):
            return curated(name)
        versions = _versions(workspace, name)
        if version is not None:
            for number, env in versions:
                if number == str(version):
                    return env
            raise UserErrorException(
                f"Environment {name} has no version {version} (versions: "
                f"{', '.join(v for v, _ in sorted(versions, key=lambda x: int(x[0]))) or 'none'})"
            )
        if not versions:
            raise UserErrorException(
                f"No environment named {name} is registered in namespace {workspace.namespace}"
            )
        return max(versions, key=lambda v: int(v[0]))[1]

    @staticmethod
    def list(workspace: Workspace) -> dict[str, Environment]:
        """Name -> latest version, registered ones and the curated table (as Azure lists them)."""
        out: dict[str, Environment] = {n: curated(n) for n in CURATED}
        found: dict[str, tuple[int, Environment]] = {}
        for cm in workspace._kube.list_configmaps(api.ENVIRONMENT_LABEL):
            env = _from_configmap(cm)
            if env is None or env.name is None:
                continue
            number = int(env.version or 0)
            if env.name not in found or found[env.name][0] < number:
                found[env.name] = (number, env)
        out.update({n: e for n, (_, e) in found.items()})
        return out

    def save_to_directory(self, path: str, overwrite: bool = False) -> None:
        """Write azureml_environment.json and conda_dependencies.yml, as Azure does."""
        folder = Path(path)
        if folder.exists() and any(folder.iterdir()) and not overwrite:
            raise UserErrorException(
                f"Directory {path} already exists and is not empty; pass overwrite=True"
            )
        folder.mkdir(parents=True, exist_ok=True)
        definition = self._serialize()
        definition["python"].pop("condaDependencies", None)
        (folder / "azureml_environment.json").write_text(json.dumps(definition, indent=4) + "\n")
        if self.python.conda_dependencies is not None:
            self.python.conda_dependencies.save(str(folder / "conda_dependencies.yml"))

    @staticmethod
    def load_from_directory(path: str) -> Environment:
        folder = Path(path)
        data = json.loads((folder / "azureml_environment.json").read_text())
        conda = folder / "conda_dependencies.yml"
        if conda.is_file():
            import yaml

            data["python"]["condaDependencies"] = yaml.safe_load(conda.read_text())
        return Environment._deserialize(data)

    def build(self, workspace: Workspace, image_build_compute: Any = None) -> Any:
        raise UserErrorException(
            "Environment.build: kaci builds an Environment's image when a model is deployed "
            "with it (Model.deploy or Model.package); there is no separate build"
        )

    def get_image_details(self, workspace: Workspace) -> Any:
        raise UserErrorException(
            "Environment.get_image_details: kaci builds one image per deployment; see "
            "Image(ws, name).image_location after Model.package or a deploy"
        )

    # -- the Image spec ----------------------------------------------------------------

    def _image_spec(self) -> Obj:
        """condaFile / baseImage / environmentVariables for an Image (or refuse)."""
        if self._curated and self.name and _GPU_NAME.search(self.name):
            raise UserErrorException(_gpu_refusal(self.name))
        if self.docker.base_dockerfile:
            raise UserErrorException(
                "Environment.docker.base_dockerfile: kaci builds from a base image; put the "
                "steps in InferenceConfig(extra_docker_file_steps=...) or build the base "
                "image yourself and set docker.base_image"
            )
        base = self.docker.base_image
        if base and ("cuda" in base.lower() or "gpu" in base.lower()):
            raise UserErrorException(
                f"docker.base_image {base}: a GPU image; kaci scoring images are CPU-only"
            )
        if base and _AZURE_BASE_IMAGES.match(base):
            if base != DEFAULT_CPU_IMAGE:
                warnings.warn(
                    f"docker.base_image {base}: an Azure ML base image; kaci builds on the "
                    "operator's default base image instead (set your own to choose)",
                    KaciCompatibilityWarning,
                    stacklevel=4,
                )
            base = None
        if self.inferencing_stack_version not in (None, "latest"):
            warnings.warn(
                f"inferencing_stack_version={self.inferencing_stack_version!r}: kaci's "
                "runtime is the inferencing stack; only 'latest' has a meaning",
                KaciCompatibilityWarning,
                stacklevel=4,
            )
        spec: Obj = {}
        if not self.python.user_managed_dependencies and self.python.conda_dependencies:
            spec["condaFile"] = {"inline": self.python.conda_dependencies.serialize_to_string()}
        if base:
            spec["baseImage"] = base
        if self._environment_variables:
            spec["environmentVariables"] = {
                str(k): str(v) for k, v in self._environment_variables.items()
            }
        return spec

    # -- (de)serialization (Azure's JSON shape, the parts kaci keeps) -----------------

    def _serialize(self, with_version: bool = True) -> Obj:
        deps = self.python.conda_dependencies
        out: Obj = {
            "name": self.name,
            "python": {
                "userManagedDependencies": self.python.user_managed_dependencies,
                "interpreterPath": self.python.interpreter_path,
                "condaDependencies": deps.as_dict() if deps is not None else None,
                "baseCondaEnvironment": self.python.base_conda_environment,
            },
            "docker": {
                "enabled": self.docker.enabled,
                "baseImage": self.docker.base_image,
                "baseDockerfile": self.docker.base_dockerfile,
                "shmSize": self.docker.shm_size,
                "arguments": list(self.docker.arguments),
            },
            "environmentVariables": dict(self._environment_variables),
            "inferencingStackVersion": self.inferencing_stack_version,
        }
        if with_version:
            out["version"] = self.version
        return out

    @staticmethod
    def _deserialize(data: Obj) -> Environment:
        env = Environment(str(data.get("name")), _skip_defaults=True)
        env.version = data.get("version")
        py = data.get("python") or {}
        env.python.user_managed_dependencies = bool(py.get("userManagedDependencies"))
        env.python.interpreter_path = py.get("interpreterPath") or "python"
        env.python.base_conda_environment = py.get("baseCondaEnvironment")
        if py.get("condaDependencies") is not None:
            env.python.conda_dependencies = CondaDependencies(
                _underlying_structure=copy.deepcopy(py["condaDependencies"])
            )
        docker = data.get("docker") or {}
        env.docker.enabled = bool(docker.get("enabled"))
        env.docker.shm_size = docker.get("shmSize")
        env.docker.arguments = list(docker.get("arguments") or [])
        if docker.get("baseDockerfile"):
            env.docker.base_dockerfile = docker["baseDockerfile"]
        else:
            env.docker.base_image = docker.get("baseImage")
        env._environment_variables = dict(data.get("environmentVariables") or {})
        env.inferencing_stack_version = data.get("inferencingStackVersion")
        return env


def _gpu_refusal(name: str) -> str:
    return (
        f"curated environment {name} is GPU-only: kaci scoring images are CPU-only (the "
        "nodes it schedules on have no GPU device plugin in its Pods); use a CPU "
        "environment such as AzureML-sklearn-1.5 or your own Environment"
    )


def curated(name: str) -> Environment:
    """A curated environment from the built-in table (GPU-only names refused)."""
    if _GPU_NAME.search(name):
        raise UserErrorException(_gpu_refusal(name))
    if name not in CURATED:
        raise UserErrorException(
            f"curated environment {name} is not in kaci's table of CPU environments "
            f"({', '.join(sorted(CURATED))}); build your own Environment with its packages"
        )
    env = Environment(name)
    env.version = "1"
    env._environment_variables = {}
    env.inferencing_stack_version = "latest"
    deps = CondaDependencies.create(
        pip_packages=["azureml-defaults", *CURATED[name]], python_version="3.11"
    )
    env.python.conda_dependencies = deps
    env._curated = True
    return env


def _from_configmap(cm: Obj) -> Environment | None:
    raw = (cm.get("data") or {}).get(api.ENVIRONMENT_KEY)
    if not raw:
        return None
    try:
        return Environment._deserialize(json.loads(raw))
    except (ValueError, TypeError):
        return None


def _versions(workspace: Workspace, name: str) -> list[tuple[str, Environment]]:
    selector = f"{api.ENVIRONMENT_LABEL}={_object_key(name)}"
    out = []
    for cm in workspace._kube.list_configmaps(selector):
        env = _from_configmap(cm)
        if env is not None and env.name == name and env.version:
            out.append((str(env.version), env))
    return out
