"""Registries with credentials, as real processes: Debian's docker-registry on a free
127.0.0.1 port with htpasswd auth (Basic), or with token auth against a small real
token server run here (the distribution token flow: 401 + WWW-Authenticate: Bearer
-> GET realm -> a JWT the registry verifies with the token server's certificate).

The token server is an HTTP server in the test process. It checks Basic credentials
and signs RS256 JWTs with openssl (`openssl dgst -sha256 -sign`); the header's x5c
carries its self-signed certificate, which the registry's rootcertbundle trusts.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import processes  # type: ignore[import-not-found,unused-ignore]  # tests/shared
import requests

USER, PASSWORD = "kaci-test", "s3cret-" + secrets.token_hex(4)
SERVICE, ISSUER = "kaci-test-registry", "kaci-test-token-issuer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    folder: Path
    port: int = 0
    issued: list[str] = field(default_factory=list)  # the scopes tokens were given for
    refused: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def cert(self) -> Path:
        return self.folder / "token.crt"

    def make_keys(self) -> None:
        key = self.folder / "token.key"
        subprocess.run(
            ["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True
        )
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-new", "-key", str(key), "-days", "2"),
                *("-subj", "/CN=kaci-test-token-issuer", "-out", str(self.cert)),
            ],
            check=True,
            capture_output=True,
        )
        der = subprocess.run(
            ["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
            check=True,
            capture_output=True,
        ).stdout
        self.x5c = base64.b64encode(der).decode()

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        head = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        sig = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.folder / "token.key")],
            input=head.encode(),
            check=True,
            capture_output=True,
        ).stdout
        return head + "." + _b64url(sig)

    def token_for(self, query: dict[str, list[str]]) -> str:
        access = []
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        self.issued += query.get("scope", [])
        return self.sign(
            {
                "iss": ISSUER,
                "sub": USER,
                "aud": query.get("service", [SERVICE])[0],
                "exp": now + 600,
                "nbf": now - 30,
                "iat": now,
                "jti": secrets.token_hex(8),
                "access": access,
            }
        )

    def start(self) -> None:
        self.make_keys()
        owner = self
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path != "/token" or self.headers.get("Authorization") != expected:
                    owner.refused += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"token": owner.token_for(urllib.parse.parse_qs(url.query))})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def do_POST(self) -> None:
                # The OAuth2 form (containerd's resolver, in buildkitd, asks this way
                # first): grant_type=password with username and password.
                size = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(size).decode())
                ok = form.get("grant_type") == ["password"] and (
                    form.get("username") == [USER] and form.get("password") == [PASSWORD]
                )
                if not ok:
                    owner.refused += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                token = owner.token_for(form)
                body = json.dumps({"access_token": token, "expires_in": 600})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


@dataclass
class AuthRegistry:
    host: str
    user: str
    password: str
    proc: subprocess.Popen[bytes]
    log: Path
    tokens: TokenServer | None = None

    def docker_config(self, folder: Path) -> Path:
        """A docker config.json with this registry's credentials (as `docker login` writes)."""
        auth = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "config.json"
        path.write_text(json.dumps({"auths": {f"http://{self.host}": {"auth": auth}}}))
        return path


def _registry_config(data: Path, port: int, auth: str) -> str:
    return f"""version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
auth:
{auth}"""


@contextlib.contextmanager
def running(kind: str) -> Iterator[AuthRegistry]:
    """docker-registry with `htpasswd` (Basic) or `token` auth, on a free port."""
    folder = Path(tempfile.mkdtemp(prefix="t-bkd-registry-"))
    port = free_port()
    tokens: TokenServer | None = None
    if kind == "htpasswd":
        line = subprocess.run(
            ["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True
        ).stdout
        (folder / "htpasswd").write_text(line)
        auth = f"  htpasswd:\n    realm: kaci-test\n    path: {folder / 'htpasswd'}\n"
    else:
        tokens = TokenServer(folder)
        tokens.start()
        auth = (
            f"  token:\n    realm: {tokens.realm}\n    service: {SERVICE}\n"
            f"    issuer: {ISSUER}\n    rootcertbundle: {tokens.cert}\n"
        )
    (folder / "config.yml").write_text(_registry_config(folder / "data", port, auth))
    log = folder / "registry.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(folder / "config.yml")],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    reg = AuthRegistry(f"127.0.0.1:{port}", USER, PASSWORD, proc, log, tokens)
    try:
        for _ in range(60):  # bounded wait until it answers (401: it wants credentials)
            if proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"http://{reg.host}/v2/", timeout=2).status_code == 401:
                    break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"docker-registry did not answer: {log.read_text()[-2000:]}")
        yield reg
    finally:
        processes.stop(proc, 20)
        if tokens:
            tokens.stop()
        shutil.rmtree(folder, ignore_errors=True)
