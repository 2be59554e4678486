"""Model file names and the content digest (pure)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath


class ModelFileError(ValueError):
    """A file name that would escape the model folder, or no files at all."""


def check_name(name: str) -> str:
    """A relative path that stays inside the model folder, normalised to '/'-form.

    Refused: empty names, NUL bytes, absolute paths, backslashes (a Windows-style
    path is ambiguous inside a Linux image) and any '..' part.
    """
    if not name or "\x00" in name:
        raise ModelFileError(f"file name {name!r} is empty or holds a NUL byte")
    if "\\" in name:
        raise ModelFileError(f"file name {name!r} holds a backslash")
    path = PurePosixPath(name)
    if path.is_absolute():
        raise ModelFileError(f"file name {name!r} is absolute: model file names must be relative")
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise ModelFileError(f"file name {name!r} names no file")
    if ".." in parts:
        raise ModelFileError(f"file name {name!r} escapes the model folder with '..'")
    return "/".join(parts)


def digest(files: Mapping[str, bytes]) -> str:
    """sha256 over (name, content) pairs in name order: renaming a file is a new version."""
    if not files:
        raise ModelFileError("the model has no files")
    h = hashlib.sha256()
    for name in sorted(files):
        encoded = name.encode()
        h.update(len(encoded).to_bytes(8, "big"))
        h.update(encoded)
        content = files[name]
        h.update(len(content).to_bytes(8, "big"))
        h.update(hashlib.sha256(content).digest())
    return f"sha256:{h.hexdigest()}"


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
