"""Fixtures of the component tier: the real Docker engine and the local registry.

`hack/cluster.sh docker` starts dockerd and the registry on 127.0.0.1:5000 (or
reuses them) and makes sure the base images are in the registry. If that fails
the tests FAIL: they are never skipped.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER_HOST = "unix:///var/run/docker.sock"
REGISTRY = "127.0.0.1:5000"
BASE_IMAGE = f"{REGISTRY}/kaci/python:3.11"
PAUSE_IMAGE = f"{REGISTRY}/kaci/pause:3.9"


@pytest.fixture(scope="session", autouse=True)
def docker_engine() -> str:
    """dockerd + registry + base images up; returns the engine's address."""
    proc = subprocess.run(
        [str(ROOT / "hack" / "cluster.sh"), "docker"],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        pytest.fail(f"hack/cluster.sh docker failed ({proc.returncode}):\n{tail}", pytrace=False)
    return DOCKER_HOST


@pytest.fixture(scope="session")
def docker_client(docker_engine: str) -> Iterator[docker.DockerClient]:
    """A docker.DockerClient for the real engine."""
    dc = docker.DockerClient(base_url=docker_engine)
    yield dc
    dc.close()


@pytest.fixture(scope="session")
def registry(docker_engine: str) -> str:
    """The local registry (plain HTTP), as host:port."""
    return REGISTRY
