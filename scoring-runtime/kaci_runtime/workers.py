"""Several workers on one port: pre-fork N processes that share one listening socket.

Each worker imports the score script and runs init() itself (as azmlinfsrv's
gunicorn workers do), so /ready in a worker means that worker's init() worked.
The parent only watches: it forwards SIGTERM/SIGINT, restarts a worker that
dies after it was started, and exits non-zero if a worker's init() fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("kaci_runtime")


def prefork(count: int, sock: socket.socket, run_worker: Callable[[int], int]) -> int:
    children: dict[int, int] = {}  # pid -> worker id
    stopping = False

    def spawn(worker_id: int) -> None:
        pid = os.fork()
        if pid == 0:
            # Child: default signal handling; the worker installs its own.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 1
            try:
                code = run_worker(worker_id)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = worker_id

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for worker_id in range(count):
        spawn(worker_id)
    result = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        worker_id = children.pop(pid, -1)
        code = os.waitstatus_to_exitcode(status)
        if stopping:
            continue
        if code == 3:
            # init() failed: the script cannot serve; stop the others and say so.
            log.error("worker %d failed to start (exit %d): stopping", worker_id, code)
            result = code
            forward(signal.SIGTERM, None)
            continue
        log.warning("worker %d (pid %d) exited with %d: starting a new one", worker_id, pid, code)
        spawn(worker_id)
    sock.close()
    return result
