"""HTTP/1.1 on asyncio + httptools (llhttp, the parser uvicorn uses), one connection per Protocol.

The score script's run() is synchronous and the worker has one core, so the
request is handled right where its last byte is parsed, on the event loop
thread: no thread hop, no task per request. Responses are written in request
order (pipelining works), keep-alive is the default, headers are pre-built.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterator
from email.utils import formatdate
from typing import TYPE_CHECKING

import httptools

if TYPE_CHECKING:
    from kaci_runtime.server import Worker

REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
STATUS_LINES = {code: f"HTTP/1.1 {code} {text}\r\n".encode() for code, text in REASONS.items()}

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# Header names the server looks at, lower-case -> attribute slot.
_WATCHED = {
    b"content-length": 0,
    b"content-type": 1,
    b"authorization": 2,
    b"x-request-id": 3,
    b"x-ms-request-id": 4,
    b"x-ms-client-request-id": 5,
    b"expect": 6,
    b"traceid": 7,
}


def status_line(code: int) -> bytes:
    line = STATUS_LINES.get(code)
    return line if line is not None else f"HTTP/1.1 {code} Status {code}\r\n".encode()


class _DateCache:
    """The Date header, formatted once per second."""

    __slots__ = ("second", "value")

    def __init__(self) -> None:
        self.second = -1
        self.value = b""

    def get(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self.second:
            self.second = second
            self.value = f"date: {formatdate(now, usegmt=True)}\r\n".encode()
        return self.value


DATE = _DateCache()


class Request:
    """The parts of one request the handlers need."""

    __slots__ = ("body", "ids", "keep_alive", "method", "path", "query", "raw_headers", "watched")

    def __init__(
        self,
        method: bytes,
        path: bytes,
        query: bytes,
        raw_headers: list[tuple[bytes, bytes]],
        watched: list[bytes | None],
        body: bytes,
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.raw_headers = raw_headers
        self.watched = watched
        self.body = body
        self.keep_alive = keep_alive
        # The request-id header lines of the answer (set by the router).
        self.ids: list[bytes] | None = None

    def header(self, slot: int) -> bytes | None:
        return self.watched[slot]

    def headers_str(self) -> list[tuple[str, str]]:
        """The headers score.py sees. As gunicorn (azmlinfsrv's server) does, a name with an
        underscore is dropped: in WSGI it would pass for the dash name (X_Forwarded_For)."""
        return [
            (n.decode("latin-1"), v.decode("latin-1")) for n, v in self.raw_headers if b"_" not in n
        ]


class HttpProtocol(asyncio.Protocol):
    __slots__ = (
        "backlog",
        "body",
        "body_len",
        "busy",
        "closing",
        "discard",
        "header_bytes",
        "headers",
        "held",
        "in_request",
        "parser",
        "transport",
        "url",
        "watched",
        "worker",
    )

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.watched: list[bytes | None] = [None] * len(_WATCHED)
        self.body: list[bytes] = []
        self.body_len = 0
        self.header_bytes = 0
        self.in_request = False
        # Close after the current response (shutdown, Connection: close, an error).
        self.closing = False
        # Ignore everything still coming in (after a 413/431/400 that closes the connection).
        self.discard = False
        # Requests of this connection waiting for init() to finish (answered in order).
        self.held = 0
        # A request of this connection waits in the run() queue (kaci_runtime.limits); the
        # ones it sent after it wait in the backlog, to be answered in order.
        self.busy = False
        self.backlog: deque[Request] = deque()

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.worker.connections.add(self)
        # Accepted just before a SIGTERM was handled: serve what comes, then close.
        if self.worker.shutting_down:
            self.closing = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.discard = True
        self.worker.connection_closed(self)

    def data_received(self, data: bytes) -> None:
        if self.discard:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.reject(400, "Protocol upgrades are not supported")
        except httptools.HttpParserError:
            if not self.discard:
                self.reject(400, "The request could not be parsed as HTTP/1.1")

    def pause_writing(self) -> None:
        # The client is not reading its responses: stop reading its requests.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    # -- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_request = True
        self.url = b""
        self.headers = []
        self.watched = [None] * len(_WATCHED)
        self.body = []
        self.body_len = 0
        self.header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        self.header_bytes += len(name) + len(value) + 4
        slot = _WATCHED.get(name.lower())
        if slot is not None:
            self.watched[slot] = value

    def on_headers_complete(self) -> None:
        if self.discard:
            return
        if self.header_bytes > MAX_HEADER_BYTES or len(self.headers) > MAX_HEADERS:
            self.reject(431, "Request headers are too large")
            return
        length = self.watched[0]
        limit = self.worker.config.max_request_bytes
        if length is not None:
            try:
                too_big = int(length) > limit
            except ValueError:
                too_big = False  # the parser rejects a bad Content-Length itself
            if too_big:
                self.reject(413, self.worker.too_large_message)
                return
        expect = self.watched[6]
        if expect is not None and expect.lower() == b"100-continue" and self.transport is not None:
            self.transport.write(CONTINUE)

    def on_body(self, body: bytes) -> None:
        if self.discard:
            return
        self.body.append(body)
        self.body_len += len(body)
        if self.body_len > self.worker.config.max_request_bytes:
            self.reject(413, self.worker.too_large_message)

    def on_message_complete(self) -> None:
        if self.discard:
            return
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        url = self.url
        if url == b"/score":
            path, query = url, b""
        else:
            try:
                parsed = httptools.parse_url(url)
            except httptools.HttpParserInvalidURLError:
                self.reject(400, "The request URL is not valid")
                return
            path, query = parsed.path or b"/", parsed.query or b""
        keep_alive = self.parser.should_keep_alive() and not self.closing
        request = Request(
            self.parser.get_method(), path, query, self.headers, self.watched, body, keep_alive
        )
        self.worker.handle(self, request)

    # -- writing -------------------------------------------------------------------------

    def write(self, head: list[bytes], body: bytes, keep_alive: bool) -> None:
        """Send one response; `head` holds the status line and the per-response headers."""
        transport = self.transport
        self.in_request = False
        if transport is None or transport.is_closing():
            return
        keep = keep_alive and not self.closing
        head.append(DATE.get())
        head.append(b"\r\n" if keep else b"connection: close\r\n\r\n")
        head.append(body)
        transport.write(b"".join(head))
        if not keep:
            self.discard = True
            transport.close()

    def write_stream(
        self, head: list[bytes], chunks: Iterator[bytes], keep_alive: bool, head_only: bool
    ) -> None:
        """Send a response whose body comes in pieces (a generator): chunked on HTTP/1.1.

        An HTTP/1.0 client gets the raw bytes and the connection closes after them. If the
        body raises midway, the connection is closed without the last chunk, so the
        client sees a cut answer, not a complete wrong one.
        """
        transport = self.transport
        self.in_request = False
        if transport is None or transport.is_closing():
            return
        chunked = self.parser.get_http_version() != "1.0"
        keep = keep_alive and not self.closing and chunked
        head.append(DATE.get())
        if chunked:
            head.append(b"transfer-encoding: chunked\r\n")
        head.append(b"\r\n" if keep else b"connection: close\r\n\r\n")
        transport.write(b"".join(head))
        if not head_only:
            for chunk in chunks:
                if not chunk:
                    continue
                if chunked:
                    transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    transport.write(chunk)
            if chunked:
                transport.write(b"0\r\n\r\n")
        if not keep:
            self.discard = True
            transport.close()

    def abort(self) -> None:
        """Drop the connection now (a streamed body failed after its head was sent)."""
        self.discard = True
        if self.transport is not None:
            self.transport.close()

    def peer(self) -> tuple[str, int] | None:
        info = self.transport.get_extra_info("peername") if self.transport else None
        return (str(info[0]), int(info[1])) if info else None

    def local(self) -> tuple[str, int] | None:
        info = self.transport.get_extra_info("sockname") if self.transport else None
        return (str(info[0]), int(info[1])) if info else None

    def reject(self, code: int, message: str) -> None:
        """An error that ends the connection (the rest of the request is not read)."""
        self.closing = True
        self.worker.respond_error(self, code, message, keep_alive=False)
        self.discard = True

    def shutdown(self) -> None:
        """Graceful stop: close now if idle, else after the response in progress."""
        self.closing = True
        if not self.in_request and self.transport is not None:
            self.discard = True
            self.transport.close()
