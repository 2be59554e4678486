"""One worker process: an event loop, the score script's lifecycle, and the wiring.

init() runs in a helper thread so `GET /` (liveness) and `GET /ready` answer
while a large model loads; requests to /score and /swagger.json that come
meanwhile are held and answered once init() is done (kaci_runtime.routes).
run() runs on the loop thread (the main thread), so the scoring timeout can
interrupt it with SIGALRM, as azmlinfsrv does (kaci_runtime.scoring).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kaci_runtime import capture, fastjson, legacyimports
from kaci_runtime.config import Config
from kaci_runtime.limits import Gate, Slots
from kaci_runtime.metrics import Metrics
from kaci_runtime.protocol import HttpProtocol, Request
from kaci_runtime.responder import Responder
from kaci_runtime.routes import NOT_READY, Router
from kaci_runtime.scoring import Scorer, on_alarm
from kaci_runtime.swagger import Swagger
from kaci_runtime.userscript import Mode, UserScript

log = logging.getLogger("kaci_runtime")

# Exit code for a score script that cannot start (gunicorn's and azmlinfsrv's boot error).
EXIT_INIT_FAILED = 3


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
        socks: socket.socket | list[socket.socket],
        worker_id: int = 0,
        report_fd: int | None = None,
        slots: Slots | None = None,
    ) -> None:
        self.config = config
        # The container-wide run() count shared by the workers (cli.py), or None.
        self.slots = slots
        self.report_fd = report_fd
        self.socks = socks if isinstance(socks, list) else [socks]
        self.worker_id = worker_id
        self.metrics = Metrics()
        self.connections: set[HttpProtocol] = set()
        self.responder = Responder(config, self.metrics)
        self.router = Router(config, self.responder, self.metrics, self.hold)
        # The protocol calls handle() (the router's) and respond_error() directly; with the
        # front-end limits on, a connection's requests wait behind its queued one.
        self.handle: Callable[[HttpProtocol, Request], None] = (
            self._handle_in_order if config.limited else self.router.handle
        )
        self.too_large_message = (
            f"The request body is larger than the limit of {config.max_request_bytes} bytes."
        )
        self.held: list[tuple[HttpProtocol, Request]] = []
        self.shutting_down = False
        self.exit_code = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.servers: list[asyncio.base_events.Server] = []
        self.started = time.monotonic()

    @property
    def ready(self) -> bool:
        return self.router.scorer is not None

    def _handle_in_order(self, conn: HttpProtocol, req: Request) -> None:
        if conn.busy:
            conn.backlog.append(req)
            return
        self.router.handle(conn, req)

    def respond_error(
        self, conn: HttpProtocol, code: int, message: str, keep_alive: bool = True
    ) -> None:
        self.responder.protocol_error(conn, code, message, keep_alive)

    # -- lifecycle -----------------------------------------------------------------------

    def serve(self) -> int:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        signal.signal(signal.SIGALRM, on_alarm)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.begin_shutdown, sig)
        for sock in self.socks:
            self.servers.append(
                loop.run_until_complete(
                    loop.create_server(lambda: HttpProtocol(self), sock=sock, backlog=2048)
                )
            )
        if self.config.capture is not None:
            # In each worker (threads do not cross a fork), before init(): a
            # ModelDataCollector made in init() writes to the same sink.
            capture.activate(
                capture.Capture(self.config.capture, on_drop=self.metrics.capture_dropped)
            )
        threading.Thread(target=self._init_thread, name="kaci-init", daemon=True).start()
        try:
            loop.run_forever()
        finally:
            loop.close()
            taken = capture.active()
            if taken is not None:
                taken.close()  # what is queued is written before the process exits
                capture.activate(None)
        return self.exit_code

    def _init_thread(self) -> None:
        began = time.monotonic()
        try:
            config = self.config
            if config.fast_json:
                fastjson.install()
            legacyimports.install()
            script = UserScript.load(config.entry_script, config.app_root, config.source_dir)
            script.init()
            folders = [Path(config.app_root)]
            if config.entry_script:
                folders.append(Path(config.app_root, config.entry_script).resolve().parent)
            swagger = Swagger.build(
                script.run,
                folders,
                config.service_name,
                config.service_version,
                config.service_path_prefix,
            )
            build_request: Callable[..., Any] | None = None
            if script.mode is Mode.RAW:
                # werkzeug, for @rawhttp scripts only, loaded here and not on a first request.
                from kaci_runtime import amlhttp

                build_request = amlhttp.build_request
        except BaseException as ex:
            details = traceback.format_exc()
            assert self.loop is not None
            self.loop.call_soon_threadsafe(self._init_failed, ex, details)
            return
        assert self.loop is not None
        scorer = Scorer(self.config, script, self.responder, self.metrics, build_request)
        self.loop.call_soon_threadsafe(
            self._init_done, scorer, swagger, script.mode, time.monotonic() - began
        )

    # -- requests that came while init() ran ------------------------------------------

    def hold(self, conn: HttpProtocol, req: Request) -> None:
        """Keep a request until init() is done; stop reading its connection meanwhile."""
        self.held.append((conn, req))
        conn.held += 1
        if conn.transport is not None and conn.held == 1:
            conn.transport.pause_reading()

    def _release_held(self, answer: Callable[[HttpProtocol, Request], None]) -> None:
        """Answer the held requests in the order they came, then read their connections again."""
        held, self.held = self.held, []
        for conn, _ in held:
            conn.held = 0
        for conn, req in held:
            transport = conn.transport
            if transport is not None and not transport.is_closing():
                answer(conn, req)
        for conn in dict.fromkeys(conn for conn, _ in held):
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.resume_reading()

    def _init_done(self, scorer: Scorer, swagger: Swagger, mode: Mode, seconds: float) -> None:
        gate = None
        if self.config.limited:
            assert self.loop is not None
            gate = Gate(
                self.config,
                scorer,
                self.responder,
                self.metrics,
                self.loop,
                self.router.record,
                self.slots,
            )
        self.router.ready(scorer, swagger, gate)
        self._release_held(self.handle)
        log.info(
            "worker %d (pid %d): init() done in %.2f s; run() gets the %s; ready",
            self.worker_id,
            os.getpid(),
            seconds,
            mode.value,
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
        self._refuse_held()
        self.begin_shutdown(None, immediate=True)

    def _refuse_held(self) -> None:
        """init() failed or the worker stops before it finished: 503 for the waiting requests."""
        self.router.holding = False

        def not_ready(conn: HttpProtocol, req: Request) -> None:
            req.keep_alive = False
            self.responder.error(conn, req, 503, NOT_READY)

        self._release_held(not_ready)

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
        for server in self.servers:
            server.close()
        if self.held:
            self._refuse_held()
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
