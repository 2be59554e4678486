"""Azure's `Model.get_model_path` rule, for scoring images without the azureml packages.

Layout (as Azure deploys it): `<app root>/azureml-models/<name>/<version>/<files>`;
AZUREML_MODEL_DIR is `<app root>/azureml-models/<name>/<version>` for one model
and `<app root>/azureml-models` for several. Azure's rule for a name:
`azureml-models/<name>/<version>` (the latest version when none is given) must
hold exactly one file or folder, and that entry's path is returned; otherwise
`./<name>` in the working directory; otherwise ModelNotFoundException.
"""

from __future__ import annotations

import os
from pathlib import Path

MODELS_DIR_NAME = "azureml-models"


class WebserviceException(Exception):  # noqa: N818 - Azure's name, score.py files catch it
    def __init__(self, exception_message: str, *args: object, **kwargs: object) -> None:
        super().__init__(exception_message)
        self.message = exception_message


class ModelNotFoundException(WebserviceException):
    pass


def models_roots(model_dir: str | None, cwd: Path) -> list[Path]:
    """Folders that may hold `<name>/<version>/`, most specific first."""
    roots: list[Path] = []
    if model_dir:
        path = Path(model_dir)
        if not path.is_absolute():
            path = cwd / path
        # The `azureml-models` folder AZUREML_MODEL_DIR is in (or is).
        for candidate in (path, *path.parents):
            if candidate.name == MODELS_DIR_NAME:
                roots.append(candidate)
                break
        # A folder given by hand (`--model_dir ./models`) holding <name>/<version>/.
        if path not in roots:
            roots.append(path)
    roots.append(cwd / MODELS_DIR_NAME)
    return roots


def _latest_version(folder: Path) -> str | None:
    versions = [p.name for p in folder.iterdir() if p.name.isdigit()]
    return max(versions, key=int) if versions else None


def get_model_path(
    model_name: str,
    version: int | None = None,
    *,
    model_dir: str | None = None,
    cwd: Path | None = None,
) -> str:
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise WebserviceException("version should be an int")
    if model_name is None:
        raise WebserviceException("model_name is None")
    here = cwd if cwd is not None else Path.cwd()
    if model_dir is None:
        model_dir = os.environ.get("AZUREML_MODEL_DIR")
    roots = models_roots(model_dir, here)
    for root in roots:
        named = root / model_name
        if not named.is_dir():
            continue
        chosen = str(version) if version is not None else _latest_version(named)
        if chosen is None or not (named / chosen).is_dir():
            continue
        entries = sorted(p.name for p in (named / chosen).iterdir())
        if len(entries) != 1:
            raise WebserviceException(
                f"Dir {named / chosen} can contain only 1 file or folder. Found {entries}"
            )
        return str(named / chosen / entries[0])
    if (here / model_name).exists():
        return str(here / model_name)
    raise ModelNotFoundException(
        f"Model {model_name} not found in cache at {', '.join(str(r) for r in roots)} or in "
        f"current working directory {here}. For more info, set logging level to DEBUG."
    )
