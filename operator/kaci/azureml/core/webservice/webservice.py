"""Webservice: a deployed model (Azure's azureml.core.webservice.Webservice)."""

from __future__ import annotations

import json
import secrets
import time
import warnings
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kaci import api
from kaci.azureml import _files, _manifests, _scoring
from kaci.azureml._names import LABEL_WEBSERVICE, validate_service_name
from kaci.azureml._upload import upload
from kaci.azureml._wait import Display, new_log_lines, wait_for
from kaci.azureml.exceptions import (
    FailedStateException,
    KaciCompatibilityWarning,
    ResourceNotFoundException,
    WebserviceException,
)

if TYPE_CHECKING:
    from kaci.azureml.core.image.container import ContainerImageConfig
    from kaci.azureml.core.image.image import Image
    from kaci.azureml.core.model import Model
    from kaci.azureml.core.webservice.aci import AciServiceDeploymentConfiguration
    from kaci.azureml.core.workspace import Workspace

Obj = dict[str, Any]
# `list` is also a method name in the classes below (Azure's API).
AnyList = list[Any]
StrList = list[str]
ModelList = list["Model"]
PLURAL = api.WEBSERVICES
# Seconds a Webservice may stay Unschedulable before a wait gives up on it.
UNSCHEDULABLE_GRACE_S = 300.0
# Seconds delete() waits for the Webservice and what it owns to be gone.
DELETE_TIMEOUT_S = 180.0
# Seconds regen_key waits for the Pods to serve with the new keys.
KEYS_TIMEOUT_S = 300.0
KEYS_ROTATED = "kaci.dev/keys-rotated-at"
KEYS_HASH = "kaci.dev/keys-hash"  # set by the operator on the Pod template


def service_verdict(obj: Obj, unschedulable_for: float = 0.0) -> str:
    """Healthy is success; Failed ends the wait; the rest is in progress.

    Unschedulable ends it only once it lasted UNSCHEDULABLE_GRACE_S: on a busy
    cluster Pods that are going away free their CPU and memory a little later,
    while a request no node can ever hold stays Unschedulable.
    """
    if not _manifests.is_observed(obj):
        return "pending"
    state = obj.get("status", {}).get("state")
    if state == "Healthy":
        return "done"
    if state == "Failed":
        return "failed"
    if state == "Unschedulable" and unschedulable_for >= UNSCHEDULABLE_GRACE_S:
        return "failed"
    return "pending"


def describe_conditions(obj: Obj) -> str:
    """One line like `ImageReady=True PodReady=False (ContainerCreating)`."""
    parts = []
    for c in obj.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            continue
        text = f"{c.get('type')}={c.get('status')}"
        if c.get("status") != "True" and c.get("reason"):
            text += f" ({c['reason']})"
        parts.append(text)
    return " ".join(parts)


def _check_target(deployment_target: Any) -> None:
    from kaci.azureml.core.compute import ComputeTarget

    # The cluster itself (ComputeTarget / AksCompute handles) is the one target.
    if deployment_target is not None and not isinstance(deployment_target, ComputeTarget):
        raise WebserviceException(
            "deployment_target: kaci deploys into the workspace's namespace (like ACI, which had "
            "no compute target); leave it None"
        )


def _deploy_config(config: AciServiceDeploymentConfiguration | None) -> Obj:
    from kaci.azureml.core.webservice.aci import AciServiceDeploymentConfiguration

    return (config or AciServiceDeploymentConfiguration())._spec()


