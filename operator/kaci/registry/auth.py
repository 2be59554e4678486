"""Registry credentials from a docker config.json, and `WWW-Authenticate` challenges (pure).

A config.json's `auths` maps a registry to `auth` (base64 of `user:password`), or
to `username` and `password`, or to an `identitytoken` (an OAuth refresh token,
which `docker login` keeps for some registries). Keys are written in several
shapes (`registry.example.com`, `https://registry.example.com/v1/`,
`http://127.0.0.1:5050`); a look-up compares their host parts. Credential helpers
(`credsStore`, `credHelpers`) are programs on the user's machine and are not run.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaci.registry.reference import DOCKER_HUB, DOCKER_HUB_API

# Docker Hub is written under any of these names.
_HUB_NAMES = {DOCKER_HUB, DOCKER_HUB_API, "index.docker.io"}


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth refresh token (then username is often <token>)

    def basic(self) -> str | None:
        """The `Authorization: Basic ...` value, when there is a user and a password."""
        if not self.username and not self.password:
            return None
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


class ConfigError(ValueError):
    """A docker config.json that cannot be read."""


def key_host(key: str) -> str:
    """The host part of an `auths` key: no scheme, no path, Docker Hub's names as one."""
    host = re.sub(r"^[a-z]+://", "", key.strip()).split("/", 1)[0].lower()
    return DOCKER_HUB if host in _HUB_NAMES else host


def credentials_for(config: Mapping[str, Any], host: str) -> Credentials | None:
    """The credentials `config` (a parsed config.json) holds for registry `host`."""
    want = key_host(host)
    for key, entry in (config.get("auths") or {}).items():
        if key_host(str(key)) != want or not isinstance(entry, Mapping):
            continue
        token = str(entry.get("identitytoken") or "")
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as e:
                raise ConfigError(f"the auth of {key!r} is not base64 of user:password") from e
            return Credentials(user, password, token)
        if entry.get("username") or entry.get("password") or token:
            user, password = str(entry.get("username") or ""), str(entry.get("password") or "")
            return Credentials(user, password, token)
    return None


def load_config(path: str | Path) -> dict[str, Any]:
    """A config.json's content ({} when the file does not exist)."""
    p = Path(path).expanduser()
    if not p.exists():
        return {}
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{p}: not a docker config.json ({e})") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: not a docker config.json (not an object)")
    return data


def user_config_path() -> Path:
    """Where `docker login` writes: $DOCKER_CONFIG/config.json or ~/.docker/config.json."""
    folder = os.environ.get("DOCKER_CONFIG")
    return Path(folder) / "config.json" if folder else Path.home() / ".docker" / "config.json"


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic" (lower case)
    params: Mapping[str, str]


# One `key=value` or `key="quoted, value"` parameter of a challenge.
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)')


def parse_challenge(header: str) -> Challenge | None:
    """`Bearer realm="https://auth/token",service="registry",scope="repository:a/b:pull,push"`
    -> Challenge("bearer", {...}). Quoted values may hold commas. None: not a challenge."""
    m = re.match(r"\s*([A-Za-z]+)\s*", header or "")
    if not m:
        return None
    scheme, rest = m.group(1).lower(), header[m.end() :]
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        p = _PARAM.match(rest, pos)
        if not p or p.end() == pos:
            break
        value = p.group(2) if p.group(2) is not None else p.group(3) or ""
        params[p.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        pos = p.end()
    return Challenge(scheme, params)


def scope_for(repository: str, push: bool) -> str:
    """The token scope a request on `repository` needs."""
    return f"repository:{repository}:{'pull,push' if push else 'pull'}"
