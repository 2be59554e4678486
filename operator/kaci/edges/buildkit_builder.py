"""The buildkit and remote drivers: `buildctl build` against a buildkitd.

`buildkit` is the buildkitd the chart runs in the cluster; `remote` one the user
runs (mTLS): the same driver, only the address and certificates differ. There is
no Python BuildKit client (docker-py cannot drive BuildKit, docker/docker-py#2230),
so buildctl runs as a subprocess, one per build:

- its rawjson progress is followed into the build log (kaci.edges.buildkit_progress),
  and through `on_lines` into status.buildLog and Events;
- at the deadline it gets SIGTERM (buildctl cancels the solve; buildkitd keeps
  running), then SIGKILL if it lingers;
- a failure is sorted as the docker driver does: buildkitd not answering is a
  retry with the reason (InfraDown), a failed Dockerfile step is Failed with the
  step and the log tail (UserError), a registry out of reach is a retry.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from kaci.edges import buildctl
from kaci.edges.builder import (
    UNREACHABLE,
    Builder,
    BuildError,
    BuilderUnavailableError,
    Kind,
    OnLines,
    build_outcome,
)
from kaci.edges.buildkit_progress import RawJsonProgress, dockerfile_step
from kaci.edges.buildlog import BuildLog
from kaci.render.modelfiles import check_name

# Seconds buildctl gets to cancel after SIGTERM before it is killed.
CANCEL_GRACE_S = 20
# Seconds `buildctl debug workers` gets to say buildkitd is there.
ANSWER_TIMEOUT_S = 10


class BuildkitUnavailableError(BuilderUnavailableError):
    default_reason = "BuildkitUnavailable"


def write_context(context: Mapping[str, bytes], folder: Path) -> None:
    """The build context as files (buildctl sends a folder); names checked."""
    for name, data in context.items():
        path = folder / check_name(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


# A registry request in buildctl's words: `Head "http://host:port/v2/...": dial tcp ...`.
_REGISTRY_URL = re.compile(r'"https?://([^/"]+)/v2/')


def unreachable_registry(error: str) -> str | None:
    """The registry buildkitd could not reach, as its error names it (a base image's
    may not be the push registry)."""
    found = _REGISTRY_URL.search(error)
    return found.group(1) if found else None


def _pump(stream: IO[bytes], out: queue.Queue[str | None]) -> None:
    for raw in iter(stream.readline, b""):
        out.put(raw.decode(errors="replace"))
    out.put(None)


class BuildkitBuilder(Builder):
    @property
    def where(self) -> str:
        return f"buildkitd at {self.settings.buildkit_addr}"

    def answers(self) -> bool:
        try:
            done = subprocess.run(
                buildctl.answers_args(self.settings),
                capture_output=True,
                timeout=ANSWER_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    def _docker_config_dir(self, scratch: Path) -> str | None:
        """A folder whose config.json is registry_push_config (buildctl reads
        $DOCKER_CONFIG/config.json): its own folder when the file has that name."""
        path = self.settings.registry_push_config
        if not path:
            return None
        if Path(path).name == "config.json":
            return str(Path(path).parent)
        (scratch / "docker").mkdir()
        shutil.copyfile(path, scratch / "docker" / "config.json")
        return str(scratch / "docker")

    def build_and_push(
        self,
        context: Mapping[str, bytes],
        ref: str,
        on_lines: OnLines | None = None,
        kind: Kind = "scoring",
        compression: str | None = None,
    ) -> str:
        deadline = time.monotonic() + self.settings.build_timeout_s
        progress = RawJsonProgress()
        log = progress.log
        with self._slots, tempfile.TemporaryDirectory(prefix="kaci-build-") as tmp:
            scratch = Path(tmp)
            (scratch / "context").mkdir()
            write_context(context, scratch / "context")
            metadata = scratch / "metadata.json"
            argv = buildctl.build_args(
                self.settings, ref, scratch / "context", metadata, kind, compression
            )
            env = buildctl.environment(os.environ, self._docker_config_dir(scratch))
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    env=env,
                )
            except OSError as e:
                raise BuildkitUnavailableError(
                    f"buildctl ({self.settings.buildctl}) cannot be started ({e}); trying again",
                    "",
                ) from e
            assert proc.stderr is not None
            lines: queue.Queue[str | None] = queue.Queue()
            reader = threading.Thread(target=_pump, args=(proc.stderr, lines), daemon=True)
            reader.start()
            try:
                self._follow(progress, lines, deadline, on_lines)
            except BaseException:
                # The deadline, or trouble streaming the progress (the API server):
                # never leave a build running that nobody follows.
                self._cancel(proc)
                raise
            code = proc.wait()
            reader.join(timeout=5)
            if code == 0:
                return self._pushed(ref, metadata, log, on_lines)
            raise self._failure(progress, ref, context.get("Dockerfile", b"").decode())

    def _follow(
        self,
        progress: RawJsonProgress,
        lines: queue.Queue[str | None],
        deadline: float,
        on_lines: OnLines | None,
    ) -> None:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BuildError(
                    f"build timed out after {self.settings.build_timeout_s}s"
                    f" at {progress.log.step or 'start'}",
                    progress.log.tail(),
                )
            try:
                line = lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                return
            new = progress.feed_line(line)
            if new and on_lines:
                on_lines(new, progress.log)

    def _cancel(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM: buildctl cancels the solve and exits; buildkitd goes on."""
        if proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=CANCEL_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=CANCEL_GRACE_S)

    def _pushed(self, ref: str, metadata: Path, log: BuildLog, on_lines: OnLines | None) -> str:
        try:
            digest = str(json.loads(metadata.read_text())["containerimage.digest"])
        except (OSError, ValueError, KeyError) as e:
            said = f"the build of {ref} reported no pushed digest ({e})"
            raise BuildError(said, log.tail()) from e
        new = log.add([f"pushed {ref}"])
        if on_lines:
            on_lines(new, log)
        return digest

    def _failure(self, progress: RawJsonProgress, ref: str, dockerfile: str) -> Exception:
        """What a failed buildctl run means: see the module's docstring."""
        log = progress.log
        # A failed step's own error first; else buildctl's closing words.
        error = (log.error if progress.failed_step else "") or progress.closing_error()
        error = error or log.error or ""
        said = " ".join([error, *progress.errors]).lower()
        outcome = build_outcome(error or None, None, self.answers)
        if outcome == "builder":
            seen = error or "buildctl ended without a result"
            at = f" at {log.step}" if log.step else ""
            return BuildkitUnavailableError(
                f"the {self.where} is unreachable or stopped during the build{at} "
                f"({seen[:300]}); trying again",
                log.tail(),
            )
        if not progress.failed_step and any(u in said for u in UNREACHABLE):
            registry = unreachable_registry(error) or ref.split("/", 1)[0]
            return BuilderUnavailableError(
                f"the build of {ref} could not reach a registry ({error[:300]}); "
                f"is the registry at {registry} up? trying again",
                log.tail(),
            )
        if not progress.failed_step:
            # Not a step that ran (a base image that cannot be resolved, the push):
            # the Dockerfile line buildctl points at, if any; never the last step
            # that ran, which would blame the wrong line.
            line = progress.dockerfile_line()
            log.step = (dockerfile_step(dockerfile, line) if line else None) or ""
        log.error = error
        return BuildError(log.explain(), log.tail())
