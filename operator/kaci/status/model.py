"""A Model's status (pure): the stored version and its history, or what stops it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kaci import api
from kaci.status.conditions import is_true, ready_only


def next_version(
    versions: Sequence[Mapping[str, object]], new_digest: str, current: str | None
) -> tuple[int, bool]:
    """(version, is_new): the current version when the digest did not change, else max+1."""
    nums = [int(str(v.get("version"))) for v in versions if v.get("version") is not None]
    if current == new_digest and nums:
        for v in versions:
            if v.get("digest") == new_digest:
                return int(str(v["version"])), False
    return (max(nums) + 1 if nums else 1), True


def stored(
    old: Mapping[str, Any],
    generation: int,
    digest: str,
    location: str,
    files: Sequence[str],
    now: str,
) -> tuple[dict[str, Any], int, bool]:
    """(status, version, is_new) once the files with `digest` are in the registry."""
    versions = list(old.get("versions") or [])
    version, is_new = next_version(versions, digest, old.get("digest"))
    if is_new:
        versions.append(
            {"version": version, "digest": digest, "location": location, "created": now}
        )
    status = ready_only(
        old,
        generation,
        True,
        api.REASON_STORED,
        f"version {version} stored in the registry",
        now,
        version=version,
        digest=digest,
        location=location,
        files=sorted(files),
        versions=versions,
    )
    return status, version, is_new


def trouble(
    old: Mapping[str, Any], generation: int, reason: str, message: str, now: str
) -> dict[str, Any]:
    """Not stored (yet): Ready False with the reason; earlier versions stay listed."""
    return ready_only(old, generation, False, reason, message, now)


def settled(body: Mapping[str, Any], registry: str | None = None) -> bool:
    """Stored for the current spec, in the registry the operator pushes to now: nothing
    to fetch again (a resync, a restart). Stored under another registry name (the
    setting changed), it is stored again (a look-up when the image is already there)."""
    status = body.get("status") or {}
    generation = int((body.get("metadata") or {}).get("generation") or 1)
    location = str(status.get("location") or "")
    return bool(
        is_true(status.get("conditions"), api.READY)
        and status.get("observedGeneration") == generation
        and location
        and (registry is None or location.startswith(f"{registry}/"))
    )
