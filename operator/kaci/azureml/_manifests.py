"""Pure builders: Azure-style call arguments in, Kubernetes object bodies out."""

from __future__ import annotations

import base64
from typing import Any

from kaci.azureml._names import API_VERSION, LABEL_MANAGED_BY, SDK_MANAGER

Obj = dict[str, Any]

# Azure's ACI defaults when deploy_configuration() leaves them out.
DEFAULT_CPU_CORES = 0.1
DEFAULT_MEMORY_GB = 0.5


def _meta(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {"name": name, "labels": {LABEL_MANAGED_BY: SDK_MANAGER, **(labels or {})}}


def _drop_empty(d: Obj) -> Obj:
    return {k: v for k, v in d.items() if v not in (None, {}, [], "")}


def configmap_body(name: str, files: dict[str, bytes], labels: dict[str, str]) -> Obj:
    """A ConfigMap holding each file as a binaryData key (any bytes, pickles too)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(name, labels),
        "binaryData": {k: base64.b64encode(v).decode() for k, v in sorted(files.items())},
    }


def model_body(
    object_name: str,
    model_name: str,
    source: Obj,
    tags: dict[str, str] | None = None,
    properties: dict[str, str] | None = None,
    description: str | None = None,
    framework: str | None = None,
) -> Obj:
    spec = _drop_empty(
        {
            "modelName": model_name,
            "source": source,
            "tags": _str_map(tags, "tags"),
            "properties": _str_map(properties, "properties"),
            "description": description,
            "framework": framework,
        }
    )
    return {
        "apiVersion": API_VERSION,
        "kind": "Model",
        "metadata": _meta(object_name),
        "spec": spec,
    }


def _str_map(m: dict[str, Any] | None, what: str) -> dict[str, str] | None:
    """Azure tags/properties are str -> str; numbers are turned into text like Azure does."""
    if m is None:
        return None
    if not isinstance(m, dict):
        raise TypeError(f"{what} must be a dict of str to str")
    return {str(k): str(v) for k, v in m.items()}


def model_refs(models: list[tuple[str, int | None]]) -> list[Obj]:
    return [_drop_empty({"name": n, "version": v}) for n, v in models]


def image_config_spec(
    execution_script: str,
    runtime: str = "python",
    conda_file: str | None = None,
    docker_steps: str | None = None,
    base_image: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    pip_requirements: list[str] | None = None,
) -> Obj:
    """Image.spec's build part from the texts of score.py, myenv.yml and docker steps."""
    return _drop_empty(
        {
            "executionScript": {"inline": execution_script},
            "runtime": runtime,
            "condaFile": {"inline": conda_file} if conda_file is not None else None,
            "pipRequirements": pip_requirements,
            "dockerSteps": docker_steps,
            "baseImage": base_image,
            "description": description,
            "tags": _str_map(tags, "tags"),
        }
    )


def image_body(name: str, models: list[tuple[str, int | None]], config_spec: Obj) -> Obj:
    spec = {"imageName": name, "models": model_refs(models), **config_spec}
    return {"apiVersion": API_VERSION, "kind": "Image", "metadata": _meta(name), "spec": spec}


def deployment_config_spec(
    cpu_cores: float | None,
    memory_gb: float | None,
    auth_enabled: bool | None,
    tags: dict[str, str] | None,
    description: str | None,
) -> Obj:
    return _drop_empty(
        {
            "cpuCores": float(cpu_cores) if cpu_cores is not None else DEFAULT_CPU_CORES,
            "memoryGb": float(memory_gb) if memory_gb is not None else DEFAULT_MEMORY_GB,
            "authEnabled": bool(auth_enabled) if auth_enabled is not None else None,
            "tags": _str_map(tags, "tags"),
            "description": description,
        }
    )


def webservice_body(
    name: str,
    deployment: Obj,
    *,
    model_files: Obj | None = None,
    models: list[tuple[str, int | None]] | None = None,
    image: tuple[str, int | None] | None = None,
    image_config: Obj | None = None,
) -> Obj:
    """A Webservice with exactly one of the three Azure deploy sources."""
    given = [x for x in (model_files, models, image) if x is not None]
    if len(given) != 1:
        raise ValueError("exactly one of model_files, models or image")
    spec: Obj = {"deploymentConfig": deployment}
    if model_files is not None:
        spec["modelFiles"] = model_files
    if models is not None:
        spec["models"] = model_refs(models)
    if image is not None:
        spec["image"] = _drop_empty({"name": image[0], "version": image[1]})
    elif image_config is not None:
        spec["imageConfig"] = image_config
    return {"apiVersion": API_VERSION, "kind": "Webservice", "metadata": _meta(name), "spec": spec}


def condition(obj: Obj, ctype: str) -> Obj | None:
    for c in obj.get("status", {}).get("conditions", []) or []:
        if c.get("type") == ctype:
            return dict(c)
    return None


def is_observed(obj: Obj) -> bool:
    """The operator has processed the latest spec (status is about this generation)."""
    gen = obj.get("metadata", {}).get("generation")
    seen = obj.get("status", {}).get("observedGeneration")
    return gen is None or (seen is not None and seen >= gen)
