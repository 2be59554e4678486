"""AKS's front end in the container: at most N run() calls at once, a queue, a wait limit.

On AKS, Azure's front end (azureml-fe) sends each replica at most
`replica_max_concurrent_requests` requests at once and keeps the rest in a queue; a
request that stays there longer than `max_request_wait_time` is answered 503, and one
whose scoring takes longer than `scoring_timeout_ms` is answered 504 (AksWebservice's
docstrings; "Troubleshooting remote model deployment", HTTP status codes 503 and 504).
kaci has no front end, so the runtime plays its part when KACI_MAX_CONCURRENT_REQUESTS or
KACI_MAX_REQUEST_WAIT_MS is set (the operator sets both from the Webservice).

Why run() leaves the loop thread here: a request can only be timed in the queue, and
refused when it waited too long, if the loop keeps reading while run() runs. So run()
runs on runner threads (one per allowed call) and the loop answers. The timeout cannot
be SIGALRM (main thread only): at the deadline the loop answers 504 at once and raises
ScoringTimeout inside run()'s thread (PyThreadState_SetAsyncExc), which stops it at its
next Python instruction; a run() stuck in one long C call (time.sleep, a big numpy op)
stops when that call returns, and until then its slot stays taken, as an AKS replica
stays busy. Without these variables none of this runs: run() stays on the loop thread.

Several workers share one cap: a semaphore made before the fork (cli.py) counts the
container's run() calls; each worker's runner threads take it before calling run().
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import queue
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from kaci_runtime.config import Config
from kaci_runtime.metrics import LocalMetrics, SharedMetrics
from kaci_runtime.protocol import HttpProtocol, Request
from kaci_runtime.responder import Responder
from kaci_runtime.scoring import RUN_ERROR, Scorer, ScoringTimeout

log = logging.getLogger("kaci_runtime")

# azureml-fe's answer when a request waited too long for a replica (reported in
# Azure/MachineLearningNotebooks#647 and MicrosoftDocs/azure-docs#68044), with 503.
OVERLOADED = "Too many requests for service {name} (overloaded)"
# AKS's front end answers a scoring timeout with 504 (azmlinfsrv alone: 500).
TIMEOUT_CODE = 504
# The most runner threads one worker starts (KACI_MAX_CONCURRENT_REQUESTS above it still
# holds as a cap; this worker just never runs more than this many at once).
MAX_RUNNERS = 64

# PyThreadState_SetAsyncExc(thread id, exception): raise it in that thread at its next
# Python instruction; with NULL, take back one not raised yet. Two prototypes, one function.
_raise_in = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)
_unraise_in = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)


class Slots(Protocol):
    """The container-wide count of run() calls (a multiprocessing semaphore)."""

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool: ...

    def release(self) -> None: ...


class _Job:
    """One /score request from its arrival to its answer."""

    __slots__ = (
        "arrived",
        "conn",
        "data",
        "error",
        "fast",
        "kwargs",
        "output",
        "refused",
        "req",
        "seconds",
        "state",
        "thread",
        "timer",
    )

    def __init__(
        self, conn: HttpProtocol, req: Request, fast: bool, data: str, kwargs: dict[str, Any]
    ) -> None:
        self.conn = conn
        self.req = req
        self.fast = fast
        self.data = data
        self.kwargs = kwargs
        self.arrived = time.monotonic()
        # queued -> running -> done, or answered early (refused, timed out) on the way.
        self.state = "queued"
        self.thread = 0
        self.timer: asyncio.TimerHandle | None = None
        self.output: Any = None
        self.error: str | None = None
        self.refused = False
        self.seconds = 0.0


class Gate:
    """The queue in front of run(): admits, times, refuses, answers. Loop thread only,
    except `_runner`, which runs on the runner threads."""

    def __init__(
        self,
        config: Config,
        scorer: Scorer,
        responder: Responder,
        metrics: LocalMetrics | SharedMetrics,
        loop: asyncio.AbstractEventLoop,
        record: Callable[[Request, int, float], None],
        slots: Slots | None = None,
    ) -> None:
        self.scorer = scorer
        self.responder = responder
        self.metrics = metrics
        self.loop = loop
        # Called with every answer (metrics by route and code, the access log).
        self.record = record
        self.slots = slots
        # Without a cap each worker runs one run() at a time, as without limits. Past
        # MAX_RUNNERS threads in one process only take turns at the GIL: more workers then.
        self.capacity = min(config.max_concurrent_requests or 1, MAX_RUNNERS)
        wait = config.max_request_wait_ms
        self.wait_s = None if wait is None else wait / 1000
        self.timeout_s = config.scoring_timeout_ms / 1000
        self.overloaded = OVERLOADED.format(name=config.service_name)
        self.running = 0
        self.waiting: deque[_Job] = deque()
        self.inbox: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        # Guards a job's running state against the timeout's async exception.
        self.lock = threading.Lock()
        for i in range(self.capacity):
            threading.Thread(target=self._runner, name=f"kaci-run-{i}", daemon=True).start()

    # -- the loop's side ----------------------------------------------------------------

    def submit(self, conn: HttpProtocol, req: Request) -> int | None:
        """Take a /score request: the status code if it was answered at once, else None
        (answered later; the connection reads nothing more until then)."""
        prepared = self.scorer.prepare(conn, req)
        if type(prepared) is int:
            return prepared
        fast, data, kwargs = prepared  # type: ignore[misc]
        job = _Job(conn, req, fast, data, kwargs)
        conn.busy = True
        if conn.transport is not None:
            conn.transport.pause_reading()
        self.metrics.add_in_flight(1)
        if self.running < self.capacity:
            self._start(job)
        else:
            self.waiting.append(job)
            if self.wait_s is not None:
                job.timer = self.loop.call_later(self.wait_s, self._waited_too_long, job)
        return None

    def _start(self, job: _Job) -> None:
        self.running += 1
        if job.timer is not None:
            job.timer.cancel()
            job.timer = None
        job.state = "starting"
        self.inbox.put(job)

    def _waited_too_long(self, job: _Job) -> None:
        if job.state != "queued":
            return
        self.waiting.remove(job)
        self._refuse(job)

    def _refuse(self, job: _Job) -> None:
        job.state = "answered"
        self.metrics.queue_timeout()
        self._answer(job, self._send_error(job, 503, self.overloaded, run_failed=False))

    def _send_error(self, job: _Job, code: int, message: str, run_failed: bool) -> int:
        self.responder.error(job.conn, job.req, code, message, run_failed=run_failed)
        return code

    def _running(self, job: _Job) -> None:
        """run() began on a runner thread: start the scoring timeout's clock."""
        if job.state == "running":
            job.timer = self.loop.call_later(self.timeout_s, self._timed_out, job)

    def _timed_out(self, job: _Job) -> None:
        job.timer = None
        with self.lock:
            if job.state != "running":
                return
            job.state = "timed out"
            _raise_in(job.thread, ScoringTimeout)
        log.error(
            "run() timed out after %d ms (SCORING_TIMEOUT_MS); answered %d",
            self.scorer.config.scoring_timeout_ms,
            TIMEOUT_CODE,
        )
        self._answer(job, self.scorer.timed_out(job.conn, job.req, TIMEOUT_CODE))

    def _finished(self, job: _Job) -> None:
        """run() returned (or raised, or never began: the shared cap refused it)."""
        self.running -= 1
        if job.timer is not None:
            job.timer.cancel()
            job.timer = None
        if job.refused:
            self._refuse(job)
        elif job.state == "done":
            job.state = "answered"
            if job.error is not None:
                log.error("run() raised (request %s):\n%s", job.req.watched[3], job.error)
                code = self._send_error(job, 500, RUN_ERROR, run_failed=True)
            else:
                code = self.scorer.answer(job.conn, job.req, job.output, job.seconds)
            self._answer(job, code)
        # else: answered already (the timeout); only its slot comes back now.
        self._next()

    def _next(self) -> None:
        while self.waiting and self.running < self.capacity:
            job = self.waiting.popleft()
            transport = job.conn.transport
            if transport is None or transport.is_closing():
                # The client left while waiting: nobody to answer, no run() for it.
                job.state = "answered"
                if job.timer is not None:
                    job.timer.cancel()
                self.metrics.add_in_flight(-1)
                continue
            self._start(job)

    def _answer(self, job: _Job, code: int) -> None:
        """The job's answer is written: count it, and serve what its connection sent next."""
        self.metrics.add_in_flight(-1)
        conn = job.conn
        self.record(job.req, code, time.monotonic() - job.arrived)
        conn.busy = False
        backlog = conn.backlog
        while backlog and not conn.busy:
            conn.worker.handle(conn, backlog.popleft())
        if not conn.busy and conn.transport is not None and not conn.transport.is_closing():
            conn.transport.resume_reading()

    # -- the runner threads --------------------------------------------------------------

    def _runner(self) -> None:
        while True:
            job = self.inbox.get()
            # A ScoringTimeout that lands after run() ended has nothing left to stop.
            with contextlib.suppress(BaseException):
                self._run(job)
            self.loop.call_soon_threadsafe(self._finished, job)

    def _run(self, job: _Job) -> None:
        slots = self.slots
        if slots is not None:
            wait = None
            if self.wait_s is not None:
                wait = max(0.0, job.arrived + self.wait_s - time.monotonic())
            if not slots.acquire(timeout=wait):
                job.refused = True
                return
        try:
            self._call(job)
        finally:
            if slots is not None:
                slots.release()

    def _call(self, job: _Job) -> None:
        run = self.scorer.script.run
        with self.lock:
            job.thread = threading.get_ident()
            job.state = "running"
        self.loop.call_soon_threadsafe(self._running, job)
        started = time.perf_counter()
        try:
            try:
                job.output = run(job.data) if job.fast else run(**job.kwargs)
            finally:
                job.seconds = time.perf_counter() - started
                with self.lock:
                    if job.state == "running":
                        job.state = "done"
                    # A timeout raised just as run() returned must not hit this thread later.
                    _unraise_in(job.thread, None)
        except ScoringTimeout:
            job.output = None
        except BaseException:
            job.error = traceback.format_exc()
