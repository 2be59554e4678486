"""Image references, parsed the way Docker names them (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
# Where Docker Hub's registry API answers, and the key `docker login` writes for it.
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"

# The distribution spec's repository name: lower-case parts joined by separators.
_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_PART}(?:/{_PART})*")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


class ReferenceError(ValueError):
    """Not an image reference."""


@dataclass(frozen=True)
class Reference:
    host: str  # as written (docker.io for Docker Hub)
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """The host that answers /v2/ for this reference."""
        return DOCKER_HUB_API if self.host == DOCKER_HUB else self.host

    @property
    def target(self) -> str:
        """What /manifests/<target> asks for: the digest when there is one."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.host, self.repository, None, digest)

    def __str__(self) -> str:
        out = f"{self.host}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def is_host(part: str) -> bool:
    """Docker's rule: the first path part names a registry when it has a dot or a
    port, or is localhost; otherwise the reference is on Docker Hub."""
    return "." in part or ":" in part or part == "localhost"


def parse(text: str) -> Reference:
    """`[host[:port]/]repo[:tag][@digest]`; no host means Docker Hub (`library/` for
    one-part names, as `docker pull python` does)."""
    rest, at, digest = text.strip().partition("@")
    if at and not _DIGEST.match(digest):
        raise ReferenceError(f"{text!r}: {digest!r} is not a digest")
    first, slash, path = rest.partition("/")
    if slash and is_host(first):
        host = first
    else:
        host, path = DOCKER_HUB, rest
        if "/" not in path.rsplit(":", 1)[0]:
            path = f"library/{path}"
    tag = None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, _, tag = path.rpartition(":")
    if not _REPOSITORY.fullmatch(path):
        raise ReferenceError(f"{text!r}: {path!r} is not a repository name")
    return Reference(host, path, tag or None, digest or None)
