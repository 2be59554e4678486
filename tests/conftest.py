"""Test tiers and the fixtures they share.

Tiers follow the folders: tests/unit (pure), tests/component (the real Docker
engine), tests/cluster (the real local cluster). Each test is marked with its
tier so `pytest -m unit` and friends select them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_DIR = ROOT / ".cluster"

# Helpers that start real parts on this host (buildkitd, registries with credentials),
# shared by the component and the cluster tiers: importable as top-level modules.
sys.path.insert(0, str(ROOT / "tests" / "shared"))

# The local cluster's tools and credentials, whichever way pytest was started.
os.environ["KUBECONFIG"] = str(CLUSTER_DIR / "kubeconfig")
os.environ["PATH"] = f"{CLUSTER_DIR / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"

_TIERS = ("unit", "component", "cluster")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in _TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
