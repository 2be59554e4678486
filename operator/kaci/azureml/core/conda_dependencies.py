"""CondaDependencies: Azure's conda environment file (myenv.yml) builder.

The same document shape and defaults as azureml-core 1.57 (a `project_environment`
with python, a pip list holding azureml-defaults, the anaconda and conda-forge
channels). kaci's operator installs the conda and pip lists with pip and drops the
azureml packages whose job its runtime does, so the file Azure code writes works
unchanged.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import yaml

from kaci.azureml.exceptions import UserErrorException

# azureml-core 1.57's values.
PYTHON_DEFAULT_VERSION = "3.9.12"
BASE_PYTHON_VERSION = "3.8.13"  # in its base project file, before create() sets one
DEFAULT_SDK_ORIGIN = "https://pypi.python.org/simple"
CONDA_FILE_NAME = "conda_dependencies.yml"
PIP = "pip"
PACKAGES = "dependencies"
CHANNELS = "channels"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?")
_VERSION = re.compile(r"(\d+)\.(\d+)(\.(\d+))?([ab](\d+))?$")

Doc = dict[str, Any]
StrList = list[str]


def _base_document() -> Doc:
    return {
        "name": "project_environment",
        PACKAGES: [f"python={BASE_PYTHON_VERSION}", {PIP: ["azureml-defaults"]}],
        CHANNELS: ["anaconda", "conda-forge"],
    }


def _package_name(value: str) -> str:
    """`scikit-learn==1.2` -> `scikit-learn`; `name=1` (conda) -> `name`."""
    m = _NAME.match(value)
    if not m:
        return value.strip()
    return m.group(1)


def _package_name_with_extras(value: str) -> str:
    m = _NAME.match(value)
    return (m.group(1) + (m.group(2) or "")) if m else value.strip()


class CondaDependencies:
    """A conda environment specification (Azure's azureml.core.conda_dependencies)."""

    def __init__(
        self,
        conda_dependencies_file_path: str | None = None,
        _underlying_structure: Doc | None = None,
    ) -> None:
        if conda_dependencies_file_path is not None:
            path = os.path.normpath(conda_dependencies_file_path)
            try:
                doc = yaml.safe_load(Path(path).read_text())
            except yaml.YAMLError as exc:
                raise UserErrorException(f"{path} is not valid YAML: {exc}") from exc
        elif _underlying_structure is not None:
            doc = _underlying_structure
        else:
            doc = _base_document()
        if not isinstance(doc, dict):
            raise UserErrorException("a conda environment file must hold a mapping")
        self._conda_dependencies: Doc = doc
        self._python_version = self.get_python_version()

    @staticmethod
    def create(
        pip_indexurl: str | None = None,
        pip_packages: StrList | None = None,
        conda_packages: StrList | None = None,
        python_version: str = PYTHON_DEFAULT_VERSION,
        pin_sdk_version: bool = True,
    ) -> CondaDependencies:
        """Azure's create(): azureml-defaults unless pip_packages are given.

        pin_sdk_version pinned azureml-* to the installed SDK's version; kaci's
        operator drops those packages (its runtime does their job), so nothing is pinned.
        """
        cd = CondaDependencies()
        if pip_indexurl:
            cd.set_pip_option(f"--index-url {pip_indexurl}")
            cd.set_pip_option(f"--extra-index-url {DEFAULT_SDK_ORIGIN}")
        cd.set_python_version(python_version)
        if pip_packages is None:
            pip_packages = ["azureml-defaults"]
        else:
            for package in cd.pip_packages:
                cd.remove_pip_package(package)
        for package in pip_packages:
            cd.add_pip_package(package)
        for conda_package in conda_packages or []:
            cd.add_conda_package(conda_package)
        return cd

    @staticmethod
    def merge_requirements(requirements: StrList) -> StrList:
        """Azure's merge: one entry per package name, the last one wins."""
        by_name: dict[str, str] = {}
        for r in requirements:
            by_name[_package_name(r).lower()] = r
        return list(by_name.values())

    @staticmethod
    def sdk_origin_url() -> str:
        return DEFAULT_SDK_ORIGIN

    # -- reads -----------------------------------------------------------------------

    @property
    def conda_channels(self) -> StrList:
        return [str(c) for c in self._conda_dependencies.get(CHANNELS) or []]

    @property
    def conda_packages(self) -> StrList:
        deps = self._conda_dependencies.get(PACKAGES) or []
        return [str(d) for d in deps if not isinstance(d, dict)]

    def _pip_list(self) -> list[Any] | None:
        for d in self._conda_dependencies.get(PACKAGES) or []:
            if isinstance(d, dict) and PIP in d:
                if d[PIP] is None:
                    d[PIP] = []
                return list(d[PIP]) if not isinstance(d[PIP], list) else d[PIP]
        return None

    @property
    def pip_packages(self) -> StrList:
        return [str(p) for p in self._pip_list() or [] if not str(p).startswith("-")]

    @property
    def pip_options(self) -> StrList:
        return [str(p) for p in self._pip_list() or [] if str(p).startswith("-")]

    def get_default_number_of_packages(self) -> int:
        base = CondaDependencies()
        return len(base.conda_packages) + len(base.pip_packages)

    def get_python_version(self) -> str | None:
        for p in self.conda_packages:
            if _package_name(p) == "python":
                rest = p[len("python") :].lstrip("=<>! ")
                return rest or None
        return None

    def set_python_version(self, version: str) -> None:
        if not _VERSION.match(str(version)):
            raise UserErrorException(f"Invalid python version {version}")
        deps = self._conda_dependencies.setdefault(PACKAGES, [])
        for i, d in enumerate(deps):
            if isinstance(d, str) and _package_name(d) == "python":
                deps[i] = f"python={version}"
                break
        else:
            deps.insert(0, f"python={version}")
        self._python_version = str(version)

    # -- changes ---------------------------------------------------------------------

    def add_channel(self, channel: str) -> None:
        channels = self._conda_dependencies.setdefault(CHANNELS, [])
        if channel not in channels:
            channels.append(channel)

    def remove_channel(self, channel: str) -> None:
        channels = self._conda_dependencies.get(CHANNELS) or []
        if channel in channels:
            channels.remove(channel)

    def add_conda_package(self, conda_package: str) -> None:
        deps = self._conda_dependencies.setdefault(PACKAGES, [])
        if conda_package in deps:
            return
        if _package_name(conda_package) == "python" and conda_package.startswith("python"):
            version = conda_package[len("python") :].lstrip("=<>! ")
            self.set_python_version(version)
            return
        # Before the pip entry, as conda files list them.
        pip_at = next((i for i, d in enumerate(deps) if isinstance(d, dict)), len(deps))
        deps.insert(pip_at, conda_package)

    def remove_conda_package(self, conda_package: str) -> None:
        deps = self._conda_dependencies.get(PACKAGES) or []
        if conda_package in deps:
            if _package_name(conda_package) == "python":
                raise UserErrorException("python must not be removed from conda dependencies")
            deps.remove(conda_package)

    def add_pip_package(self, pip_package: str) -> None:
        """Add a pip package; an earlier entry of the same package is replaced (Azure's rule)."""
        if pip_package.startswith("-"):
            raise UserErrorException(f"Invalid package name {pip_package}")
        self.remove_pip_package(pip_package)
        pips = self._pip_list()
        if pips is None:
            self._conda_dependencies.setdefault(PACKAGES, []).append({PIP: [pip_package]})
        elif pip_package not in pips:
            pips.append(pip_package)

    def remove_pip_package(self, pip_package: str) -> None:
        pips = self._pip_list()
        if not pips:
            return
        name = _package_name_with_extras(pip_package).lower()
        for p in list(pips):
            if not str(p).startswith("-") and _package_name_with_extras(str(p)).lower() == name:
                pips.remove(p)

    def set_pip_option(self, pip_option: str) -> None:
        """Add (or replace, by option name) a pip option such as `--extra-index-url x`."""
        if not pip_option.startswith("-"):
            raise UserErrorException(f"Invalid pip option {pip_option}")
        pips = self._pip_list()
        if pips is None:
            self._conda_dependencies.setdefault(PACKAGES, []).append({PIP: [pip_option]})
            return
        key = pip_option.split()[0]
        if key not in ("--extra-index-url", "--find-links"):
            for p in list(pips):
                if str(p).split()[0] == key:
                    pips.remove(p)
        if pip_option not in pips:
            pips.insert(0, pip_option)

    def remove_pip_option(self, pip_option: str) -> None:
        pips = self._pip_list() or []
        for p in list(pips):
            if str(p) == pip_option or str(p).split()[0] == pip_option:
                pips.remove(p)

    def set_pip_index_url(self, index_url: str) -> None:
        self.set_pip_option(index_url if index_url.startswith("-") else f"--index-url {index_url}")

    def set_pip_requirements(self, pip_requirements: StrList) -> None:
        """Replace the pip list with these requirement lines (comments dropped)."""
        lines = [ln.strip() for ln in pip_requirements]
        lines = [ln for ln in lines if ln and not ln.startswith("#")]
        pips = self._pip_list()
        if pips is None:
            self._conda_dependencies.setdefault(PACKAGES, []).append({PIP: lines})
        else:
            pips[:] = lines

    def add_tensorflow_pip_package(
        self, core_type: str = "cpu", version: str | None = None
    ) -> None:
        if core_type != "cpu":
            raise UserErrorException("kaci scoring images are CPU-only: core_type must be 'cpu'")
        self.add_pip_package(f"tensorflow=={version}" if version else "tensorflow")

    def add_tensorflow_conda_package(
        self, core_type: str = "cpu", version: str | None = None
    ) -> None:
        if core_type != "cpu":
            raise UserErrorException("kaci scoring images are CPU-only: core_type must be 'cpu'")
        self.add_conda_package(f"tensorflow={version}" if version else "tensorflow")

    # -- output ----------------------------------------------------------------------

    def serialize_to_string(self) -> str:
        return yaml.safe_dump(self._conda_dependencies, sort_keys=False, default_flow_style=False)

    def as_dict(self) -> Doc:
        return copy.deepcopy(self._conda_dependencies)

    def save(self, path: str | None = None) -> str:
        """Write the file to `path` (a file path, in an existing folder)."""
        if path is None or Path(path).is_dir():
            raise UserErrorException(
                "Cannot save a conda environment specification file to a directory. Please "
                "specify a fully qualified path along with the file name to save the file."
            )
        parent = str(Path(path).parent)
        if parent and not Path(parent).is_dir():
            raise UserErrorException(
                "Cannot save the conda environment specification file to an invalid path."
            )
        Path(path).write_text(self.serialize_to_string())
        return path.replace("\\", "/")

    def save_to_file(self, base_directory: str, conda_file_path: str | None = None) -> str:
        """DEPRECATED in Azure (use save): write under base_directory; returns the relative path."""
        if not conda_file_path:
            # Azure's rule: aml_config/ when that folder exists, else .azureml/.
            folder = "aml_config" if (Path(base_directory) / "aml_config").exists() else ".azureml"
            conda_file_path = f"{folder}/{CONDA_FILE_NAME}"
        rel = conda_file_path.replace("\\", "/")
        full = Path(base_directory).resolve() / rel
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(self.serialize_to_string())
        return rel

    def __repr__(self) -> str:
        return self.serialize_to_string()
