"""A real buildkitd on this host for the component tier (rootful, a unix socket in
a folder of its own), started and stopped by PID.

The binaries are found, in order: $KACI_TEST_BUILDKIT_DIR (a folder holding
buildctl and buildkitd), else hack/buildkit.sh's cache /var/cache/kaci/buildkit-<version>/
(`make cluster` builds it). Tests that need them skip, saying so, only when neither
holds both binaries.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import processes  # type: ignore[import-not-found,unused-ignore]  # tests/shared

CANDIDATES = [
    *sorted(Path("/var/cache/kaci").glob("buildkit-v*"), reverse=True),
]


def binaries() -> Path | None:
    """The folder holding buildctl and buildkitd, or None."""
    env = os.environ.get("KACI_TEST_BUILDKIT_DIR")
    for folder in [Path(env)] if env else CANDIDATES:
        if (folder / "buildctl").is_file() and (folder / "buildkitd").is_file():
            return folder
    return None


def skip_reason() -> str:
    where = ", ".join(str(c) for c in CANDIDATES)
    return (
        "no buildctl + buildkitd binaries: set KACI_TEST_BUILDKIT_DIR, or run "
        f"hack/buildkit.sh (looked in {where})"
    )


@dataclass
class Buildkitd:
    addr: str
    buildctl: str
    proc: subprocess.Popen[bytes]
    log: Path

    def answers(self) -> bool:
        done = subprocess.run(
            [self.buildctl, "--addr", self.addr, "debug", "workers"],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return done.returncode == 0

    def stop(self) -> None:
        """SIGTERM by PID (then SIGKILL): this process only."""
        processes.stop(self.proc, 30)


def config_toml(plain_http: list[str]) -> str:
    """buildkitd.toml: these registries over plain HTTP (pulls, pushes, the cache)."""
    out = ["[worker.oci]", "  gc = false", ""]
    for host in plain_http:
        out += [f'[registry."{host}"]', "  http = true", "  insecure = true", ""]
    return "\n".join(out)


@contextlib.contextmanager
def running(folder: Path, plain_http: list[str]) -> Iterator[Buildkitd]:
    """A fresh buildkitd (its own state folder: an empty local cache)."""
    state = Path(tempfile.mkdtemp(prefix="t-bkd-buildkitd-"))
    (state / "buildkitd.toml").write_text(config_toml(plain_http))
    addr = f"unix://{state / 'buildkitd.sock'}"
    log = state / "buildkitd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(folder / "buildkitd"),
                "--config",
                str(state / "buildkitd.toml"),
                "--root",
                str(state / "root"),
                "--addr",
                addr,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    daemon = Buildkitd(addr, str(folder / "buildctl"), proc, log)
    try:
        for _ in range(60):  # bounded wait for its socket
            if proc.poll() is not None:
                raise RuntimeError(f"buildkitd exited: {log.read_text()[-2000:]}")
            if daemon.answers():
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"buildkitd did not answer: {log.read_text()[-2000:]}")
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(state, ignore_errors=True)
