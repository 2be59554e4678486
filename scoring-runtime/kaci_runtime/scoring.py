"""POST/GET /score: run() with the request as Azure passes it, under the scoring timeout.

run() runs on the event loop's thread (the main thread), right where the
request's last byte was parsed; the timeout is a SIGALRM timer that raises a
BaseException inside run(), so `except Exception:` in a score.py cannot swallow it.
"""

from __future__ import annotations

import logging
import signal
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any

from kaci_runtime import capture, fastjson
from kaci_runtime.config import Config
from kaci_runtime.metrics import LocalMetrics, SharedMetrics
from kaci_runtime.protocol import HttpProtocol, Request
from kaci_runtime.responder import HTML, JSON, RUN_OK, Responder
from kaci_runtime.userscript import (
    BadInput,
    Mode,
    UnsupportedInput,
    UnsupportedMethod,
    UserScript,
    header_dict,
)

log = logging.getLogger("kaci_runtime")

RUN_ERROR = "An unexpected error occurred in scoring script. Check the logs for more info."
INTERNAL_ERROR = "An unexpected internal error occurred. Check the logs for more info."
ALLOW_SCORE = [b"allow: GET, POST, OPTIONS\r\n"]


class ScoringTimeout(BaseException):
    """Raised in run() by SIGALRM; a BaseException, so `except Exception` in run() keeps out."""


def on_alarm(signum: int, frame: FrameType | None) -> None:
    raise ScoringTimeout


def is_response(value: Any) -> bool:
    """A Flask/werkzeug response (AMLResponse is one), by its shape: werkzeug stays unimported."""
    return (
        hasattr(value, "status_code") and hasattr(value, "get_data") and hasattr(value, "headers")
    )


class Scorer:
    def __init__(
        self,
        config: Config,
        script: UserScript,
        responder: Responder,
        metrics: LocalMetrics | SharedMetrics,
        build_request: Callable[..., Any] | None,
    ) -> None:
        self.config = config
        self.script = script
        self.responder = responder
        self.metrics = metrics
        self.timeout_s = config.scoring_timeout_ms / 1000
        # kaci_runtime.amlhttp.build_request for @rawhttp scripts (werkzeug), else None.
        self.build_request = build_request
        self.multiprocess = config.worker_count > 1

    def _raw_arguments(self, conn: HttpProtocol, req: Request) -> dict[str, Any]:
        assert self.build_request is not None
        headers = req.headers_str()
        request = self.build_request(
            req.method.decode("latin-1"),
            req.path.decode("latin-1"),
            req.query.decode("latin-1"),
            headers,
            req.body,
            conn.peer(),
            conn.local(),
            self.multiprocess,
        )
        kwargs: dict[str, Any] = {self.script.data_param: request}
        if self.script.wants_headers:
            kwargs["request_headers"] = header_dict(headers)
        return kwargs

    def prepare(self, conn: HttpProtocol, req: Request) -> tuple[bool, str, dict[str, Any]] | int:
        """run()'s arguments: (fast, data, kwargs), `fast` meaning run(data); or the status
        code of the answer already sent (a method run() does not take, a body it cannot)."""
        script = self.script
        responder = self.responder
        method = req.method
        if method not in (b"GET", b"POST", b"OPTIONS", b"HEAD"):
            # Outside the route's methods: Werkzeug's 405, as Azure's Flask app answers.
            responder.error(
                conn, req, 405, "The method is not allowed for the requested URL.", ALLOW_SCORE
            )
            return 405
        # The common case (plain run(raw_data), POST) without building an argument dict.
        fast = script.plain_positional and method == b"POST"
        kwargs: dict[str, Any] = {}
        data = ""
        try:
            if fast:
                data = req.body.decode("utf-8")
            elif script.mode is Mode.RAW:
                kwargs = self._raw_arguments(conn, req)
            else:
                kwargs = script.arguments(
                    method.decode("latin-1"),
                    req.query.decode("latin-1"),
                    req.headers_str(),
                    req.body,
                    (req.watched[1] or b"").decode("latin-1"),
                )
        except UnicodeDecodeError as ex:
            responder.error(conn, req, 400, f"Input cannot be decoded as UTF-8: {ex}")
            return 400
        except BadInput as ex:
            responder.error(conn, req, 400, str(ex))
            return 400
        except UnsupportedInput as ex:
            responder.error(conn, req, 415, str(ex))
            return 415
        except UnsupportedMethod:
            if method == b"OPTIONS":
                responder.send(conn, req, 200, HTML, b"", [RUN_OK], req.keep_alive)
                return 200
            responder.error(conn, req, 405, "Method not allowed", ALLOW_SCORE)
            return 405
        return fast, data, kwargs

    def score(self, conn: HttpProtocol, req: Request) -> int:
        """Prepare, run() right here on the loop thread under SIGALRM, answer."""
        prepared = self.prepare(conn, req)
        if type(prepared) is int:
            return prepared
        fast, data, kwargs = prepared  # type: ignore[misc]
        run = self.script.run
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
            return self.timed_out(conn, req, 500)
        except BaseException:
            log.error("run() raised (request %s):\n%s", req.watched[3], traceback.format_exc())
            self.responder.error(conn, req, 500, RUN_ERROR, run_failed=True)
            return 500
        return self.answer(conn, req, output, perf() - started)

    def timed_out(self, conn: HttpProtocol, req: Request, code: int) -> int:
        """The scoring timeout's answer: azmlinfsrv's message; 500 is azmlinfsrv's code, 504
        AKS's front end's (kaci_runtime.limits)."""
        self.metrics.scoring_timeout()
        message = f"Scoring timeout after {self.config.scoring_timeout_ms} ms"
        self.responder.error(conn, req, code, message, run_failed=True)
        return code

    def answer(self, conn: HttpProtocol, req: Request, output: Any, elapsed: float) -> int:
        """run()'s return value as the response: JSON, or the response object it made."""
        responder = self.responder
        self.metrics.observe_run(elapsed)
        timing = b"x-ms-run-fn-exec-ms: %.3f\r\n" % (elapsed * 1000)

        kind = type(output)
        if kind is list or kind is dict or kind is str or output is None or not is_response(output):
            try:
                body = b"{}" if output is None else fastjson.dumps(output)
            except (TypeError, ValueError):
                log.error("run() returned a value JSON cannot encode:\n%s", traceback.format_exc())
                responder.error(conn, req, 500, INTERNAL_ERROR)
                return 500
            responder.send(conn, req, 200, JSON, body, [RUN_OK, timing], req.keep_alive)
            taking = capture.active()
            if taking is not None:
                taking.request(request_id(req), req.body, body)
            return 200
        code = responder.user_response(conn, req, output, timing)
        taking = capture.active()
        if taking is not None:
            taking.request(request_id(req), req.body, bytes(output.get_data()), False)
        return code


def request_id(req: Request) -> str:
    """The x-request-id the answer carried (the router set req.ids), else the client's."""
    ids = req.ids
    if ids and ids[0] == b"x-request-id: ":
        return ids[1].decode("latin-1")
    given = req.watched[3]
    return given.decode("latin-1") if given else ""
