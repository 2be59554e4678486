"""Make `from azureml.core.model import Model` work in score.py without the azureml packages."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path

SHIM_DIR = str(Path(__file__).resolve().parent / "_azureml_shim")


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def install() -> bool:
    """Append the stand-ins to the END of sys.path when the real azureml.core is absent.

    At the end, anything installed for real (azureml-core, azureml-inference-server-http)
    is found first. Returns whether the shim is in use.
    """
    if SHIM_DIR in sys.path:
        return True
    if _importable("azureml.core"):
        return False
    sys.path.append(SHIM_DIR)
    # A namespace `azureml` imported before (from another azureml-* package) must see us too.
    azureml = sys.modules.get("azureml")
    path = getattr(azureml, "__path__", None)
    if path is not None and hasattr(path, "append"):
        with contextlib.suppress(AttributeError, TypeError):
            path.append(str(Path(SHIM_DIR) / "azureml"))
    return True
