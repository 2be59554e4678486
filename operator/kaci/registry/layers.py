"""The files of an image, read from its layers in order (no engine, no disk).

Each layer is a tar (gzip or uncompressed); later layers win, and whiteouts
(`.wh.<name>`, `.wh..wh..opq`) remove what earlier ones held, as an engine's
overlay would. Python reads zstd only from 3.14: such a layer is refused with a
reason (model images are pushed gzip for this).
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Iterable
from typing import IO

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class LayerError(ValueError):
    """The layers cannot be read as asked (a name that escapes, too large, zstd)."""


def clean_name(name: str) -> str:
    """A member's path relative to the image root; refused if it leaves it."""
    norm = posixpath.normpath("/" + name.lstrip("/")).lstrip("/")
    if name.replace("\\", "/").split("/").count("..") or norm.startswith(".."):
        raise LayerError(f"a layer holds the path {name!r}, which leaves the image")
    return "" if norm == "." else norm


def under(name: str, folder: str) -> str | None:
    """`name` relative to `folder` ("" is the root), or None when it is not below it."""
    if not folder:
        return name
    return name[len(folder) + 1 :] if name.startswith(folder + "/") else None


def _drop(files: dict[str, bytes], path: str) -> None:
    for name in [n for n in files if n == path or n.startswith(path + "/")]:
        del files[name]


def _hide(lower: dict[str, bytes], path: str, folder: str) -> None:
    """Remove `path` (image-rooted) and all below it from the files read so far."""
    if not path or path == folder or folder.startswith(path + "/"):
        lower.clear()  # the asked folder itself, or one of its parents, is gone
        return
    rel = under(path, folder)
    if rel:
        _drop(lower, rel)


def read_files(
    layers: Iterable[tuple[str, IO[bytes]]], folder: str, max_bytes: int
) -> dict[str, bytes]:
    """The regular files below `folder` after applying `layers` ((media type, stream)
    pairs, bottom first), named relative to it; their total size is capped."""
    folder = clean_name(folder)
    files: dict[str, bytes] = {}
    for media, stream in layers:
        if "zstd" in media:
            raise LayerError(
                f"a layer is zstd-compressed ({media}), which this reader cannot open: "
                "push the image with gzip layers"
            )
        # Whiteouts hide what the layers below held; this layer's own entries are
        # kept apart until it has been read, whatever order its tar lists them in.
        upper: dict[str, bytes] = {}
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                path = clean_name(member.name)
                base, parent = posixpath.basename(path), posixpath.dirname(path)
                if base == OPAQUE:
                    _hide(files, parent, folder)
                    continue
                if base.startswith(WHITEOUT):
                    _hide(files, posixpath.join(parent, base[len(WHITEOUT) :]), folder)
                    continue
                rel = under(path, folder)
                if not rel:
                    continue
                if member.isdir():
                    files.pop(rel, None)  # a folder replaces a file of its name
                    continue
                if not member.isfile():
                    _drop(files, rel)  # a link replaces a file or a folder
                    upper.pop(rel, None)
                    continue
                size = sum(map(len, files.values())) + sum(map(len, upper.values()))
                if size + member.size > max_bytes:
                    raise LayerError(f"the files are larger than {max_bytes} bytes")
                f = tar.extractfile(member)
                if f is not None:
                    upper[rel] = f.read()
        files.update(upper)
    return files
