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


def prefork(count: int, socks: list[socket.socket], run_worker: Callable[[int, int], int]) -> int:
    """Run `run_worker(worker_id, report_fd)` in `count` children; report_fd takes the
    one-line reason a worker could not start, which the parent prints last."""
    children: dict[int, int] = {}  # pid -> worker id
    stopping = False
    report_r, report_w = os.pipe()

    def spawn(worker_id: int) -> None:
        pid = os.fork()
        if pid == 0:
            # Child: default signal handling; the worker installs its own.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 1
            os.close(report_r)
            try:
                code = run_worker(worker_id, report_w)
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
            # init() failed: the script cannot serve; stop the others (the reason is
            # printed again at the end, as the log's last line, for the operator).
            result = code
            forward(signal.SIGTERM, None)
            continue
        log.warning("worker %d (pid %d) exited with %d: starting a new one", worker_id, pid, code)
        spawn(worker_id)
    for sock in socks:
        sock.close()
    os.close(report_w)
    if result:
        # The failing worker's summary, again, as the very last line of the log.
        # Non-blocking: a process the score script forked may still hold the write end.
        os.set_blocking(report_r, False)
        try:
            data = os.read(report_r, 65536)
        except BlockingIOError:
            data = b""
        os.close(report_r)
        first = data.decode(errors="replace").splitlines()[:1]
        for line in first:
            print(line, file=sys.stderr, flush=True)
    else:
        os.close(report_r)
    return result
