"""One worker process: an event loop, the score script, and the routes.

init() runs in a helper thread so `GET /` (liveness) and `GET /ready` answer
while a large model loads; run() runs on the loop thread (the main thread), so
the scoring timeout can interrupt it with SIGALRM, as azmlinfsrv does.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

from kaci_runtime import amlapi, fastjson
from kaci_runtime.config import Config
from kaci_runtime.metrics import Metrics
from kaci_runtime.protocol import HttpProtocol, Request, status_line
from kaci_runtime.swagger import Swagger, SwaggerError
from kaci_runtime.userscript import (
    BadInput,
    UnsupportedInput,
    UnsupportedMethod,
    UserScript,
)

log = logging.getLogger("kaci_runtime")

# Exit code for a score script that cannot start (gunicorn's and azmlinfsrv's boot error).
EXIT_INIT_FAILED = 3

JSON = b"content-type: application/json\r\n"
TEXT = b"content-type: text/plain; charset=utf-8\r\n"
HTML = b"content-type: text/html; charset=utf-8\r\n"
METRICS_TYPE = b"content-type: text/plain; version=0.0.4; charset=utf-8\r\n"
RUN_OK = b"x-ms-run-function-failed: False\r\n"
RUN_FAILED = b"x-ms-run-function-failed: True\r\n"
HEADER_LIMIT = 100

NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually please "
    "check your spelling and try again."
)
NOT_ALLOWED = "The method is not allowed for the requested URL."
RUN_ERROR = "An unexpected error occurred in scoring script. Check the logs for more info."
INTERNAL_ERROR = "An unexpected internal error occurred. Check the logs for more info."
UNAUTHORIZED = "Unauthorized: send a valid key as 'Authorization: Bearer <key>'"
NOT_READY = "The scoring script is not ready yet: init() has not finished"

_ROUTES_GET_ONLY = {
    b"/": "/",
    b"/ready": "/ready",
    b"/swagger.json": "/swagger.json",
    b"/metrics": "/metrics",
}


class ScoringTimeout(BaseException):
    """Raised in run() by SIGALRM; a BaseException, so `except Exception` in run() keeps out."""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise ScoringTimeout


def walk_model_dir(path: str, limit: int = 200) -> list[str]:
    """The model folder as an indented tree (what the operator shows when init() fails)."""
    lines: list[str] = []
    root = Path(path)

    def visit(p: Path, depth: int) -> None:
        if len(lines) > limit:
            return
        lines.append(f"{'    ' * depth}{p.name}{os.sep if p.is_dir() else ''}")
        if p.is_dir():
            for child in sorted(p.iterdir()):
                visit(child, depth + 1)

    visit(root, 0)
    if len(lines) > limit:
        lines = [*lines[:limit], f"(listing cut at {limit} lines)"]
    return lines


class Worker:
    def __init__(
        self,
        config: Config,
        sock: socket.socket,
        worker_id: int = 0,
        report_fd: int | None = None,
    ) -> None:
        self.config = config
        self.report_fd = report_fd
        self.sock = sock
        self.worker_id = worker_id
        self.metrics = Metrics()
        self.connections: set[HttpProtocol] = set()
        self.script: UserScript | None = None
        self.swagger: Swagger | None = None
        self.ready = False
        self.shutting_down = False
        self.exit_code = 0
        self.auth_keys = [f"Bearer {k}".encode() for k in config.auth_keys]
        self.too_large_message = (
            f"The request body is larger than the limit of {config.max_request_bytes} bytes."
        )
        self.timeout_s = config.scoring_timeout_ms / 1000
        self.server_header = f"x-ms-server-version: {config.server_version}\r\n".encode()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: asyncio.base_events.Server | None = None
        self.started = time.monotonic()
        prefix = uuid.uuid4().hex
        self._id_prefix = f"{prefix[:8]}-{prefix[8:12]}-4{prefix[13:16]}-{prefix[16:20]}-".encode()
        self._id_counter = 0

    # -- lifecycle -----------------------------------------------------------------------

    def serve(self) -> int:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        signal.signal(signal.SIGALRM, _on_alarm)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.begin_shutdown, sig)
        self.server = loop.run_until_complete(
            loop.create_server(lambda: HttpProtocol(self), sock=self.sock, backlog=2048)
        )
        threading.Thread(target=self._init_thread, name="kaci-init", daemon=True).start()
        try:
            loop.run_forever()
        finally:
            loop.close()
        return self.exit_code

    def _init_thread(self) -> None:
        began = time.monotonic()
        try:
            if self.config.fast_json:
                fastjson.install()
            script = UserScript.load(self.config.entry_script, self.config.app_root)
            script.init()
            folders = [Path(self.config.app_root)]
            if self.config.entry_script:
                folders.append(Path(self.config.entry_script).resolve().parent)
            swagger = Swagger.build(script.run, folders)
        except BaseException as ex:
            details = traceback.format_exc()
            assert self.loop is not None
            self.loop.call_soon_threadsafe(self._init_failed, ex, details)
            return
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._init_done, script, swagger, time.monotonic() - began)

    def _init_done(self, script: UserScript, swagger: Swagger, seconds: float) -> None:
        self.script, self.swagger, self.ready = script, swagger, True
        log.info(
            "worker %d (pid %d): init() done in %.2f s; run() gets the %s; ready",
            self.worker_id,
            os.getpid(),
            seconds,
            script.mode.value,
        )

    def _init_failed(self, ex: BaseException, details: str) -> None:
        where = self.config.entry_script or "main.py"
        print(details.rstrip(), file=sys.stderr)
        model_dir = self.config.model_dir
        if model_dir and Path(model_dir).exists():
            print(f"Model directory {model_dir}:", file=sys.stderr)
            for line in walk_model_dir(model_dir):
                print(f"    {line}", file=sys.stderr)
        else:
            print(f"Model directory {model_dir!r} does not exist.", file=sys.stderr)
        reason = f"{type(ex).__name__}: {ex}".strip().replace("\n", " ")
        # The operator shows the last log line to the user: keep it one line, and say what failed.
        summary = f"kaci-runtime: init() of {where} failed: {reason}"
        print(summary, file=sys.stderr, flush=True)
        if self.report_fd is not None:
            os.write(self.report_fd, summary.encode()[:4000] + b"\n")
        self.exit_code = EXIT_INIT_FAILED
        self.begin_shutdown(None, immediate=True)

    def begin_shutdown(self, sig: int | None, immediate: bool = False) -> None:
        if self.shutting_down:
            if sig is not None:
                log.info("second signal: stopping now")
                self._stop()
            return
        self.shutting_down = True
        if sig is not None:
            log.info(
                "worker %d: %s: finishing requests in flight",
                self.worker_id,
                signal.Signals(sig).name,
            )
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.shutdown()
        assert self.loop is not None
        if immediate:
            self._stop()
        else:
            self.loop.call_later(self.config.graceful_timeout_s, self._stop)
            self._stop_if_idle()

    def connection_closed(self, conn: HttpProtocol) -> None:
        self.connections.discard(conn)
        if self.shutting_down:
            self._stop_if_idle()

    def _stop_if_idle(self) -> None:
        if not self.connections:
            self._stop()

    def _stop(self) -> None:
        if self.loop is not None and self.loop.is_running():
            self.loop.stop()

    # -- responses -----------------------------------------------------------------------

    def _new_id(self) -> bytes:
        # UUID-shaped and unique: a random per-process prefix and a counter. uuid4() per
        # request costs a getrandom() syscall and ~5x the time.
        self._id_counter += 1
        return b"%s%012x" % (self._id_prefix, self._id_counter)

    def _ids(self, conn: HttpProtocol, req: Request | None) -> list[bytes] | None:
        """Azure's request-id headers; None after answering 431 for an over-long id."""
        watched = req.watched if req is not None else conn.watched
        given = watched[3]
        if given is not None and len(given) > HEADER_LIMIT:
            return None
        rid = given if given else self._new_id()
        out = [b"x-request-id: ", rid, b"\r\n"]
        legacy, client = watched[4], watched[5]
        if (legacy and len(legacy) > HEADER_LIMIT) or (client and len(client) > HEADER_LIMIT):
            return None
        out += [b"x-ms-request-id: ", legacy or client or rid, b"\r\n"]
        if client:
            out += [b"x-ms-client-request-id: ", client, b"\r\n"]
        trace = watched[7]
        if trace is not None:
            out += [b"traceid: ", trace, b"\r\n"]
        return out

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
        ids = self._ids(conn, req)
        if ids is None:
            code, content_type, extra = 431, JSON, None
            body = orjson.dumps(
                {"message": f"x-request-id must not exceed {HEADER_LIMIT} characters"}
            )
            ids = []
        head = [
            status_line(code),
            content_type,
            b"content-length: ",
            str(len(body)).encode(),
            b"\r\n",
            self.server_header,
            *ids,
        ]
        if extra:
            head += extra
        # A HEAD answer has the headers of the GET answer and never a body.
        if head_only or (req is not None and req.method == b"HEAD"):
            body = b""
        conn.write(head, body, keep_alive)

    def respond_error(
        self,
        conn: HttpProtocol,
        code: int,
        message: str,
        keep_alive: bool = True,
        req: Request | None = None,
        run_failed: bool = False,
        extra: list[bytes] | None = None,
    ) -> None:
        body = orjson.dumps({"message": message})
        extra = [RUN_FAILED if run_failed else RUN_OK, *(extra or [])]
        self.send(conn, req, code, JSON, body, extra, keep_alive)
        route = req.path.decode("latin-1") if req is not None else "-"
        self.metrics.observe(route if route in ("/score", "/", "/ready") else "other", code, 0.0)

    # -- routes --------------------------------------------------------------------------

    def handle(self, conn: HttpProtocol, req: Request) -> None:
        began = time.perf_counter()
        path = req.path
        if path == b"/score":
            code = self.score(conn, req)
            route = "/score"
        elif path in _ROUTES_GET_ONLY:
            route = _ROUTES_GET_ONLY[path]
            code = self.get_route(conn, req, route)
        else:
            code = 404
            route = "other"
            self.respond_error(conn, 404, NOT_FOUND, req.keep_alive, req)
        took = time.perf_counter() - began
        if route != "other":
            self.metrics.observe(route, code, took)
        if self.config.access_log:
            log.info(
                "%s %s %d %.3fms",
                req.method.decode("latin-1"),
                (path + (b"?" + req.query if req.query else b"")).decode("latin-1"),
                code,
                took * 1000,
            )

    def get_route(self, conn: HttpProtocol, req: Request, route: str) -> int:
        method = req.method
        if method not in (b"GET", b"HEAD"):
            if method == b"OPTIONS":
                self.send(
                    conn, req, 200, HTML, b"", [b"allow: GET, HEAD, OPTIONS\r\n"], req.keep_alive
                )
                return 200
            self._error(conn, req, 405, NOT_ALLOWED, [b"allow: GET, HEAD, OPTIONS\r\n"])
            return 405
        head = method == b"HEAD"
        if route == "/":
            self.send(conn, req, 200, HTML, b"Healthy", None, req.keep_alive, head)
            return 200
        if route == "/ready":
            if self.ready:
                self.send(conn, req, 200, HTML, b"Ready", None, req.keep_alive, head)
                return 200
            self._error(conn, req, 503, NOT_READY)
            return 503
        if route == "/metrics":
            self.send(
                conn, req, 200, METRICS_TYPE, self.metrics.render(), None, req.keep_alive, head
            )
            return 200
        # /swagger.json
        if not self._authorized(req):
            self._error(conn, req, 401, UNAUTHORIZED, [b"www-authenticate: Bearer\r\n"])
            return 401
        if self.swagger is None:
            self._error(conn, req, 503, NOT_READY)
            return 503
        version: str | None = None
        if req.query:
            args = amlapi.Args(req.query.decode("latin-1"))
            version = args.get("version")
        try:
            doc = self.swagger.get(version)
        except SwaggerError as ex:
            self._error(conn, req, 404, str(ex))
            return 404
        self.send(conn, req, 200, JSON, doc, [RUN_OK], req.keep_alive, head)
        return 200

    def _error(
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

    def _authorized(self, req: Request) -> bool:
        if not self.auth_keys:
            return True
        given = req.watched[2]
        if given is None:
            return False
        # Constant-time comparison against each configured key.
        ok = False
        for key in self.auth_keys:
            ok |= hmac.compare_digest(given, key)
        return ok

    def score(self, conn: HttpProtocol, req: Request) -> int:
        script = self.script
        if script is None or not self.ready:
            self._error(conn, req, 503, NOT_READY)
            return 503
        if self.auth_keys and not self._authorized(req):
            self._error(conn, req, 401, UNAUTHORIZED, [b"www-authenticate: Bearer\r\n"])
            return 401
        method = req.method
        if method not in (b"GET", b"POST", b"OPTIONS", b"HEAD"):
            # Outside the route's methods: Werkzeug's 405, as Azure's Flask app answers.
            self._error(conn, req, 405, NOT_ALLOWED, [b"allow: GET, POST, OPTIONS\r\n"])
            return 405
        # The common case (plain run(raw_data), POST) without building an argument dict.
        fast = script.plain_positional and method == b"POST"
        kwargs: dict[str, Any] = {}
        data = ""
        try:
            if fast:
                data = req.body.decode("utf-8")
            else:
                kwargs = script.arguments(
                    method.decode("latin-1"),
                    req.path.decode("latin-1"),
                    req.query.decode("latin-1"),
                    req.headers_str(),
                    req.body,
                    (req.watched[1] or b"").decode("latin-1"),
                )
        except UnicodeDecodeError as ex:
            self._error(conn, req, 400, f"Input cannot be decoded as UTF-8: {ex}")
            return 400
        except BadInput as ex:
            self._error(conn, req, 400, str(ex))
            return 400
        except UnsupportedInput as ex:
            self._error(conn, req, 415, str(ex))
            return 415
        except UnsupportedMethod:
            if method == b"OPTIONS":
                self.send(conn, req, 200, HTML, b"", [RUN_OK], req.keep_alive)
                return 200
            self._error(conn, req, 405, "Method not allowed", [b"allow: GET, POST, OPTIONS\r\n"])
            return 405

        run = script.run
        setitimer = signal.setitimer
        perf = time.perf_counter
        started = perf()
        try:
            setitimer(signal.ITIMER_REAL, self.timeout_s)
            try:
                output = run(data) if fast else run(**kwargs)
            finally:
                setitimer(signal.ITIMER_REAL, 0)
        except ScoringTimeout:
            log.error(
                "run() timed out after %d ms (SCORING_TIMEOUT_MS):\n%s",
                self.config.scoring_timeout_ms,
                traceback.format_exc(),
            )
            message = f"Scoring timeout after {self.config.scoring_timeout_ms} ms"
            self._error(conn, req, 500, message, run_failed=True)
            return 500
        except BaseException:
            log.error("run() raised (request %s):\n%s", req.watched[3], traceback.format_exc())
            self._error(conn, req, 500, RUN_ERROR, run_failed=True)
            return 500
        elapsed = perf() - started
        self.metrics.observe_run(elapsed)
        timing = b"x-ms-run-fn-exec-ms: %.3f\r\n" % (elapsed * 1000)

        kind = type(output)
        if (
            kind is list
            or kind is dict
            or kind is str
            or output is None
            or not _is_response(output)
        ):
            try:
                body = b"{}" if output is None else fastjson.dumps(output)
            except (TypeError, ValueError):
                log.error("run() returned a value JSON cannot encode:\n%s", traceback.format_exc())
                self._error(conn, req, 500, INTERNAL_ERROR)
                return 500
            self.send(conn, req, 200, JSON, body, [RUN_OK, timing], req.keep_alive)
            return 200
        return self._send_user_response(conn, req, output, timing)

    def _send_user_response(self, conn: HttpProtocol, req: Request, out: Any, timing: bytes) -> int:
        """A response object returned by a @rawhttp run(): status, headers and body as given."""
        code = int(out.status_code)
        if isinstance(out, amlapi.AMLResponse):
            headers, body = out.headers, out.body
        else:  # a Flask/Werkzeug response (the real azureml packages' AMLResponse)
            headers, body = list(out.headers.items()), out.get_data()
        extra: list[bytes] = []
        content_type = b""
        for name, value in headers:
            lower = name.lower()
            if lower in ("content-length", "x-ms-run-function-failed", "connection", "date"):
                continue
            line = f"{name}: {value}\r\n".encode("latin-1", "replace")
            if lower == "content-type":
                content_type = line
            else:
                extra.append(line)
        failed = code >= 500 or bool(getattr(out, "run_function_failed", False))
        extra += [RUN_FAILED if failed else RUN_OK, timing]
        self.send(conn, req, code, content_type, body, extra, req.keep_alive)
        return code


def _is_response(value: Any) -> bool:
    return isinstance(value, amlapi.AMLResponse) or (
        hasattr(value, "status_code") and hasattr(value, "get_data") and hasattr(value, "headers")
    )
