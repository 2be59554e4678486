"""The runtime's own cost per request, in one process, without sockets or a load generator.

A Worker is built as the server builds it, init() runs, and a fake transport feeds
the same request bytes to its HttpProtocol again and again: what is timed is
exactly kaci's parsing, routing, run() call and response writing. Far less
sensitive to a busy machine than `bench.py` (no second process, no scheduler
hand-offs), so it can tell a change of a few percent; it is no replacement for
the end-to-end numbers.

    .venv/bin/python bench/runtime/inproc.py                    # this tree
    PYTHONPATH=/tmp/old/scoring-runtime .venv/bin/python bench/runtime/inproc.py
    INPROC_ROUNDS=7 INPROC_REQUESTS=20000
    KACI_MODEL_DATA_CAPTURE=true KACI_MODEL_DATA_DIR=/tmp/x .venv/bin/python \
        bench/runtime/inproc.py mnist        # collect_model_data on, as the server runs it

Prints the CPU microseconds per request of the fastest round (the least disturbed).
With capture on, the process's CPU time includes the capture writer thread's, and the
whole run (every round plus the final flush of what is queued) is given too: a record
dropped (queue full) would make capture look cheaper than it is, so any drop fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROUNDS = int(os.environ.get("INPROC_ROUNDS", "7"))
REQUESTS = int(os.environ.get("INPROC_REQUESTS", "20000"))

ECHO = "def init():\n    pass\n\ndef run(raw_data):\n    return raw_data\n"


class Transport(asyncio.Transport):
    """Takes writes and drops them; counts the responses."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: Any) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        raise AssertionError("the benchmark's connection must stay open")

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name in ("peername", "sockname") else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def measure(script: Path, body: bytes, model_dir: str | None) -> float:
    from kaci_runtime import capture
    from kaci_runtime.config import load
    from kaci_runtime.protocol import HttpProtocol
    from kaci_runtime.server import Worker

    argv = ["--entry_script", str(script), "--port", "0"]
    if model_dir:
        argv += ["--model_dir", model_dir]
    config, exports = load(argv, os.environ)
    os.environ.update(exports)
    signal.signal(signal.SIGALRM, lambda *_: None)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    with socket.socket() as sock:
        worker = Worker(config, sock)
        worker.loop = loop
        taking = None
        if config.capture is not None:  # as Worker.serve does
            taking = capture.Capture(config.capture, on_drop=worker.metrics.capture_dropped)
            capture.activate(taking)
        worker._init_thread()  # here, not in a thread: it hands its result to the loop
        loop.run_until_complete(asyncio.sleep(0.01))
        if not worker.ready:
            raise SystemExit(f"init() of {script} did not finish")
        proto = HttpProtocol(worker)
        transport = Transport()
        proto.connection_made(transport)
        request = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
            len(body),
            body,
        )
        for _ in range(2000):  # warm-up
            proto.data_received(request)
        results = []
        whole = time.process_time()
        for _ in range(ROUNDS):
            # CPU time of this process: time spent descheduled (a busy machine) is left out.
            began = time.process_time()
            for _ in range(REQUESTS):
                proto.data_received(request)
            results.append((time.process_time() - began) / REQUESTS * 1e6)
        if transport.writes < REQUESTS:
            raise SystemExit("the server did not answer every request")
        if taking is not None:
            taking.close(timeout_s=60)  # everything queued is written: part of the cost
            capture.activate(None)
            whole_us = (time.process_time() - whole) / (ROUNDS * REQUESTS) * 1e6
            if taking.dropped:
                raise SystemExit(f"capture dropped {taking.dropped} records: not comparable")
            print(f"capture: all rounds with the final flush {whole_us:.2f} us/request, 0 dropped")
    loop.close()
    # The fastest round is the least disturbed one.
    return min(results)


def main() -> int:
    which = sys.argv[1] if len(sys.argv) > 1 else "echo"
    work = Path(tempfile.mkdtemp(prefix="kaci-inproc-"))
    if which == "echo":
        script = work / "score.py"
        script.write_text(ECHO)
        us = measure(script, b'{"data": [[1, 2, 3]]}', None)
    else:  # the MNIST tutorial script of bench.py, one row (bench.py prepares the model)
        model_dir = HERE.parents[1] / "bench" / "results" / "work" / "model"
        rows = json.loads((model_dir / "sample-request.json").read_text())["data"][:1]
        us = measure(HERE / "score.py", json.dumps({"data": rows}).encode(), str(model_dir))
    import kaci_runtime

    print(f"{which}: {us:.2f} us/request ({Path(kaci_runtime.__file__).parent})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