class Webservice:
    """A deployed Webservice; `Webservice(ws, name)` returns an AciWebservice."""

    _webservice_type = "ACI"

    def __new__(cls, *args: Any, **kwargs: Any) -> Webservice:
        if cls is Webservice:
            from kaci.azureml.core.webservice.aci import AciWebservice

            return super().__new__(AciWebservice)
        return super().__new__(cls)

    def __init__(self, workspace: Workspace, name: str, **kwargs: Any) -> None:
        self.workspace = workspace
        obj: Obj | None = kwargs.get("_obj")
        if obj is None:
            obj = workspace._kube.get(PLURAL, name)
            if obj is None:
                raise ResourceNotFoundException(
                    f"WebserviceNotFound: webservice with name {name} not found in namespace "
                    f"{workspace.namespace}"
                )
        self._primary_key: str | None = None
        _specialize(self, obj)
        self._initialize(obj)

    def _initialize(self, obj: Obj) -> None:
        spec, status = obj.get("spec", {}), obj.get("status", {}) or {}
        deploy = spec.get("deploymentConfig", {})
        self._obj = obj
        self.name = str(obj["metadata"]["name"])
        self.compute_type = self._webservice_type
        self.state: str = status.get("state") or "Transitioning"
        self.scoring_uri: str | None = status.get("scoringUri")
        # Where scoringUri points: "Cluster" (cluster DNS, reached through the API
        # server), or an outside address: "Ingress", "NodePort", "LoadBalancer".
        self.access: str = status.get("access") or "Cluster"
        self._token: tuple[str, datetime] | None = None
        self.swagger_uri: str | None = status.get("swaggerUri")
        self.image_location: str | None = status.get("imageLocation")
        image = status.get("image") or {}
        self.image_id: str | None = (
            f"{image['name']}:{image['version']}"
            if image.get("name") and image.get("version")
            else None
        )
        self.model_ids = [
            f"{m['name']}:{m['version']}" for m in status.get("models") or [] if m.get("name")
        ]
        self.error: Obj | None = status.get("error") or None
        self.auth_enabled = bool(deploy.get("authEnabled", False))
        self.cpu_cores: float | None = deploy.get("cpuCores")
        self.memory_gb: float | None = deploy.get("memoryGb")
        self.tags: dict[str, str] = dict(deploy.get("tags") or {})
        self.properties: dict[str, str] = {}
        self.description: str | None = deploy.get("description")
        self.keys_secret: str | None = status.get("keysSecret") or (
            api.keys_secret_name(self.name) if self.auth_enabled else None
        )
        created = obj["metadata"].get("creationTimestamp")
        self.created_time = (
            datetime.fromisoformat(str(created).replace("Z", "+00:00")) if created else None
        )
        self.location = None  # Azure region: not a thing here

    @property
    def image(self) -> Image | None:
        from kaci.azureml.core.image.image import Image

        if not self.image_id:
            return None
        name, _, version = self.image_id.partition(":")
        try:
            return Image(self.workspace, name=name, version=int(version))
        except ResourceNotFoundException:
            return None

    @property
    def models(self) -> list[Model]:
        from kaci.azureml.core.model import Model

        out = []
        for mid in self.model_ids:
            name, _, version = mid.rpartition(":")
            out.append(Model(self.workspace, name=name, version=int(version)))
        return out

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(workspace={self.workspace!r}, name={self.name}, "
            f"image_id={self.image_id}, compute_type={self.compute_type}, state={self.state}, "
            f"scoring_uri={self.scoring_uri}, tags={self.tags}, properties={self.properties})"
        )

    # -- the three deploy options ---------------------------------------------------

    @staticmethod
    def deploy(
        workspace: Workspace,
        name: str,
        model_paths: list[str],
        image_config: ContainerImageConfig,
        deployment_config: AciServiceDeploymentConfiguration | None = None,
        deployment_target: Any = None,
        overwrite: bool = False,
    ) -> Webservice:
        """Option 1: deploy model files; the operator registers the Model and builds the Image."""
        validate_service_name(name)
        _check_target(deployment_target)
        if not model_paths:
            raise WebserviceException("model_paths: kaci needs at least one model file or folder")
        files = _files.merge([_files.collect(p) for p in model_paths])
        deploy = _deploy_config(deployment_config)
        config_spec = _config_spec(image_config, workspace)
        Webservice._refuse_existing(workspace, name, overwrite)
        uploaded = upload(workspace, files, f"{name}-files", {LABEL_WEBSERVICE: name})
        model_files = dict(uploaded.source)
        # Azure registered each path as a model named after its file (first 30 chars).
        model_files["modelName"] = model_paths[0].rstrip("/").split("/")[-1][:30]
        body = _manifests.webservice_body(
            name, deploy, model_files=model_files, image_config=config_spec
        )
        obj = workspace._kube.apply(PLURAL, body)
        if uploaded.configmap:
            workspace._kube.set_owner("ConfigMap", uploaded.configmap, obj)
        return Webservice(workspace, name, _obj=obj)

    @staticmethod
    def deploy_from_model(
        workspace: Workspace,
        name: str,
        models: list[Model],
        image_config: ContainerImageConfig,
        deployment_config: AciServiceDeploymentConfiguration | None = None,
        deployment_target: Any = None,
        overwrite: bool = False,
    ) -> Webservice:
        """Option 2: deploy registered models; the operator builds the Image."""
        validate_service_name(name)
        _check_target(deployment_target)
        deploy = _deploy_config(deployment_config)
        Webservice._refuse_existing(workspace, name, overwrite)
        body = _manifests.webservice_body(
            name,
            deploy,
            models=[(m.name, m.version) for m in models],
            image_config=_config_spec(image_config, workspace),
        )
        obj = workspace._kube.apply(PLURAL, body)
        return Webservice(workspace, name, _obj=obj)

    @staticmethod
    def deploy_from_image(
        workspace: Workspace,
        name: str,
        image: Image,
        deployment_config: AciServiceDeploymentConfiguration | None = None,
        deployment_target: Any = None,
        overwrite: bool = False,
    ) -> Webservice:
        """Option 3: deploy an Image that is already built."""
        validate_service_name(name)
        _check_target(deployment_target)
        deploy = _deploy_config(deployment_config)
        Webservice._refuse_existing(workspace, name, overwrite)
        body = _manifests.webservice_body(name, deploy, image=(image.name, image.version))
        obj = workspace._kube.apply(PLURAL, body)
        return Webservice(workspace, name, _obj=obj)

    @staticmethod
    def _refuse_existing(workspace: Workspace, name: str, overwrite: bool) -> None:
        if not overwrite and workspace._kube.get(PLURAL, name) is not None:
            raise WebserviceException(
                f"Service {name} already exists; pass overwrite=True to replace it, or delete it"
            )

    # -- state ----------------------------------------------------------------------------

    def update_deployment_state(self) -> None:
        obj = self.workspace._kube.get(PLURAL, self.name)
        if obj is None:
            raise ResourceNotFoundException(f"WebserviceNotFound: {self.name}")
        self._initialize(obj)

    def wait_for_deployment(
        self, show_output: bool = False, timeout_sec: float | None = None
    ) -> None:
        """Wait for Healthy; on failure raise with the reason and a hint to get_logs()."""
        display = Display(show_output)
        last: list[str] = []
        shown_log: list[str] = []
        kube = self.workspace._kube

        def on_poll(obj: Obj) -> None:
            nonlocal shown_log
            state = obj.get("status", {}).get("state") or "Transitioning"
            conds = describe_conditions(obj)
            line = f"{state}  {conds}".rstrip()
            if not last or last[-1] != line:
                display.line(line, style="bold" if not last or state not in last[-1] else None)
                last.append(line)
            display.status(f"{self.name}: {line}")
            image = self._building_image(obj)
            if image is not None:
                log = (image.get("status", {}).get("buildLog") or "").splitlines()
                for text in new_log_lines(shown_log, log):
                    display.line(f"  | {text}", style="dim")
                shown_log = log

        unschedulable_since: list[float] = []

        def verdict(obj: Obj) -> str:
            if obj.get("status", {}).get("state") != "Unschedulable":
                unschedulable_since.clear()
                return service_verdict(obj)
            if not unschedulable_since:
                unschedulable_since.append(time.monotonic())
            return service_verdict(obj, time.monotonic() - unschedulable_since[0])

        with display.running(f"webservice {self.name}"):
            obj = wait_for(
                lambda: kube.get(PLURAL, self.name),
                verdict,  # type: ignore[arg-type]
                timeout_sec,
                on_poll,
                f"webservice {self.name}",
            )
        self._initialize(obj)
        if self.state != "Healthy":
            err = self.error or {}
            raise FailedStateException(
                f"Service deployment polling reached non-successful terminal state, current "
                f"service state: {self.state}. Error: {err.get('code', 'Unknown')}: "
                f"{err.get('message', 'no reason given')}. More information can be found using "
                f"'.get_logs()' (or `kaci webservice logs {self.name}`)."
            )
        display.line(
            f'{self._webservice_type} service creation operation finished, operation "Succeeded"'
        )

    def _building_image(self, obj: Obj) -> Obj | None:
        """The Image the operator builds for this service, while it is being built."""
        spec = obj.get("spec", {})
        if "image" in spec:
            return None
        img = _manifests.condition(obj, api.IMAGE_READY)
        if img is not None and img.get("status") == "True":
            return None
        return self.workspace._kube.get(api.IMAGES, self.name)

    @staticmethod
    def list(
        workspace: Workspace,
        compute_type: str | None = None,
        image_name: str | None = None,
        image_id: str | None = None,
        model_name: str | None = None,
        model_id: str | None = None,
        tags: list[Any] | None = None,
        properties: list[Any] | None = None,
        image_digest: str | None = None,
    ) -> list[Webservice]:
        from kaci.azureml.core.model import _tag_match
        from kaci.azureml.core.webservice.aci import AciWebservice

        if compute_type not in (None, "ACI", "AKS"):
            return []
        out: list[Webservice] = []
        for obj in workspace._kube.list_objects(PLURAL):
            svc = AciWebservice(workspace, obj["metadata"]["name"], _obj=obj)
            if compute_type is not None and svc.compute_type != compute_type:
                continue
            if image_name is not None and (svc.image_id or "").split(":")[0] != image_name:
                continue
            if image_id is not None and svc.image_id != image_id:
                continue
            if model_name is not None and model_name not in [
                m.rpartition(":")[0] for m in svc.model_ids
            ]:
                continue
            if model_id is not None and model_id not in svc.model_ids:
                continue
            if image_digest is not None and not (svc.image_location or "").endswith(image_digest):
                continue
            if not _tag_match(svc.tags, tags) or properties:
                continue
            out.append(svc)
        return out

    def run(self, input_data: Any) -> Any:
        """POST input_data to /score from outside the cluster (see kaci.azureml._scoring)."""
        if not self.scoring_uri:
            raise WebserviceException(
                "Error attempting to call webservice, scoring_uri unavailable. This could be due "
                f"to a failed deployment, or the service is not ready yet. Current State: "
                f"{self.state} Errors: {self.error}"
            )
        body = _to_bytes(input_data)
        headers = {"Content-Type": "application/json"}
        kube = self.workspace._kube
        if self.access != "Cluster":
            resp = self._run_outside(body, headers)
            if resp.status == 200:
                return self._decode(resp.body)
            self._raise_bad_response(resp.status, resp.headers, resp.body)
        if self._token_auth():
            # Tokens, like keys, go through the port-forward: the API server's service
            # proxy drops the Authorization header.
            headers["Authorization"] = f"Bearer {self._current_token()}"
            resp = _scoring.via_port_forward(kube, self.name, body, headers)
            if resp.status == 200:
                return self._decode(resp.body)
            self._raise_bad_response(resp.status, resp.headers, resp.body)
        if self._primary_key is None:
            resp = _scoring.via_service_proxy(kube, self.name, body, headers)
            if resp.status == 401 and self.auth_enabled:
                self._primary_key = self.get_keys()[0]
        if self._primary_key is not None:
            headers["Authorization"] = f"Bearer {self._primary_key}"
            resp = _scoring.via_port_forward(kube, self.name, body, headers)
        if resp.status == 200:
            return self._decode(resp.body)
        self._raise_bad_response(resp.status, resp.headers, resp.body)
        return None  # unreachable: _raise_bad_response raises

    def _token_auth(self) -> bool:
        return bool(getattr(self, "token_auth_enabled", False))

    def _current_token(self) -> str:
        """A token, fetched again once past its refresh time (Azure's run() does so)."""
        now = datetime.now()
        if self._token is None or self._token[1] <= now:
            self._token = self.get_token()
        return self._token[0]

    def _run_outside(self, body: bytes, headers: dict[str, str]) -> _scoring.Response:
        """POST straight to the outside scoringUri (an Ingress, a LoadBalancer or a
        NodePort), with the key or token as the notebooks send it. Like Azure's run(),
        a 401 from a keyed service is answered once with the primary key."""
        assert self.scoring_uri is not None
        if self._token_auth():
            headers["Authorization"] = f"Bearer {self._current_token()}"
        elif self._primary_key is not None:
            headers["Authorization"] = f"Bearer {self._primary_key}"
        resp = _scoring.direct(self.scoring_uri, body, headers)
        if resp.status == 401 and self.auth_enabled and self._primary_key is None:
            self._primary_key = self.get_keys()[0]
            headers["Authorization"] = f"Bearer {self._primary_key}"
            resp = _scoring.direct(self.scoring_uri, body, headers)
        return resp

    def get_token(self) -> tuple[str, datetime]:
        raise WebserviceException(
            f"get_token: webservice {self.name} is not token-auth enabled: only AKS services "
            "deployed with token_auth_enabled=True take tokens"
        )

    def update(
        self,
        image: Image | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        auth_enabled: bool | None = None,
        ssl_enabled: bool | None = None,
        ssl_cert_pem_file: str | None = None,
        ssl_key_pem_file: str | None = None,
        ssl_cname: str | None = None,
        enable_app_insights: bool | None = None,
        models: ModelList | None = None,
        inference_config: ContainerImageConfig | None = None,
        *,
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        deployment_fields: Obj | None = None,
    ) -> None:
        """Change the service; the old Pods serve until the new ones are ready.
        `deployment_fields`: more deploymentConfig fields to set (None: remove it), as
        AksWebservice.update gives them."""
        if deployment_fields is None and all(
            v is None
            for v in (
                image,
                tags,
                properties,
                description,
                auth_enabled,
                ssl_enabled,
                ssl_cert_pem_file,
                ssl_key_pem_file,
                ssl_cname,
                enable_app_insights,
                models,
                inference_config,
                cpu_cores,
                memory_gb,
            )
        ):
            raise WebserviceException("No parameters provided to update.")
        if ssl_enabled or ssl_cert_pem_file or ssl_key_pem_file or ssl_cname:
            raise WebserviceException(
                "ssl: kaci services speak plain HTTP in the cluster; use an Ingress for TLS"
            )
        if properties is not None:
            self._warn("update: properties are not used (Webservice objects keep tags only)")
        if enable_app_insights is not None:
            self._warn("update: enable_app_insights is not used (scrape /metrics instead)")
        if image is not None and (models is not None or inference_config is not None):
            raise WebserviceException("update: give either image, or models/inference_config")
        obj = self.workspace._kube.get(PLURAL, self.name)
        if obj is None:
            raise WebserviceException(f"WebserviceNotFound: {self.name}")
        spec = dict(obj["spec"])
        deploy = dict(spec.get("deploymentConfig", {}))
        for key, value in (
            ("tags", tags),
            ("description", description),
            ("authEnabled", auth_enabled),
            ("cpuCores", cpu_cores),
            ("memoryGb", memory_gb),
        ):
            if value is not None:
                deploy[key] = (
                    {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else value
                )
        for key, value in (deployment_fields or {}).items():
            if value is None:
                deploy.pop(key, None)
            else:
                deploy[key] = value
        probe = _manifests.deployment_config_spec(
            deploy.get("cpuCores"), deploy.get("memoryGb"), None, None, None
        )
        if probe["cpuCores"] <= 0 or probe["memoryGb"] <= 0:
            raise WebserviceException("cpu_cores and memory_gb must be positive")
        spec["deploymentConfig"] = deploy
        if image is not None:
            for k in ("modelFiles", "models", "imageConfig"):
                spec.pop(k, None)
            spec["image"] = {"name": image.name, "version": image.version}
        elif models is not None or inference_config is not None:
            if models is not None:
                for k in ("modelFiles", "image"):
                    spec.pop(k, None)
                spec["models"] = _manifests.model_refs([(m.name, m.version) for m in models])
            if inference_config is not None:
                spec.pop("image", None)
                spec["imageConfig"] = _config_spec(inference_config, self.workspace)
            if "image" not in spec and "imageConfig" not in spec:
                raise WebserviceException(
                    "update: this service was deployed from an image; give inference_config too"
                )
        meta = obj.get("metadata", {})
        body = {
            "metadata": {
                "name": self.name,
                "labels": dict(meta.get("labels") or {}),
                "annotations": dict(meta.get("annotations") or {}),
            },
            "spec": spec,
        }
        new = self.workspace._kube.replace_spec(PLURAL, obj, body)
        self._primary_key = None
        self._initialize(new)

    # -- logs and keys ------------------------------------------------------------------

    def get_logs(self, num_lines: int = 5000, init: bool = False) -> str:
        """Logs of the service's newest Pod; init=True: of its previous (crashed) container."""
        pods = self.workspace._kube.list_pods(f"{LABEL_WEBSERVICE}={self.name}")
        if not pods:
            return ""
        pod = max(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))
        return self.workspace._kube.pod_logs(pod["metadata"]["name"], num_lines, previous=init)

    def get_keys(self) -> tuple[str, str]:
        if not self.auth_enabled:
            raise WebserviceException(f"webservice {self.name} has auth disabled: it has no keys")
        import base64

        secret = self.workspace._kube.read_secret(
            self.keys_secret or api.keys_secret_name(self.name)
        )
        data = secret.get("data") or {}
        try:
            return (
                base64.b64decode(data[api.PRIMARY_KEY]).decode(),
                base64.b64decode(data[api.SECONDARY_KEY]).decode(),
            )
        except KeyError as exc:
            raise WebserviceException(f"Invalid response key: {exc.args[0]}") from None

    def regen_key(
        self, key: str, set_key: str | None = None, timeout_sec: float = KEYS_TIMEOUT_S
    ) -> None:
        """Replace the Primary or Secondary key (a new random one, or set_key)."""
        if not key:
            raise WebserviceException(
                "Error, must specify which key with be regenerated: Primary, Secondary"
            )
        key = key.capitalize()
        if key not in ("Primary", "Secondary"):
            raise WebserviceException(
                f"Error, invalid value provided for key: {key}. "
                "Valid options are: Primary, Secondary"
            )
        if not self.auth_enabled:
            raise WebserviceException(f"webservice {self.name} has auth disabled: it has no keys")
        import base64

        value = set_key or secrets.token_urlsafe(32)
        field = api.PRIMARY_KEY if key == "Primary" else api.SECONDARY_KEY
        kube = self.workspace._kube
        kube.patch_secret(
            self.keys_secret or api.keys_secret_name(self.name),
            {"data": {field: base64.b64encode(value.encode()).decode()}},
        )
        self._primary_key = None
        # The operator reads the Secret on every reconcile and rolls the Pod when the
        # keys change (a keys-hash annotation on the Pod template); an annotation on
        # the Webservice makes it reconcile now. Wait, as Azure did, until the Pods
        # that serve use the new keys.
        stamp = datetime.now(UTC).isoformat()
        kube.patch(PLURAL, self.name, {"metadata": {"annotations": {KEYS_ROTATED: stamp}}})
        self._wait_keys_live(timeout_sec)

    def _wait_keys_live(self, timeout_sec: float) -> None:
        from kaci.api import keys_hash

        primary, secondary = self.get_keys()
        want = keys_hash({api.PRIMARY_KEY: primary, api.SECONDARY_KEY: secondary})
        kube = self.workspace._kube

        def pods_state() -> Obj:
            pods = kube.list_pods(f"{LABEL_WEBSERVICE}={self.name}")
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            return {"pods": pods, "live": live}

        def verdict(state: Obj) -> str:
            pods = state["pods"]
            if not pods:
                return "pending"
            for p in pods:
                annotations = p["metadata"].get("annotations") or {}
                ready = any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in p.get("status", {}).get("conditions") or []
                )
                if annotations.get(KEYS_HASH) != want or not ready:
                    return "pending"
            return "done"

        wait_for(pods_state, verdict, timeout_sec, lambda o: None, f"new keys of {self.name}")  # type: ignore[arg-type]

    def delete(self) -> None:
        """Delete the service and what it owns; fine if it is already gone.

        Background propagation, then a wait until its Pods are gone too (so their CPU
        and memory are free when this returns, as Azure's delete was final). Not
        foreground: while a foreground deletion waits on the children, a pass of the
        operator may apply the Deployment again, and the deletion would never end.
        """
        from kaci.azureml._wait import wait_for

        kube = self.workspace._kube
        if not kube.delete_and_wait(PLURAL, self.name, DELETE_TIMEOUT_S, "Background"):
            print(f"No service with name {self.name} found to delete.")
        selector = f"{LABEL_WEBSERVICE}={self.name}"
        wait_for(
            lambda: {"pods": kube.list_pods(selector)},
            lambda o: "pending" if o["pods"] else "done",
            DELETE_TIMEOUT_S,
            lambda o: None,
            f"the Pods of webservices/{self.name} to go",
        )
        self.state = "Deleting"

    def serialize(self) -> Obj:
        return {
            "name": self.name,
            "computeType": self.compute_type,
            "state": self.state,
            "scoringUri": self.scoring_uri,
            "swaggerUri": self.swagger_uri,
            "imageId": self.image_id,
            "imageLocation": self.image_location,
            "modelIds": self.model_ids,
            "cpuCores": self.cpu_cores,
            "memoryGb": self.memory_gb,
            "authEnabled": self.auth_enabled,
            "tags": self.tags,
            "description": self.description,
            "error": self.error,
            "createdTime": self.created_time.isoformat() if self.created_time else None,
        }

    def _raise_bad_response(self, status: int, headers: dict[str, str], body: bytes) -> None:
        text = body[:2000].decode(errors="replace")
        raise WebserviceException(
            "Received bad response from service. More information can be found by calling "
            f"`.get_logs()` on the webservice object. Response Code: {status} Content: {text}",
            status_code=status,
        )

    def _warn(self, msg: str) -> None:
        warnings.warn(msg, KaciCompatibilityWarning, stacklevel=3)

    @staticmethod
    def _decode(body: bytes) -> Any:
        try:
            return json.loads(body)
        except ValueError:
            return body.decode(errors="replace")


