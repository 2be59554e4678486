"""The routes: which answer a request gets, by path and method.

`/` (liveness), `/ready`, `/metrics`, `/swagger.json` and `/score` (kaci_runtime.scoring).
While init() runs, `/score` and `/swagger.json` requests are held (as azmlinfsrv's
worker holds every request until its app is loaded) and answered when init() is
done; liveness and readiness answer at once.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

from kaci_runtime import amlapi
from kaci_runtime.config import Config
from kaci_runtime.metrics import LocalMetrics, SharedMetrics
from kaci_runtime.protocol import HttpProtocol, Request
from kaci_runtime.requestids import request_ids
from kaci_runtime.responder import HTML, JSON, METRICS_TYPE, RUN_OK, Responder
from kaci_runtime.scoring import Scorer
from kaci_runtime.swagger import Swagger, SwaggerError
from kaci_runtime.tokens import TokenVerifier

if TYPE_CHECKING:
    from kaci_runtime.limits import Gate

log = logging.getLogger("kaci_runtime")

NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually please "
    "check your spelling and try again."
)
NOT_ALLOWED = "The method is not allowed for the requested URL."
UNAUTHORIZED = "Unauthorized: send a valid key as 'Authorization: Bearer <key>'"
UNAUTHORIZED_TOKEN = "Unauthorized: send a valid token as 'Authorization: Bearer <token>'"  # noqa: S105
NOT_READY = "The scoring script is not ready yet: init() has not finished"
ALLOW_GET = [b"allow: GET, HEAD, OPTIONS\r\n"]
WWW_AUTHENTICATE = [b"www-authenticate: Bearer\r\n"]

_ROUTES_GET_ONLY = {
    b"/": "/",
    b"/ready": "/ready",
    b"/swagger.json": "/swagger.json",
    b"/metrics": "/metrics",
}
# Routes that wait for init() instead of answering 503 while it runs.
HELD_UNTIL_READY = frozenset((b"/score", b"/swagger.json"))


class Router:
    def __init__(
        self,
        config: Config,
        responder: Responder,
        metrics: LocalMetrics | SharedMetrics,
        hold: Callable[[HttpProtocol, Request], None],
    ) -> None:
        self.config = config
        self.responder = responder
        self.metrics = metrics
        self.hold = hold
        self.auth_keys = [f"Bearer {k}".encode() for k in config.auth_keys]
        # Token auth replaces key auth (config.py empties the keys when a token key is set).
        self.tokens: TokenVerifier | None = None
        self.unauthorized = UNAUTHORIZED
        if config.token_key is not None:
            self.tokens = TokenVerifier(config.token_key, config.token_audience)
            self.unauthorized = UNAUTHORIZED_TOKEN
        self.auth_required = bool(self.auth_keys) or self.tokens is not None
        # Set when init() succeeded.
        self.scorer: Scorer | None = None
        self.swagger: Swagger | None = None
        # The run() queue when the front-end limits are on (kaci_runtime.limits).
        self.gate: Gate | None = None
        # /score's handler when no auth is asked: the scorer's, or the queue's.
        self.direct: Callable[[HttpProtocol, Request], int | None] | None = None
        # Hold requests (False once init() is done or failed).
        self.holding = True

    def handle(self, conn: HttpProtocol, req: Request) -> None:
        path = req.path
        # Only until init() is done (then no connection holds requests any more); a
        # connection with held requests keeps its order: this one waits behind them.
        if self.holding and (conn.held or path in HELD_UNTIL_READY):
            self.hold(conn, req)
            return
        began = time.perf_counter()
        responder = self.responder
        ids, too_long = request_ids(req.watched, responder.ids)
        req.ids = ids
        code: int | None
        if too_long is not None:
            code = 431
            route = "other"
            responder.error(conn, req, 431, too_long)
        elif path == b"/score":
            route = "/score"
            direct = self.direct
            code = direct(conn, req) if direct is not None else self.score(conn, req)
            if code is None:
                return  # queued: the gate records it when it is answered
        elif path in _ROUTES_GET_ONLY:
            route = _ROUTES_GET_ONLY[path]
            code = self.get_route(conn, req, route)
        elif b"%" in path and (decoded := unquote_to_bytes(path)) != path:
            # Werkzeug routes on the percent-decoded path (/%73core is /score): so does kaci.
            req.path = decoded
            self.handle(conn, req)
            return
        else:
            code = 404
            route = "other"
            responder.error(conn, req, 404, NOT_FOUND)
        took = time.perf_counter() - began
        self.metrics.observe(route, code, took)
        if self.config.access_log:
            log.info(
                "%s %s %d %.3fms",
                req.method.decode("latin-1"),
                (path + (b"?" + req.query if req.query else b"")).decode("latin-1"),
                code,
                took * 1000,
            )

    def ready(self, scorer: Scorer, swagger: Swagger, gate: Gate | None) -> None:
        """init() is done: serve /score (through the gate when there is one)."""
        self.scorer, self.swagger, self.gate = scorer, swagger, gate
        if not self.auth_required:
            self.direct = gate.submit if gate is not None else scorer.score
        self.holding = False

    def record(self, req: Request, code: int, took: float) -> None:
        """A /score answer the gate wrote later: counted and logged as handle() does."""
        self.metrics.observe("/score", code, took)
        if self.config.access_log:
            log.info("%s /score %d %.3fms", req.method.decode("latin-1"), code, took * 1000)

    def score(self, conn: HttpProtocol, req: Request) -> int | None:
        scorer = self.scorer
        if scorer is None:
            self.responder.error(conn, req, 503, NOT_READY)
            return 503
        if self.auth_required and not self._authorized(req):
            self.responder.error(conn, req, 401, self.unauthorized, WWW_AUTHENTICATE)
            return 401
        gate = self.gate
        return gate.submit(conn, req) if gate is not None else scorer.score(conn, req)

    def get_route(self, conn: HttpProtocol, req: Request, route: str) -> int:
        responder = self.responder
        method = req.method
        if method not in (b"GET", b"HEAD"):
            if method == b"OPTIONS":
                responder.send(conn, req, 200, HTML, b"", ALLOW_GET, req.keep_alive)
                return 200
            responder.error(conn, req, 405, NOT_ALLOWED, ALLOW_GET)
            return 405
        head = method == b"HEAD"
        if route == "/":
            responder.send(conn, req, 200, HTML, b"Healthy", None, req.keep_alive, head)
            return 200
        if route == "/ready":
            if self.scorer is not None:
                responder.send(conn, req, 200, HTML, b"Ready", None, req.keep_alive, head)
                return 200
            responder.error(conn, req, 503, NOT_READY)
            return 503
        if route == "/metrics":
            body = self.metrics.render()
            responder.send(conn, req, 200, METRICS_TYPE, body, None, req.keep_alive, head)
            return 200
        # /swagger.json
        if not self._authorized(req):
            responder.error(conn, req, 401, self.unauthorized, WWW_AUTHENTICATE)
            return 401
        if self.swagger is None:
            responder.error(conn, req, 503, NOT_READY)
            return 503
        version: str | None = None
        if req.query:
            version = amlapi.Args(req.query.decode("latin-1")).get("version")
        try:
            doc = self.swagger.get(version)
        except SwaggerError as ex:
            responder.error(conn, req, 404, str(ex))
            return 404
        responder.send(conn, req, 200, JSON, doc, [RUN_OK], req.keep_alive, head)
        return 200

    def _authorized(self, req: Request) -> bool:
        tokens = self.tokens
        if tokens is not None:
            return tokens.valid(req.watched[2], time.time())
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
