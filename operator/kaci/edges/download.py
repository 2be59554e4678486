"""Download a model URL from an address the URL policy has already checked (an edge).

Resolving the host a second time to download would let a DNS answer that changes
between the check and the connection (DNS rebinding) reach an address the policy
refused, so the connection goes to the checked address while the request keeps
the URL's host name (Host header, and TLS server name and certificate check).
Redirects are not followed: their target was never checked. When the operator's
environment names an HTTP(S) proxy for the URL, the proxy makes the connection and
resolves the name itself; the policy then speaks for what the operator resolved.
"""

from __future__ import annotations

import functools
import http.client
import socket
import ssl
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit


class DownloadError(RuntimeError):
    """The server could not be reached or did not answer 200."""


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, *, address: str, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._create_connection = functools.partial(_connect_to, address)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, *, address: str, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._create_connection = functools.partial(_connect_to, address)


def _connect_to(
    address: str,
    host_port: tuple[str, int],
    timeout: float | None = None,
    source: tuple[str, int] | None = None,
) -> socket.socket:
    return socket.create_connection((address, host_port[1]), timeout, source)


class _PinnedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        factory = functools.partial(_PinnedHTTPConnection, address=self.address)
        return self.do_open(factory, req)


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, address: str) -> None:
        super().__init__(context=ssl.create_default_context())
        self.address = address

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        factory = functools.partial(_PinnedHTTPSConnection, address=self.address)
        return self.do_open(factory, req, context=ssl.create_default_context())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _proxied(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(
        parts.hostname or ""
    )


def fetch(url: str, address: str, max_bytes: int, timeout: float = 60) -> bytes:
    """The body of `url` (at most max_bytes + 1 bytes, so the caller sees an oversize one),
    read from `address` (an IP the URL's host resolved to and the policy accepted)."""
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if not _proxied(url):
        handlers += [_PinnedHTTPHandler(address), _PinnedHTTPSHandler(address)]
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=timeout) as resp:
            return bytes(resp.read(max_bytes + 1))
    except urllib.error.HTTPError as e:
        raise DownloadError(f"HTTP {e.code}") from e
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(str(e)) from e