def _specialize(svc: Webservice, obj: Obj) -> None:
    """Webservice(ws, name) is an AksWebservice when it was deployed with an AKS config,
    or takes tokens (only AKS services do, in Azure)."""
    from kaci.azureml.core.webservice.aci import AciWebservice
    from kaci.azureml.core.webservice.aks import AksWebservice

    annotations = obj.get("metadata", {}).get("annotations") or {}
    token_auth = bool(
        ((obj.get("spec") or {}).get("deploymentConfig") or {}).get("tokenAuthEnabled")
    )
    aks = annotations.get(api.COMPUTE_TYPE_ANNOTATION) == "AKS" or token_auth
    if type(svc) is AciWebservice and aks:
        svc.__class__ = AksWebservice  # type: ignore[assignment]


def _config_spec(config: Any, workspace: Workspace) -> Obj:
    """The build spec of an InferenceConfig (which may upload a source_directory) or of a
    ContainerImage configuration."""
    spec_for = getattr(config, "_spec_for", None)
    if spec_for is not None:
        return dict(spec_for(workspace))
    return dict(config._spec())


def _to_bytes(input_data: Any) -> bytes:
    """Azure accepted a str, bytes, or a JSON-able object; send bytes."""
    if isinstance(input_data, bytes):
        return input_data
    if isinstance(input_data, str):
        return input_data.encode()
    return json.dumps(input_data).encode()
