"""Writing answers: status line, Azure's headers (request ids, server version, CORS), body.

Every route answers through `Responder.send`; the headers that do not change per
request are pre-built here once.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from typing import Any

import orjson

from kaci_runtime.config import Config
from kaci_runtime.cors import ROUTES as CORS_ROUTES
from kaci_runtime.cors import Cors
from kaci_runtime.metrics import LocalMetrics, SharedMetrics
from kaci_runtime.protocol import HttpProtocol, Request, status_line
from kaci_runtime.requestids import IdMaker, request_ids

log = logging.getLogger("kaci_runtime")

JSON = b"content-type: application/json\r\n"
TEXT = b"content-type: text/plain; charset=utf-8\r\n"
HTML = b"content-type: text/html; charset=utf-8\r\n"
METRICS_TYPE = b"content-type: text/plain; version=0.0.4; charset=utf-8\r\n"
RUN_OK = b"x-ms-run-function-failed: False\r\n"
RUN_FAILED = b"x-ms-run-function-failed: True\r\n"

# Headers of a user's response that the server writes itself.
_OWN_HEADERS = frozenset(
    ("content-length", "x-ms-run-function-failed", "connection", "date", "transfer-encoding")
)
_IDS = frozenset(("x-request-id", "x-ms-request-id"))
_IDS_WITH_CLIENT = _IDS | {"x-ms-client-request-id"}


class Responder:
    def __init__(self, config: Config, metrics: LocalMetrics | SharedMetrics) -> None:
        self.metrics = metrics
        self.ids = IdMaker()
        self.server_header = (
            f"x-ms-server-version: {config.server_version}\r\n".encode()
            if config.server_version
            else b""
        )
        self.cors = Cors(config.cors_origins) if config.cors_origins else None

    def id_lines(self, conn: HttpProtocol, req: Request | None) -> tuple[list[bytes], str | None]:
        """The request-id header lines, and the 431 message when a client id is too long."""
        return request_ids(req.watched if req is not None else conn.watched, self.ids)

    def _head(
        self,
        conn: HttpProtocol,
        req: Request | None,
        code: int,
        content_type: bytes,
        extra: list[bytes] | None,
    ) -> list[bytes]:
        ids = req.ids if req is not None else None
        if ids is None:
            ids, _ = self.id_lines(conn, req)
        # The route's headers, then the server's (azmlinfsrv adds these after the route).
        head = [status_line(code), content_type]
        if extra:
            head += extra
        head.append(self.server_header)
        head += ids
        cors = self.cors
        if cors is not None and req is not None and req.path in CORS_ROUTES:
            head += cors.headers(req.method, req.raw_headers)
        return head

    def send(
        self,
        conn: HttpProtocol,
        req: Request | None,
        code: int,
        content_type: bytes,
        body: bytes,
        extra: list[bytes] | None = None,
        keep_alive: bool = True,
        head_only: bool = False,
    ) -> None:
        # _head(), inlined: this is every answer's path.
        ids = req.ids if req is not None else None
        if ids is None:
            ids, _ = self.id_lines(conn, req)
        head = [
            status_line(code),
            content_type,
            b"content-length: ",
            str(len(body)).encode(),
            b"\r\n",
        ]
        if extra:
            head += extra
        head.append(self.server_header)
        head += ids
        cors = self.cors
        if cors is not None and req is not None and req.path in CORS_ROUTES:
            head += cors.headers(req.method, req.raw_headers)
        # A HEAD answer has the headers of the GET answer and never a body.
        if head_only or (req is not None and req.method == b"HEAD"):
            body = b""
        conn.write(head, body, keep_alive)

    def error(
        self,
        conn: HttpProtocol,
        req: Request,
        code: int,
        message: str,
        extra: list[bytes] | None = None,
        run_failed: bool = False,
    ) -> None:
        body = orjson.dumps({"message": message})
        head_extra = [RUN_FAILED if run_failed else RUN_OK, *(extra or [])]
        self.send(conn, req, code, JSON, body, head_extra, req.keep_alive)

    def protocol_error(
        self, conn: HttpProtocol, code: int, message: str, keep_alive: bool = True
    ) -> None:
        """An answer to a request that could not be read whole (400, 413, 431 of the parser)."""
        body = orjson.dumps({"message": message})
        self.send(conn, None, code, JSON, body, [RUN_OK], keep_alive)
        self.metrics.observe("other", code, 0.0)

    def user_response(self, conn: HttpProtocol, req: Request, out: Any, timing: bytes) -> int:
        """A response object a @rawhttp run() returned (AMLResponse, or any Flask/werkzeug
        response): its status, headers and body, streamed when the body is an iterator."""
        code = int(out.status_code)
        extra: list[bytes] = []
        content_type = b""
        failed_given: list[str] = []
        # The server's request ids replace the script's (x-ms-client-request-id only when
        # the client sent one), as azmlinfsrv sets them after run().
        ours = _IDS_WITH_CLIENT if (req.watched[4] or req.watched[5]) else _IDS
        for name, value in out.headers.items():
            lower = name.lower()
            if lower == "x-ms-run-function-failed":
                failed_given.append(str(value))
                continue
            if lower in _OWN_HEADERS or lower in ours:
                continue
            line = f"{name}: {value}\r\n".encode("latin-1", "replace")
            if lower == "content-type" and not content_type:
                content_type = line
            else:
                extra.append(line)
        # Azure marks any 5xx as a failed run() (one value); otherwise the response says.
        if code >= 500:
            extra.append(RUN_FAILED)
        else:  # as given, repeated values too (AMLResponse's own and the script's)
            extra += [f"x-ms-run-function-failed: {v}\r\n".encode("latin-1") for v in failed_given]
        extra.append(timing)
        if self.cors is not None and any(
            line.lower().startswith(b"access-control-allow-origin:") for line in extra
        ):
            # The script answered CORS itself: flask-cors leaves such a response alone.
            cors, self.cors = self.cors, None
            try:
                self._send_user_body(conn, req, code, content_type, extra, out)
            finally:
                self.cors = cors
        else:
            self._send_user_body(conn, req, code, content_type, extra, out)
        return code

    def _send_user_body(
        self,
        conn: HttpProtocol,
        req: Request,
        code: int,
        content_type: bytes,
        extra: list[bytes],
        out: Any,
    ) -> None:
        if not getattr(out, "is_streamed", False):
            self.send(conn, req, code, content_type, out.get_data(), extra, req.keep_alive)
            return
        head = self._head(conn, req, code, content_type, extra)
        chunks: Iterator[bytes] = out.iter_encoded()
        try:
            conn.write_stream(head, chunks, req.keep_alive, req.method == b"HEAD")
        except Exception:
            log.error("the streamed body of run()'s response raised:\n%s", traceback.format_exc())
            conn.abort()
        finally:
            close = getattr(out, "close", None)
            if close is not None:
                close()
