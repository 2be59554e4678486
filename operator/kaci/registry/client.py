"""The distribution API's HTTP conversation, with credentials (`Distribution`).

One `Distribution` holds a connection pool, the credentials (a parsed docker
config.json) and the tokens it was given, per registry and scope, so a build's
look-ups and a model's layers cost one token request, not one per call.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

import urllib3

from kaci.registry.auth import Credentials, credentials_for, parse_challenge, scope_for
from kaci.registry.reference import Reference

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join([OCI_INDEX, MANIFEST_LIST, OCI_MANIFEST, MANIFEST_V2])
INDEXES = (OCI_INDEX, MANIFEST_LIST)


class RegistryError(Exception):
    """The registry answered, but not with what was asked for."""


class RegistryUnreachable(RegistryError):  # noqa: N818  (a state: try again later)
    """No answer (refused, timed out, reset) or a server error (5xx): try again."""


class RegistryDenied(RegistryError):  # noqa: N818
    """401/403 with the credentials there are: a login or a permission is missing."""


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Distribution:
    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        plain_http: Iterable[str] = (),
        timeout_s: float = 30.0,
    ) -> None:
        self.config: Mapping[str, Any] = config or {}
        # Registries spoken to over plain HTTP (a local test registry); TLS elsewhere.
        self.plain_http = {h.lower() for h in plain_http}
        self.http = urllib3.PoolManager(
            maxsize=16,  # the operator's passes share one client (settings.max_workers)
            timeout=urllib3.Timeout(connect=10.0, read=timeout_s),
            retries=urllib3.Retry(connect=2, read=1, redirect=5, status=0, other=0),
        )
        self._tokens: dict[tuple[str, str], str] = {}
        self._basic_hosts: set[str] = set()  # hosts that asked for Basic once
        self._lock = threading.Lock()

    # -- the conversation ---------------------------------------------------------

    def base(self, host: str) -> str:
        return f"{'http' if host.lower() in self.plain_http else 'https'}://{host}"

    def credentials(self, ref: Reference) -> Credentials | None:
        return credentials_for(self.config, ref.host)

    def _send(self, method: str, url: str, **kw: Any) -> urllib3.BaseHTTPResponse:
        try:
            return self.http.request(method, url, **kw)
        except urllib3.exceptions.HTTPError as e:
            host = urllib.parse.urlsplit(url).netloc
            raise RegistryUnreachable(f"the registry at {host} is unreachable ({e})") from e

    def _auth_header(self, ref: Reference, scope: str) -> dict[str, str]:
        with self._lock:
            token = self._tokens.get((ref.api_host, scope))
            basic = ref.api_host in self._basic_hosts
        if token:
            return {"Authorization": f"Bearer {token}"}
        creds = self.credentials(ref)
        if basic and creds and creds.basic():
            return {"Authorization": str(creds.basic())}
        return {}

    def request(
        self,
        method: str,
        ref: Reference,
        path: str,
        *,
        push: bool = False,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        stream: bool = False,
        url: str | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """`method` on /v2/<repository>/<path> (or on `url`, an upload location),
        answering a 401 once with Basic credentials or a token as the registry asks."""
        scope = scope_for(ref.repository, push)
        target = url or f"{self.base(ref.api_host)}/v2/{ref.repository}/{path}"
        for attempt in (1, 2):
            sent = {**(headers or {}), **self._auth_header(ref, scope)}
            resp = self._send(method, target, headers=sent, body=body, preload_content=not stream)
            if resp.status != 401 or attempt == 2:
                break
            challenge = parse_challenge(str(resp.headers.get("WWW-Authenticate") or ""))
            resp.drain_conn()
            creds = self.credentials(ref)
            if challenge and challenge.scheme == "bearer" and challenge.params.get("realm"):
                token = self.fetch_token(challenge.params, creds, scope)
                with self._lock:
                    self._tokens[(ref.api_host, scope)] = token
            elif challenge and challenge.scheme == "basic" and creds and creds.basic():
                with self._lock:
                    self._basic_hosts.add(ref.api_host)
            else:
                break
        if resp.status in (401, 403):
            who = "no credentials" if self.credentials(ref) is None else "the credentials given"
            raise RegistryDenied(
                f"the registry at {ref.api_host} refused {method} {ref.repository} with {who} "
                f"({resp.status}): log in to it (docker config.json auths) or grant access"
            )
        if resp.status >= 500:
            raise RegistryUnreachable(
                f"the registry at {ref.api_host} answered {resp.status} "
                f"to {method} {ref.repository}"
            )
        return resp

    def fetch_token(self, params: Mapping[str, str], creds: Credentials | None, scope: str) -> str:
        """The distribution token flow: ask the realm for a token for `scope` (the
        challenge's own scope wins: it names what this request needs)."""
        # Ours (what this client will do with the repository, push included) and the
        # challenge's own (what this one request needed), so one token serves both.
        scopes = list(dict.fromkeys([scope, *([params["scope"]] if params.get("scope") else [])]))
        query: list[tuple[str, str]] = [("scope", s) for s in scopes]
        if params.get("service"):
            query.append(("service", params["service"]))
        realm = params["realm"]
        if creds and creds.identity_token:
            # An OAuth refresh token: POSTed, as the token spec's OAuth2 flow says.
            form = [*query, ("grant_type", "refresh_token"), ("client_id", "kaci")]
            form.append(("refresh_token", creds.identity_token))
            resp = self._send(
                "POST",
                realm,
                body=urllib.parse.urlencode(form).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        else:
            headers = {"Authorization": str(creds.basic())} if creds and creds.basic() else {}
            sep = "&" if "?" in realm else "?"
            resp = self._send("GET", realm + sep + urllib.parse.urlencode(query), headers=headers)
        if resp.status in (401, 403):
            raise RegistryDenied(
                f"the token server {realm} refused the credentials ({resp.status})"
            )
        if resp.status != 200:
            raise RegistryUnreachable(f"the token server {realm} answered {resp.status}")
        try:
            doc = json.loads(resp.data)
            return str(doc.get("token") or doc["access_token"])
        except (ValueError, KeyError, TypeError) as e:
            raise RegistryError(f"the token server {realm} sent no token") from e

    # -- manifests ----------------------------------------------------------------

    def manifest_digest(self, ref: Reference) -> str | None:
        """The digest of the manifest `ref` names, or None when it is not there."""
        resp = self.request("HEAD", ref, f"manifests/{ref.target}", headers={"Accept": ACCEPT})
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise RegistryError(f"{ref}: the registry answered {resp.status} to HEAD")
        digest = resp.headers.get("Docker-Content-Digest")
        if digest:
            return str(digest)
        # Some registries leave the header out of HEAD answers: GET and hash.
        return self.raw_manifest(ref)[2]

    def raw_manifest(self, ref: Reference) -> tuple[str, bytes, str]:
        """(media type, bytes, digest) of the manifest `ref` names."""
        resp = self.request("GET", ref, f"manifests/{ref.target}", headers={"Accept": ACCEPT})
        if resp.status == 404:
            raise RegistryError(f"{ref}: no such image in the registry (404)")
        if resp.status != 200:
            raise RegistryError(f"{ref}: the registry answered {resp.status}")
        raw = bytes(resp.data)
        digest = sha256(raw)
        if ref.digest and ref.digest != digest:
            raise RegistryError(f"{ref}: the manifest does not match its digest ({digest})")
        media = str(resp.headers.get("Content-Type") or "").split(";")[0]
        try:
            media = str(json.loads(raw).get("mediaType") or media)
        except ValueError as e:
            raise RegistryError(f"{ref}: the manifest is not JSON") from e
        return media, raw, digest

    def image_manifest(
        self, ref: Reference, os: str = "linux", arch: str = "amd64"
    ) -> dict[str, Any]:
        """The image manifest of `ref`; for an index, its entry for os/arch."""
        media, raw, _ = self.raw_manifest(ref)
        doc: dict[str, Any] = json.loads(raw)
        if media not in INDEXES and "manifests" not in doc:
            return doc
        entries = [m for m in doc.get("manifests") or [] if isinstance(m, dict)]

        def fits(m: Mapping[str, Any]) -> bool:
            p = m.get("platform") or {}
            return bool(p.get("os", os) == os and p.get("architecture", arch) == arch)

        pick = next((m for m in entries if fits(m)), None)
        if pick is None:
            raise RegistryError(f"{ref}: the image index has no {os}/{arch} image")
        return self.image_manifest(ref.with_digest(str(pick["digest"])), os, arch)

    def put_manifest(self, ref: Reference, body: bytes, media_type: str) -> str:
        resp = self.request(
            "PUT",
            ref,
            f"manifests/{ref.target}",
            push=True,
            body=body,
            headers={"Content-Type": media_type},
        )
        if resp.status not in (200, 201):
            text = resp.data[:300].decode(errors="replace").strip()
            raise RegistryError(f"push of the manifest {ref}: {resp.status} {text}")
        return sha256(body)

    # -- blobs --------------------------------------------------------------------

    def open_blob(self, ref: Reference, digest: str) -> urllib3.BaseHTTPResponse:
        """A blob as a stream (the caller reads and releases it); redirects followed
        (urllib3 drops Authorization when one leaves the registry's host)."""
        resp = self.request("GET", ref, f"blobs/{digest}", stream=True)
        if resp.status != 200:
            resp.drain_conn()
            raise RegistryError(f"{ref}: blob {digest} answered {resp.status}")
        return resp

    def has_blob(self, ref: Reference, digest: str, push: bool = False) -> bool:
        resp = self.request("HEAD", ref, f"blobs/{digest}", push=push)
        return bool(resp.status == 200)

    def upload_blob(self, ref: Reference, data: bytes) -> str:
        """Upload `data` (monolithic: POST for a location, PUT with the digest);
        nothing is sent when the registry has the blob already."""
        digest = sha256(data)
        if self.has_blob(ref, digest, push=True):
            return digest
        start = self.request("POST", ref, "blobs/uploads/", push=True)
        if start.status != 202 or not start.headers.get("Location"):
            text = start.data[:300].decode(errors="replace").strip()
            raise RegistryError(f"upload to {ref.repository}: {start.status} {text}")
        location = str(start.headers["Location"])
        if location.startswith("/"):
            location = self.base(ref.api_host) + location
        sep = "&" if "?" in location else "?"
        put = self.request(
            "PUT",
            ref,
            "",
            push=True,
            url=f"{location}{sep}digest={urllib.parse.quote(digest)}",
            body=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if put.status not in (201, 204):
            text = put.data[:300].decode(errors="replace").strip()
            raise RegistryError(f"upload to {ref.repository}: {put.status} {text}")
        return digest
