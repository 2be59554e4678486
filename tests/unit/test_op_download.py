"""kaci.download against real local servers: the connection goes to the checked address."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from kaci.edges import download

HOST = "kaci-pinned.invalid"  # never resolves: a download that resolves it again fails


class Handler(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        Handler.seen.append((self.path, self.headers.get("Host", "")))
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/model.bin")
            self.end_headers()
            return
        body = b"weights" * 10
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    Handler.seen = []


def serve(server: http.server.HTTPServer) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def port() -> Iterator[int]:
    yield from serve(http.server.HTTPServer(("127.0.0.1", 0), Handler))


def test_connects_to_the_checked_address_and_keeps_the_host_name(port: int) -> None:
    body = download.fetch(f"http://{HOST}:{port}/model.bin", "127.0.0.1", 1000)
    assert body == b"weights" * 10
    assert Handler.seen == [("/model.bin", f"{HOST}:{port}")]


def test_redirects_are_not_followed(port: int) -> None:
    with pytest.raises(download.DownloadError, match="HTTP 302"):
        download.fetch(f"http://{HOST}:{port}/moved", "127.0.0.1", 1000)
    assert [p for p, _ in Handler.seen] == ["/moved"]


def test_reads_at_most_one_byte_past_the_limit(port: int) -> None:
    assert len(download.fetch(f"http://{HOST}:{port}/model.bin", "127.0.0.1", 5)) == 6


def test_nothing_listening_is_a_download_error(port: int) -> None:
    with pytest.raises(download.DownloadError):
        download.fetch(f"http://{HOST}:{port}/model.bin", "127.0.0.2", 1000)


@pytest.fixture
def tls_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", f"/CN={HOST}"),
            *("-addext", f"subjectAltName=DNS:{HOST}"),
        ],
        check=True,
        capture_output=True,
    )
    # The client trusts only this certificate, issued to the URL's host name.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    yield from serve(server)


def test_https_checks_the_certificate_against_the_url_host(tls_port: int) -> None:
    body = download.fetch(f"https://{HOST}:{tls_port}/model.bin", "127.0.0.1", 1000)
    assert body == b"weights" * 10


def test_https_refuses_a_certificate_for_another_name(tls_port: int) -> None:
    with pytest.raises(download.DownloadError, match=r"(?i)certificate"):
        download.fetch(f"https://other.invalid:{tls_port}/model.bin", "127.0.0.1", 1000)
