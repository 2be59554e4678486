"""Run kaci-runtime as a real local process on 127.0.0.1, for tests of a score.py.

    with LocalRuntime("score.py", model_dir="models") as rt:
        status, headers, body = rt.request("POST", "/score", b'{"data": [[1, 2]]}')

The process listens on a free port (it picks it itself: `--port 0`), its log
goes to a file (`rt.log()`), and it is stopped with SIGTERM by its PID.
Standard library only, so it works wherever the runtime does.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

_BANNER = re.compile(r"listening on http://[^:]+:(\d+)")


class RuntimeExitedError(RuntimeError):
    pass


class LocalRuntime:
    def __init__(
        self,
        entry_script: str | Path,
        model_dir: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        args: list[str] | None = None,
        log_path: str | Path | None = None,
        cwd: str | Path | None = None,
    ) -> None:
        self.entry_script = str(entry_script)
        self.model_dir = None if model_dir is None else str(model_dir)
        self.extra_env = dict(env or {})
        self.args = list(args or [])
        self.cwd = str(cwd) if cwd is not None else None
        self.log_path = Path(log_path) if log_path else Path(self.entry_script).with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> LocalRuntime:
        cmd = [sys.executable, "-m", "kaci_runtime", "--entry_script", self.entry_script]
        cmd += ["--host", "127.0.0.1", "--port", "0", *self.args]
        if self.model_dir is not None:
            cmd += ["--model_dir", self.model_dir]
        env = {**os.environ, **self.extra_env}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.cwd
            )
        return self

    def wait_listening(self, deadline_s: float = 60.0) -> int:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            match = _BANNER.search(self.log())
            if match:
                self.port = int(match.group(1))
                return self.port
            self._check_alive()
            time.sleep(0.02)
        raise TimeoutError(f"kaci-runtime did not start listening:\n{self.log()}")

    def wait_ready(self, deadline_s: float = 120.0) -> None:
        if not self.port:
            self.wait_listening(deadline_s)
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            self._check_alive()
            try:
                status, _, _ = self.request("GET", "/ready")
            except OSError:
                status = 0
            if status == 200:
                return
            time.sleep(0.05)
        raise TimeoutError(f"kaci-runtime did not get ready:\n{self.log()}")

    def wait_log(self, text: str, count: int = 1, deadline_s: float = 120.0) -> None:
        """Wait until `text` appears `count` times in the log."""
        end = time.monotonic() + deadline_s
        while self.log().count(text) < count:
            if time.monotonic() > end:
                raise TimeoutError(f"{text!r} x{count} never showed in the log:\n{self.log()}")
            self._check_alive()
            time.sleep(0.02)

    def wait_exit(self, deadline_s: float = 60.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=deadline_s)

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> LocalRuntime:
        self.start()
        self.wait_ready()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- inspection ----------------------------------------------------------------------

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            code = self.proc.returncode
            raise RuntimeExitedError(f"kaci-runtime exited with {code}:\n{self.log()}")

    # -- requests ------------------------------------------------------------------------

    def connection(self, timeout: float = 60.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request on a new connection: (status, lower-case headers, body)."""
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()
