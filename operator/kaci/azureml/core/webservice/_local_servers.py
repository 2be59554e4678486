"""The two ways a LocalWebservice runs kaci-runtime on this machine.

- `ProcessServer` (the default): a subprocess of the current Python. Fast to start and
  to reload; score.py's packages must be installed here.
- `DockerServer` (KACI_LOCAL_WEBSERVICE=docker, or deploy_configuration(mode="docker")):
  `docker run` of the scoring image the cluster built for the same models and
  Environment (pulled from the registry), as Azure's LocalWebservice ran its image in
  the local engine. The app folder (score.py, source_directory) is mounted from the
  service's own folder, so reload() restarts the container with the edited files and
  rebuilds nothing, as Azure's did.

Both listen on 127.0.0.1 only and are stopped through the handle that started them
(the Popen, the container ID), never by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from kaci import api
from kaci.azureml.exceptions import WebserviceException

STOP_TIMEOUT_S = 15.0
# Where the mounted app folder appears in the container (beside the image's own
# /var/azureml-app, whose models stay where the image put them).
CONTAINER_APP = "/var/kaci-local-app"


class Server(Protocol):
    def start(
        self, app: Path, entry: str, model_dir: str | None, env: Mapping[str, str], port: int
    ) -> None: ...

    def stop(self) -> None: ...

    def exited(self) -> str | None:
        """None while it runs; else how it ended (for the error message)."""

    def logs(self) -> str: ...


class ProcessServer:
    def __init__(self, log: Path) -> None:
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(
        self, app: Path, entry: str, model_dir: str | None, env: Mapping[str, str], port: int
    ) -> None:
        full = {**os.environ, **env, "AML_APP_ROOT": str(app), "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "kaci_runtime", "--entry_script", entry]
        if model_dir is not None:
            full["AZUREML_MODEL_DIR"] = model_dir
            cmd += ["--model_dir", model_dir]
        cmd += ["--host", "127.0.0.1", "--port", str(port)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=app, env=full, stdout=out, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)
        self.proc = None

    def exited(self) -> str | None:
        if self.proc is None:
            return "not started"
        code = self.proc.poll()
        return None if code is None else f"exited with code {code}"

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def docker_cli() -> str:
    """The docker CLI, answering for a running engine (else a clear refusal)."""
    docker = shutil.which("docker")
    if docker is None:
        raise WebserviceException(
            "LocalWebservice in docker mode needs the docker CLI and a running engine; "
            "unset KACI_LOCAL_WEBSERVICE to run it as a subprocess instead"
        )
    probe = subprocess.run(
        [docker, "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        raise WebserviceException(
            "LocalWebservice in docker mode: the Docker engine does not answer "
            f"({probe.stderr.strip()[:300]}); start it, or unset KACI_LOCAL_WEBSERVICE"
        )
    return docker


class DockerServer:
    def __init__(self, image: str, name: str) -> None:
        self.docker = docker_cli()
        self.image = image
        self.name = name
        self.container: str | None = None
        self._last_logs = ""

    def _docker(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.docker, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def pull(self) -> None:
        """The image by digest from the registry (a cached one is not pulled again)."""
        if self._docker("image", "inspect", self.image).returncode == 0:
            return
        done = self._docker("pull", self.image)
        if done.returncode != 0:
            raise WebserviceException(
                f"docker pull {self.image} failed: {done.stderr.strip()[-1000:]}"
            )

    def start(
        self, app: Path, entry: str, model_dir: str | None, env: Mapping[str, str], port: int
    ) -> None:
        # The container runs as the image's user (1000): the mounted files must be
        # readable by it.
        for path in [app, *app.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        app.parent.chmod(0o755)
        args = [
            "run",
            "--detach",
            "--label",
            f"{api.GROUP}/local-webservice={self.name}",
            "--publish",
            f"127.0.0.1:{port}:{api.SCORING_PORT}",
            "--volume",
            f"{app}:{CONTAINER_APP}:ro",
            "--env",
            f"AML_APP_ROOT={CONTAINER_APP}",
            "--env",
            f"AZUREML_ENTRY_SCRIPT={CONTAINER_APP}/{entry}",
        ]
        if model_dir is not None:
            args += ["--env", f"AZUREML_MODEL_DIR={model_dir}"]
        for k, v in env.items():
            args += ["--env", f"{k}={v}"]
        done = self._docker(*args, self.image)
        if done.returncode != 0:
            raise WebserviceException(
                f"docker run of {self.image} failed: {done.stderr.strip()[-1000:]}"
            )
        self.container = done.stdout.strip()

    def stop(self) -> None:
        if self.container is None:
            return
        self._last_logs = self.logs()
        self._docker("rm", "--force", self.container, timeout=STOP_TIMEOUT_S + 30)
        self.container = None

    def exited(self) -> str | None:
        if self.container is None:
            return "not started"
        seen = self._docker(
            "inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", self.container
        )
        running, _, code = seen.stdout.strip().partition(" ")
        return None if running == "true" else f"exited with code {code or '?'}"

    def logs(self) -> str:
        if self.container is None:
            return self._last_logs
        done = self._docker("logs", self.container, timeout=60)
        return done.stdout + done.stderr
