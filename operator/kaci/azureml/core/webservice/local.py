"""LocalWebservice (Azure's azureml.core.webservice.local): kaci-runtime on localhost.

Azure ran the scoring image in the local Docker engine. kaci runs the same server
the image runs (kaci-runtime), listening on 127.0.0.1, one of two ways
(_local_servers.py):
- a subprocess in the current Python environment (the default): the models are
  downloaded from the cluster into a folder of the service's own
  (azureml-models/<name>/<version>/, Azure's layout), the source_directory and
  score.py are copied into its app root, and the Environment's variables are set. The
  packages score.py imports must be installed here; the Environment's are not.
- `docker run` of the scoring image the cluster builds for the same models and
  Environment (KACI_LOCAL_WEBSERVICE=docker, or deploy_configuration(mode="docker")),
  pulled from the registry; the Environment's packages are in it. The image is asked
  for with gzip layers, which every Docker Engine pulls (20.10 cannot pull zstd).
  score.py and the source directory are mounted from the service's folder, so
  reload() picks up edits without a rebuild, as Azure's did.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.request
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kaci.azureml.core._inference import _folder_of
from kaci.azureml.core._no_code import frameworks_of, scorer
from kaci.azureml.core.webservice._local_servers import DockerServer, ProcessServer, Server
from kaci.azureml.exceptions import WebserviceException

if TYPE_CHECKING:
    from kaci.azureml.core.model import Model
    from kaci.azureml.core.webservice.webservice import Webservice
    from kaci.azureml.core.workspace import Workspace

# Seconds a local service may take to be ready (init() included).
START_TIMEOUT_S = 300.0
ModelList = list["Model"]
MODES = ("process", "docker")
# The mode when deploy_configuration names none: unchanged Azure code can pick docker.
MODE_ENV = "KACI_LOCAL_WEBSERVICE"


class LocalWebserviceDeploymentConfiguration:
    """Where the local service listens (Azure's: a port; None picks a free one), and
    kaci's `mode`: process or docker (None: $KACI_LOCAL_WEBSERVICE, else process)."""

    def __init__(self, port: int | None = None, mode: str | None = None) -> None:
        self.port = port
        self.mode = mode or os.environ.get(MODE_ENV) or "process"
        self.validate_configuration()

    def validate_configuration(self) -> None:
        if self.port is not None and (
            isinstance(self.port, bool)
            or not isinstance(self.port, int)
            or not 0 < self.port < 65536
        ):
            raise WebserviceException("Invalid configuration, port must be an int in 1-65535.")
        if self.mode not in MODES:
            raise WebserviceException(
                f"Invalid configuration, mode must be one of {', '.join(MODES)} "
                f"(from {MODE_ENV} when not given), not {self.mode!r}"
            )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalWebservice:
    """A scoring server on this machine; same calls as a Webservice, plus reload()."""

    _webservice_type = "Local"

    def __init__(self, workspace: Workspace, name: str, **kwargs: Any) -> None:
        # Azure found a running local container by name; kaci's local services live
        # in the process that deployed them.
        found = _RUNNING.get(name)
        if found is None:
            raise WebserviceException(
                f"WebserviceNotFound: no local service named {name} runs in this process "
                "(kaci's local services are subprocesses of the Python that deployed them)"
            )
        self.__dict__ = found.__dict__

    @staticmethod
    def deploy_configuration(
        port: int | None = None, *, mode: str | None = None
    ) -> LocalWebserviceDeploymentConfiguration:
        return LocalWebserviceDeploymentConfiguration(port, mode)

    @classmethod
    def _deploy(
        cls,
        workspace: Workspace,
        name: str,
        models: ModelList,
        inference_config: Any,
        config: LocalWebserviceDeploymentConfiguration,
    ) -> LocalWebservice:
        if config.mode == "process" and find_spec("kaci_runtime") is None:
            raise WebserviceException(
                "LocalWebservice needs kaci-runtime in this Python environment "
                "(pip install kaci); it runs score.py the way the scoring image does"
            )
        old = _RUNNING.get(name)
        if old is not None:
            old.delete()
        svc = cls.__new__(cls)
        svc.workspace = workspace
        svc.name = name
        svc.compute_type = "Local"
        svc.mode = config.mode
        svc.models = list(models)
        svc.inference_config = inference_config
        svc.port = config.port or _free_port()
        svc._root = Path(tempfile.mkdtemp(prefix=f"kaci-local-{name}-"))
        svc._server = None
        svc.state = "Transitioning"
        try:
            svc._stage(download=svc.mode == "process")
            svc._server = svc._new_server()
            svc._start()
        except BaseException:
            svc._stop()
            shutil.rmtree(svc._root, ignore_errors=True)
            raise
        _RUNNING[name] = svc
        return svc

    # -- attributes Azure code reads --------------------------------------------------

    workspace: Workspace
    name: str
    compute_type: str
    mode: str
    models: ModelList
    inference_config: Any
    port: int
    state: str
    _root: Path
    _server: Server | None

    @property
    def scoring_uri(self) -> str:
        return f"http://localhost:{self.port}/score"

    @property
    def swagger_uri(self) -> str:
        return f"http://localhost:{self.port}/swagger.json"

    def __repr__(self) -> str:
        return (
            f"LocalWebservice(name={self.name}, port={self.port}, mode={self.mode}, "
            f"state={self.state})"
        )

    # -- files and process --------------------------------------------------------------

    def _stage(self, download: bool) -> None:
        """Copy score.py (and the source directory) into the app root; models once."""
        app = self._root / "app"
        if app.exists():
            shutil.rmtree(app)
        app.mkdir(parents=True)
        cfg = self.inference_config
        if cfg is None:
            (app / "score.py").write_text(scorer(frameworks_of(self.models)).score_py)
            self._entry = "score.py"
            self._env: dict[str, str] = {}
        else:
            source: str | None = getattr(cfg, "source_directory", None)
            if source:
                shutil.copytree(source, app, dirs_exist_ok=True)
            script = str(getattr(cfg, "entry_script", None) or getattr(cfg, "execution_script", ""))
            src_script = Path(source) / script if source else Path(script)
            self._entry = script if source else "score.py"
            target = app / self._entry
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src_script, target)
            env = getattr(cfg, "environment", None)
            self._env = dict(env.environment_variables) if env is not None else {}
            folder = _folder_of(script)
            if source and folder:
                self._env["AZUREML_SOURCE_DIRECTORY"] = folder
        self._model_dir: str | None = None  # docker: the image's own AZUREML_MODEL_DIR
        if download:
            models_root = self._root / "azureml-models"
            if models_root.exists():
                shutil.rmtree(models_root)
            models_root.mkdir()
            for m in self.models:
                m.download(str(models_root / m.name / str(m.version)), exist_ok=True)
            if len(self.models) == 1:
                m = self.models[0]
                self._model_dir = str(models_root / m.name / str(m.version))
            else:
                self._model_dir = str(models_root)

    def _new_server(self) -> Server:
        if self.mode == "process":
            return ProcessServer(self._root / "service.log")
        from kaci.azureml.core.model import package_image

        image = package_image(
            self.workspace, self.models, self.inference_config, layer_compression="gzip"
        )
        image.wait_for_creation(show_output=False)
        assert image.image_location is not None
        server = DockerServer(image.image_location, self.name)
        server.pull()
        return server

    def _start(self) -> None:
        assert self._server is not None
        self._server.start(self._root / "app", self._entry, self._model_dir, self._env, self.port)
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        assert self._server is not None
        while time.monotonic() < deadline:
            ended = self._server.exited()
            if ended is not None:
                self.state = "Failed"
                raise WebserviceException(
                    f"local service {self.name} {ended} before it was ready. "
                    f"Log:\n{self.get_logs()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/ready", timeout=2
                ) as resp:
                    if resp.status == 200:
                        self.state = "running"
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self._stop()
        self.state = "Failed"
        raise WebserviceException(f"local service {self.name} was not ready in {timeout_s:.0f} s")

    def _stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    # -- Azure's calls ---------------------------------------------------------------------

    def wait_for_deployment(
        self, show_output: bool = False, timeout_sec: float | None = None
    ) -> None:
        """The deploy already waited for readiness; this checks the server still runs."""
        if self._server is None or self._server.exited() is not None:
            raise WebserviceException(
                f"local service {self.name} is not running. Log:\n{self.get_logs()[-3000:]}"
            )
        if show_output:
            print(f"Local webservice is running at {self.scoring_uri}")

    def run(self, input_data: Any) -> Any:
        if isinstance(input_data, bytes):
            body = input_data
        elif isinstance(input_data, str):
            body = input_data.encode()
        else:
            body = json.dumps(input_data).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/score",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 (http://127.0.0.1 only)
                text = resp.read()
        except urllib.error.HTTPError as exc:
            raise WebserviceException(
                f"Received bad response from local service: {exc.code} "
                f"{exc.read()[:2000].decode(errors='replace')}",
                status_code=exc.code,
            ) from None
        try:
            return json.loads(text)
        except ValueError:
            return text.decode(errors="replace")

    def get_logs(self, num_lines: int = 5000) -> str:
        if self._server is None:
            return ""
        return "\n".join(self._server.logs().splitlines()[-num_lines:])

    def reload(self, wait: bool = False) -> None:
        """Copy score.py and the source directory again and restart (models are kept;
        in docker mode the same image runs again with the new files: no rebuild)."""
        self._stop()
        model_dir = self._model_dir
        self._stage(download=False)
        self._model_dir = model_dir
        self._start()

    def update(
        self,
        models: ModelList | None = None,
        image_config: Any = None,
        deployment_config: LocalWebserviceDeploymentConfiguration | None = None,
        wait: bool = False,
        inference_config: Any = None,
    ) -> None:
        if all(v is None for v in (models, image_config, deployment_config, inference_config)):
            raise WebserviceException("No parameters provided to update.")
        if image_config is not None and inference_config is not None:
            raise WebserviceException("give either image_config or inference_config")
        self._stop()
        if models is not None:
            self.models = list(models)
        if image_config is not None or inference_config is not None:
            self.inference_config = inference_config or image_config
        if deployment_config is not None and deployment_config.port:
            self.port = deployment_config.port
        model_dir = self._model_dir
        self._stage(download=models is not None and self.mode == "process")
        if self.mode == "process" and models is None:
            self._model_dir = model_dir
        rebuilt = models is not None or image_config is not None or inference_config is not None
        if self.mode == "docker" and rebuilt:
            # Other models or another Environment: another image (built once per content).
            self._server = self._new_server()
        self._start()

    def delete(
        self, delete_cache: bool = True, delete_image: bool = False, delete_volume: bool = True
    ) -> None:
        self._stop()
        self.state = "Deleted"
        _RUNNING.pop(self.name, None)
        if delete_cache:
            shutil.rmtree(self._root, ignore_errors=True)

    def deploy_to_cloud(
        self, name: str | None = None, deployment_config: Any = None, deployment_target: Any = None
    ) -> Webservice:
        """Deploy the same models and inference config to the cluster (ACI by default)."""
        from kaci.azureml.core.webservice._deploy import deploy

        service: Webservice = deploy(
            self.workspace,
            name or self.name,
            self.models,
            self.inference_config,
            deployment_config,
            deployment_target,
        )
        return service

    def get_keys(self) -> Any:
        raise WebserviceException("local services have no auth: there are no keys")

    def get_token(self) -> Any:
        raise WebserviceException("local services have no auth: there are no tokens")

    def serialize(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "computeType": "Local",
            "state": self.state,
            "scoringUri": self.scoring_uri,
            "port": self.port,
            "mode": self.mode,
            "modelIds": [m.id for m in self.models],
        }


# Local services this process runs, by name (LocalWebservice(ws, name) finds them).
_RUNNING: dict[str, LocalWebservice] = {}


@atexit.register
def _stop_all() -> None:
    """Stop the servers this process started (each by its own Popen), at exit."""
    for svc in list(_RUNNING.values()):
        svc._stop()
