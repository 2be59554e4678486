"""Azure's conda environment file (myenv.yml) -> pip requirements (pure).

Azure built its images with conda; kaci installs everything with pip, so the
conda package list is translated: `name=1.2` becomes `name==1.2`, channel
prefixes go, python and pip themselves are dropped (the base image has them),
and a few conda names that differ on PyPI are renamed. The azureml packages
whose job kaci_runtime does are dropped too.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class CondaFileError(ValueError):
    pass


# conda name -> PyPI name, where they differ for common ML packages.
CONDA_TO_PIP = {
    "pytorch": "torch",
    "py-xgboost": "xgboost",
    "pytorch-cpu": "torch",
    "tensorflow-mkl": "tensorflow",
    "matplotlib-base": "matplotlib",
}
# Provided by the base image or replaced by kaci_runtime.
DROP = {
    "python",
    "pip",
    "setuptools",
    "wheel",
    "azureml-defaults",
    "azureml-core",
    "azureml-inference-server-http",
    "azureml-model-management-sdk",
}

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _req_name(req: str) -> str:
    m = _NAME.match(req)
    return m.group(1).lower().replace("_", "-") if m else ""


def conda_spec_to_pip(spec: str) -> str | None:
    """One conda dependency string -> a pip requirement (None: dropped)."""
    spec = spec.strip()
    if "::" in spec:
        spec = spec.split("::", 1)[1]
    m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)$", spec)
    if not m:
        raise CondaFileError(f"conda dependency {spec!r} is not a package spec")
    name, rest = m.group(1), m.group(2).strip()
    name = CONDA_TO_PIP.get(name.lower(), name)
    if name.lower() in DROP:
        return None
    if not rest:
        return name
    if rest.startswith("=") and not rest.startswith("=="):
        # conda's name=version[=build]; a trailing '*' is conda's prefix match.
        version = rest[1:].split("=", 1)[0].strip()
        if version.endswith(".*") or version.endswith("*"):
            return f"{name}=={version.rstrip('*').rstrip('.')}.*" if version.rstrip("*.") else name
        return f"{name}=={version}"
    return f"{name}{rest}"


def pip_requirements(text: str) -> list[str]:
    """All requirements of an environment file: its conda list then its pip list."""
    try:
        doc: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CondaFileError(f"the conda file is not valid YAML: {e}") from e
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise CondaFileError("the conda file must be a mapping with a 'dependencies' list")
    deps = doc.get("dependencies") or []
    if not isinstance(deps, list):
        raise CondaFileError("'dependencies' in the conda file must be a list")
    out: list[str] = []
    for dep in deps:
        if isinstance(dep, str | int | float):
            req = conda_spec_to_pip(str(dep))
            if req:
                out.append(req)
        elif isinstance(dep, dict) and set(dep) == {"pip"}:
            pips = dep["pip"] or []
            if not isinstance(pips, list):
                raise CondaFileError("the 'pip' entry of the conda file must be a list")
            for p in pips:
                p = str(p).strip()
                if p and _req_name(p) not in DROP:
                    out.append(p)
        else:
            raise CondaFileError(f"unexpected entry in the conda file's dependencies: {dep!r}")
    return out


def merge_requirements(*groups: list[str]) -> list[str]:
    """Concatenate, dropping exact duplicates but keeping order (pip reports conflicts)."""
    seen: set[str] = set()
    out: list[str] = []
    for group in groups:
        for r in group:
            key = r.strip()
            if key and key not in seen:
                seen.add(key)
                out.append(key)
    return out
