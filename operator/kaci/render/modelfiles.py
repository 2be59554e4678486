"""Model file names and the content digest (pure)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import PurePosixPath

from kaci.errors import UserError


class ModelFileError(UserError):
    """A file name that would escape the model folder, or no files at all."""

    default_reason = "BadSource"


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
