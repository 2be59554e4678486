"""buildctl's command lines and environment, from the settings (pure).

buildctl talks gRPC to buildkitd (mTLS for tcp://); the Dockerfile frontend
built into buildkitd reads the context folder; the image exporter pushes with
the asked compression; the registry cache lives beside the image. The pushed
digest comes back in the metadata file (`containerimage.digest`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from kaci.settings import Settings

CACHE_TAG = "buildcache"


def repository_of(ref: str) -> str:
    """`host/repo:tag` -> `host/repo` (a port's colon is kept)."""
    name = ref.split("@", 1)[0]
    head, sep, tail = name.rpartition(":")
    return head if sep and "/" not in tail else name


def plain_http(settings: Settings, ref: str) -> bool:
    """Is `ref` on a registry configured as plain HTTP?"""
    if not settings.registry_insecure:
        return False
    hosts = {r.split("/", 1)[0] for r in (settings.registry, settings.pull_registry)}
    return ref.split("/", 1)[0] in hosts


def connection_args(settings: Settings) -> list[str]:
    """The global flags that reach buildkitd: address and mTLS."""
    out = [settings.buildctl, "--addr", settings.buildkit_addr]
    for flag, value in (
        ("--tlscacert", settings.buildkit_tls_ca),
        ("--tlscert", settings.buildkit_tls_cert),
        ("--tlskey", settings.buildkit_tls_key),
        ("--tlsservername", settings.buildkit_tls_server_name),
    ):
        if value:
            out += [flag, value]
    return out


def cache_ref(ref: str) -> str:
    """Where a scoring image's build cache lives: its repository, tag `buildcache`."""
    return f"{repository_of(ref)}:{CACHE_TAG}"


def build_args(
    settings: Settings,
    ref: str,
    context_dir: Path,
    metadata_file: Path,
    kind: str,
    compression: str | None = None,
) -> list[str]:
    """`buildctl build` for image `ref` from `context_dir` (which holds the Dockerfile).

    Scoring images: settings.image_compression (forced, so a gzip base image's layers
    are pushed as zstd too) and, with build_cache=registry, the cache exported with
    mode=max (every step's layers, the dependency one included) and imported back.
    An Image's own layerCompression (`compression`) wins over the setting.
    Model images: gzip, no cache (one COPY)."""
    insecure = ",registry.insecure=true" if plain_http(settings, ref) else ""
    if kind != "scoring":
        compression = "gzip"
    elif compression is None:
        compression = settings.image_compression
    output = (
        f"type=image,name={ref},push=true,compression={compression},force-compression=true"
        f"{insecure}"
    )
    args = [
        *connection_args(settings),
        "build",
        "--progress=rawjson",
        "--frontend=dockerfile.v0",
        "--local",
        f"context={context_dir}",
        "--local",
        f"dockerfile={context_dir}",
        "--output",
        output,
        "--metadata-file",
        str(metadata_file),
    ]
    if kind == "scoring" and settings.build_cache == "registry":
        cache = cache_ref(ref)
        args += [
            "--export-cache",
            # ignore-error: an image that is pushed is a success, even if its cache is not.
            f"type=registry,ref={cache},mode=max,compression={compression},ignore-error=true"
            f"{insecure}",
            "--import-cache",
            f"type=registry,ref={cache}{insecure}",
        ]
    return args


def answers_args(settings: Settings) -> list[str]:
    """A cheap question buildkitd answers when it runs: its workers."""
    return [*connection_args(settings), "debug", "workers"]


def environment(base: Mapping[str, str], docker_config_dir: str | None) -> dict[str, str]:
    """buildctl's environment: its registry credentials come from DOCKER_CONFIG's
    config.json (buildctl hands them to buildkitd for pushes and pulls)."""
    env = dict(base)
    if docker_config_dir:
        env["DOCKER_CONFIG"] = docker_config_dir
    return env
