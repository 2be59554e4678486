"""The 2019+ SDK surface as pure code: Environment, CondaDependencies, InferenceConfig,
deployment configurations, Model.deploy's dispatch, compute handles, workspace values.

A FakeKube stands in for the API server: it records what the SDK writes, so each
test checks the object bodies Azure's calls turn into.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from kaci import api
from kaci.azureml.core import Environment, Workspace
from kaci.azureml.core.compute import AksCompute, ComputeTarget
from kaci.azureml.core.conda_dependencies import CondaDependencies
from kaci.azureml.core.environment import CURATED, DEFAULT_CPU_IMAGE
from kaci.azureml.core.model import InferenceConfig, Model
from kaci.azureml.core.resource_configuration import ResourceConfiguration
from kaci.azureml.core.runconfig import CondaDependencies as RunconfigCondaDependencies
from kaci.azureml.core.webservice import (
    AciWebservice,
    AksWebservice,
    LocalWebservice,
    Webservice,
)
from kaci.azureml.exceptions import (
    ComputeTargetException,
    KaciCompatibilityWarning,
    UserErrorException,
    WebserviceException,
)

Obj = dict[str, Any]


class FakeKube:
    """Objects by (plural, name) and ConfigMaps by name; label selectors `k` or `k=v`."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Obj] = {}
        self.configmaps: dict[str, Obj] = {}
        self.deleted: list[tuple[str, str, str]] = []

    def get(self, plural: str, name: str) -> Obj | None:
        return self.objects.get((plural, name))

    def list_objects(self, plural: str, label_selector: str | None = None) -> list[Obj]:
        return [o for (p, _), o in sorted(self.objects.items()) if p == plural]

    def apply(self, plural: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        old = self.objects.get((plural, name))
        obj = json.loads(json.dumps(body))
        obj["metadata"]["uid"] = old["metadata"]["uid"] if old else f"uid-{name}"
        if old:
            merged = {
                **old["metadata"].get("annotations", {}),
                **obj["metadata"].get("annotations", {}),
            }
            obj["metadata"]["annotations"] = merged
        self.objects[(plural, name)] = obj
        return obj

    def patch(self, plural: str, name: str, patch: Obj) -> Obj:
        obj = self.objects[(plural, name)]
        annotations = patch.get("metadata", {}).get("annotations", {})
        obj["metadata"].setdefault("annotations", {}).update(annotations)
        return obj

    def replace_spec(self, plural: str, current: Obj, body: Obj) -> Obj:
        obj = json.loads(json.dumps(current))
        obj["spec"] = json.loads(json.dumps(body["spec"]))
        obj["metadata"]["annotations"] = dict(body["metadata"].get("annotations") or {})
        self.objects[(plural, obj["metadata"]["name"])] = obj
        return obj

    def read_secret(self, name: str) -> Obj:
        return self.objects[("secrets", name)]

    def delete_and_wait(
        self, plural: str, name: str, timeout_sec: float = 180.0, propagation: str = "Foreground"
    ) -> bool:
        self.deleted.append((plural, name, propagation))
        return self.objects.pop((plural, name), None) is not None

    def list_pods(self, label_selector: str) -> list[Obj]:
        return []

    def create_or_replace_configmap(self, body: Obj) -> Obj:
        self.configmaps[body["metadata"]["name"]] = json.loads(json.dumps(body))
        return body

    def list_configmaps(self, label_selector: str) -> list[Obj]:
        key, _, value = label_selector.partition("=")
        out = []
        for cm in self.configmaps.values():
            labels = cm["metadata"].get("labels", {})
            if key in labels and (not value or labels[key] == value):
                out.append(cm)
        return out


@pytest.fixture
def ws() -> Workspace:
    w = Workspace(context="kaci-local", namespace="team-a")
    w.__dict__["_kube"] = FakeKube()
    return w


def kube(w: Workspace) -> FakeKube:
    k = w._kube
    assert isinstance(k, FakeKube)
    return k


def a_model(w: Workspace, name: str = "sklearn_mnist", framework: str | None = None) -> Model:
    spec: Obj = {"modelName": name, "source": {"configMap": {"name": "x"}}}
    if framework:
        spec["framework"] = framework
        spec["properties"] = {"frameworkVersion": "1.9.1"}
    obj = {
        "metadata": {"name": name.replace("_", "-")},
        "spec": spec,
        "status": {"version": 1, "versions": [{"version": 1, "location": "reg/m@sha256:a"}]},
    }
    kube(w).objects[("models", obj["metadata"]["name"])] = obj
    return Model(w, _obj=obj)


@pytest.fixture
def score(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "score.py").write_text("def init():\n    pass\n\ndef run(d):\n    return d\n")
    return tmp_path / "score.py"


# -- workspace -------------------------------------------------------------------------


def test_workspace_azure_attributes_are_documented_values(ws: Workspace) -> None:
    assert ws.subscription_id == "kaci-local"
    assert ws.resource_group == "team-a"
    assert ws.location == "kubernetes"
    assert ws.get_details()["resourceGroup"] == "team-a"


def test_from_kaci_import_azureml_gives_azureml_core_version() -> None:
    from kaci import azureml

    assert azureml.core.VERSION == "1.57.0"
    assert azureml.core.Model is Model


def test_workspace_lists(ws: Workspace) -> None:
    a_model(ws)
    assert list(ws.models) == ["sklearn_mnist"]
    assert ws.webservices == {}
    assert list(ws.compute_targets) == ["kaci-local"]
    assert isinstance(ws.compute_targets["kaci-local"], AksCompute)


# -- CondaDependencies -----------------------------------------------------------------


def test_conda_dependencies_default_document_is_azures() -> None:
    doc = yaml.safe_load(CondaDependencies().serialize_to_string())
    assert doc == {
        "name": "project_environment",
        "dependencies": ["python=3.8.13", {"pip": ["azureml-defaults"]}],
        "channels": ["anaconda", "conda-forge"],
    }


def test_conda_dependencies_create_and_add() -> None:
    cd = CondaDependencies.create(pip_packages=["scikit-learn==1.5.1"], conda_packages=["numpy"])
    cd.add_channel("pytorch")
    cd.add_channel("pytorch")
    cd.add_pip_package("scikit-learn")  # replaces the pinned entry (Azure's rule)
    cd.add_conda_package("python=3.11")  # sets the python version
    assert cd.pip_packages == ["scikit-learn"]
    assert cd.conda_packages == ["python=3.11", "numpy"]
    assert cd.conda_channels == ["anaconda", "conda-forge", "pytorch"]
    assert cd.get_python_version() == "3.11"
    assert CondaDependencies.create().pip_packages == ["azureml-defaults"]
    assert CondaDependencies.create().get_python_version() == "3.9.12"
    with pytest.raises(UserErrorException):
        cd.add_pip_package("--index-url x")
    with pytest.raises(UserErrorException):
        cd.remove_conda_package("python=3.11")
    assert RunconfigCondaDependencies is CondaDependencies


def test_conda_dependencies_save_and_read_back(tmp_path: Path) -> None:
    cd = CondaDependencies.create(pip_packages=["joblib"])
    path = cd.save(str(tmp_path / "myenv.yml"))
    assert CondaDependencies(path).pip_packages == ["joblib"]
    with pytest.raises(UserErrorException):
        cd.save(str(tmp_path))
    with pytest.raises(UserErrorException):
        cd.save(str(tmp_path / "missing" / "x.yml"))
    rel = cd.save_to_file(str(tmp_path), conda_file_path="env.yml")
    assert rel == "env.yml"
    assert (tmp_path / "env.yml").read_text() == cd.serialize_to_string()
    assert cd.save_to_file(str(tmp_path)) == ".azureml/conda_dependencies.yml"


def test_conda_file_goes_through_the_operators_translation() -> None:
    from kaci.render import conda

    cd = CondaDependencies.create(
        pip_packages=["azureml-defaults", "joblib"], conda_packages=["numpy=2.1"]
    )
    # python and azureml-defaults are dropped; the conda pin becomes a pip pin
    assert conda.pip_requirements(cd.serialize_to_string()) == ["numpy==2.1", "joblib"]


# -- Environment -------------------------------------------------------------------------


def test_environment_defaults_are_azures() -> None:
    env = Environment("myenv")
    assert env.version is None
    assert env.python.user_managed_dependencies is False
    assert env.python.interpreter_path == "python"
    assert env.python.conda_dependencies is not None
    assert env.python.conda_dependencies.pip_packages == ["azureml-defaults"]
    assert env.docker.base_image == DEFAULT_CPU_IMAGE
    assert env.docker.base_dockerfile is None
    assert env.docker.shm_size == "2g"
    assert env.environment_variables == {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"}
    assert env.inferencing_stack_version is None
    with pytest.raises(TypeError):
        Environment(3)  # type: ignore[arg-type]


def test_environment_image_spec(tmp_path: Path) -> None:
    env = Environment("e")
    env.environment_variables = {"A": "1"}
    spec = env._image_spec()
    # Azure's default base image (needs conda and the internet) -> the operator's default
    assert "baseImage" not in spec
    assert spec["environmentVariables"] == {"A": "1"}
    assert "azureml-defaults" in spec["condaFile"]["inline"]
    env.docker.base_image = "registry.local/py:3.11"
    env.python.user_managed_dependencies = True
    spec = env._image_spec()
    assert spec["baseImage"] == "registry.local/py:3.11"
    assert "condaFile" not in spec
    env.docker.base_image = "nvcr.io/nvidia/cuda:12-runtime"
    with pytest.raises(UserErrorException, match="GPU"):
        env._image_spec()
    env.docker.base_dockerfile = "FROM x"
    assert env.docker.base_image is None
    with pytest.raises(UserErrorException, match="base_dockerfile"):
        env._image_spec()


def test_environment_from_files(tmp_path: Path) -> None:
    (tmp_path / "req.txt").write_text("# comment\nscikit-learn\njoblib==1.6\n")
    env = Environment.from_pip_requirements("p", str(tmp_path / "req.txt"))
    assert env.python.conda_dependencies is not None
    assert env.python.conda_dependencies.pip_packages == ["scikit-learn", "joblib==1.6"]
    assert "pip" in env.python.conda_dependencies.conda_packages
    CondaDependencies.create(pip_packages=["numpy"]).save(str(tmp_path / "env.yml"))
    env2 = Environment.from_conda_specification("c", str(tmp_path / "env.yml"))
    assert env2.python.conda_dependencies is not None
    assert env2.python.conda_dependencies.pip_packages == ["numpy"]


def test_environment_register_get_list_versions(ws: Workspace) -> None:
    env = Environment("my-env")
    first = env.register(ws)
    assert first.version == "1"
    assert env.register(ws).version == "1"  # unchanged definition: same version
    env.environment_variables["B"] = "2"
    assert env.register(ws).version == "2"
    assert Environment.get(ws, "my-env").version == "2"
    assert Environment.get(ws, "my-env", version="1").environment_variables == {
        "EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"
    }
    with pytest.raises(UserErrorException, match="no version 7"):
        Environment.get(ws, "my-env", version="7")
    with pytest.raises(UserErrorException, match="No environment named"):
        Environment.get(ws, "other")
    listed = Environment.list(ws)
    assert listed["my-env"].version == "2"
    assert "AzureML-sklearn-1.5" in listed
    cms = kube(ws).configmaps
    assert len(cms) == 2
    cm = next(
        c for c in cms.values() if c["metadata"]["labels"][api.ENVIRONMENT_VERSION_LABEL] == "2"
    )
    assert cm["immutable"] is True
    assert cm["metadata"]["annotations"][api.ENVIRONMENT_NAME_ANNOTATION] == "my-env"
    clone = listed["my-env"].clone("copy")
    assert (clone.name, clone.version) == ("copy", None)


def test_curated_environments(ws: Workspace) -> None:
    env = Environment.get(ws, "AzureML-sklearn-1.5")
    assert env.python.conda_dependencies is not None
    assert "scikit-learn>=1.5" in env.python.conda_dependencies.pip_packages
    assert env._image_spec()["condaFile"]
    with pytest.raises(UserErrorException, match="GPU-only"):
        Environment.get(ws, "AzureML-PyTorch-1.6-GPU")
    with pytest.raises(UserErrorException, match="not in kaci's table"):
        Environment.get(ws, "AzureML-Unheard-Of")
    with pytest.raises(UserErrorException, match="reserved"):
        env.register(ws)
    assert all(not n.lower().endswith("gpu") for n in CURATED)


def test_environment_save_and_load_directory(tmp_path: Path) -> None:
    env = Environment("saved")
    env.environment_variables = {"X": "y"}
    env.save_to_directory(str(tmp_path / "env"))
    assert (tmp_path / "env" / "conda_dependencies.yml").is_file()
    with pytest.raises(UserErrorException):
        env.save_to_directory(str(tmp_path / "env"))
    env.save_to_directory(str(tmp_path / "env"), overwrite=True)
    back = Environment.load_from_directory(str(tmp_path / "env"))
    assert back._serialize() == env._serialize()


# -- InferenceConfig -----------------------------------------------------------------------


def test_inference_config_checks(score: Path) -> None:
    with pytest.raises(WebserviceException, match="entry_script"):
        InferenceConfig(entry_script="missing.py")
    with pytest.raises(WebserviceException, match="along with an environment"):
        InferenceConfig("score.py", conda_file="x.yml", environment=Environment("e"))
    with pytest.raises(WebserviceException, match="CPU-only"):
        InferenceConfig("score.py", enable_gpu=True)
    with pytest.raises(WebserviceException, match="not supported"):
        InferenceConfig("score.py", runtime="spark-py")
    (score.parent / "bad.py").write_text("def run(:\n")
    with pytest.raises(UserErrorException, match="parse"):
        InferenceConfig("bad.py")
    (score.parent / "notpy.txt").write_text("x")
    with pytest.raises(WebserviceException, match="Python drivers"):
        InferenceConfig("notpy.txt")


def test_inference_config_spec_with_environment(score: Path) -> None:
    env = Environment("e")
    env.environment_variables = {"GREETING": "hi"}
    spec = InferenceConfig(entry_script="score.py", environment=env)._spec_for(None)
    assert spec["executionScript"]["inline"] == score.read_text()
    assert spec["environmentVariables"] == {"GREETING": "hi"}
    assert spec["runtime"] == "python"


def test_inference_config_relative_to_source_directory(score: Path) -> None:
    src = score.parent / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "score.py").write_text("def init(): pass\ndef run(d): return d\n")
    (src / "env.yml").write_text("dependencies: [numpy]\n")
    cfg = InferenceConfig(entry_script="sub/score.py", conda_file="env.yml", source_directory="src")
    assert cfg.source_directory == str(src.resolve())
    with pytest.raises(WebserviceException, match="workspace"):
        cfg._spec_for(None)


def test_source_directory_files_skip_caches(tmp_path: Path) -> None:
    from kaci.azureml.core._inference import source_files

    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.pyc").write_bytes(b"x")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("x = 1\n")
    (tmp_path / "score.py").write_text("")
    assert [f.name for f in source_files(str(tmp_path))] == ["pkg/m.py", "score.py"]


# -- deployment configurations -----------------------------------------------------------------


def test_aks_defaults_autoscale_unless_num_replicas() -> None:
    cfg = AksWebservice.deploy_configuration()
    r = cfg.resolved()
    assert r["autoscale_enabled"] is True
    assert (r["autoscale_min_replicas"], r["autoscale_max_replicas"]) == (1, 10)
    assert (r["autoscale_target_utilization"], r["autoscale_refresh_seconds"]) == (70, 1)
    assert (r["cpu_cores"], r["memory_gb"], r["auth_enabled"]) == (0.1, 0.5, True)
    assert (r["scoring_timeout_ms"], r["replica_max_concurrent_requests"]) == (60000, 1)
    assert (r["period_seconds"], r["initial_delay_seconds"], r["timeout_seconds"]) == (10, 310, 2)
    assert (r["success_threshold"], r["failure_threshold"]) == (1, 3)
    fixed = AksWebservice.deploy_configuration(num_replicas=3).resolved()
    assert fixed["autoscale_enabled"] is False
    assert fixed["num_replicas"] == 3
    assert "autoscale_min_replicas" not in fixed
    assert cfg._spec()["authEnabled"] is True
    off = AksWebservice.deploy_configuration(auth_enabled=False)
    assert off._spec().get("authEnabled") is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"autoscale_enabled": True, "num_replicas": 2}, "autoscale enabled and num_replicas"),
        ({"autoscale_enabled": False}, "autoscale disabled but num_replicas not provided"),
        (
            {"autoscale_min_replicas": 5, "autoscale_max_replicas": 2, "autoscale_enabled": True},
            "cannot be greater",
        ),
        ({"num_replicas": 1, "autoscale_max_replicas": 2}, "without enabling autoscaling"),
        ({"cpu_cores": 0}, "cpu_cores must be greater than zero"),
        ({"cpu_cores": 1, "cpu_cores_limit": 0.5}, "cpu_cores_limit must be greater"),
        ({"token_auth_enabled": True, "auth_enabled": True}, "cannot both be true"),
        ({"gpu_cores": 1}, "CPU-only"),
        ({"namespace": "other"}, "Workspace"),
        ({"primary_key": "k"}, "regen_key"),
    ],
)
def test_aks_config_refusals(kwargs: Obj, message: str) -> None:
    with pytest.raises(WebserviceException, match=message):
        AksWebservice.deploy_configuration(**kwargs)


def test_aks_token_auth_turns_key_auth_off() -> None:
    cfg = AksWebservice.deploy_configuration(token_auth_enabled=True, auth_enabled=False)
    spec = cfg._spec()
    assert (spec["authEnabled"], spec["tokenAuthEnabled"]) == (False, True)
    # Azure's key auth is on unless turned off; asking for tokens turns it off.
    assert (
        AksWebservice.deploy_configuration(token_auth_enabled=True)._spec()["authEnabled"] is False
    )


def test_aks_config_writes_the_real_spec_fields() -> None:
    spec = AksWebservice.deploy_configuration(
        autoscale_enabled=True,
        autoscale_max_replicas=4,
        autoscale_target_utilization=50,
        cpu_cores=0.5,
        cpu_cores_limit=1,
        memory_gb_limit=2,
        scoring_timeout_ms=5000,
        replica_max_concurrent_requests=2,
        max_request_wait_time=700,
        period_seconds=5,
        failure_threshold=4,
    )._spec()
    assert spec["autoscale"] == {"enabled": True, "maxReplicas": 4, "targetUtilization": 50}
    assert "replicas" not in spec
    assert (spec["cpuCores"], spec["cpuCoresLimit"], spec["memoryGbLimit"]) == (0.5, 1, 2)
    assert (spec["scoringTimeoutMs"], spec["replicaMaxConcurrentRequests"]) == (5000, 2)
    assert spec["maxRequestWaitTimeMs"] == 700
    assert spec["livenessProbe"] == {"periodSeconds": 5, "failureThreshold": 4}
    assert "tokenAuthEnabled" not in spec
    # No num_replicas: Azure's default is autoscale on; num_replicas: a fixed count.
    assert AksWebservice.deploy_configuration()._spec()["autoscale"] == {"enabled": True}
    fixed = AksWebservice.deploy_configuration(num_replicas=3)._spec()
    assert (fixed["replicas"], "autoscale" in fixed) == (3, False)


def test_local_config_port_checked() -> None:
    assert LocalWebservice.deploy_configuration().port is None
    assert LocalWebservice.deploy_configuration(port=8890).port == 8890
    with pytest.raises(WebserviceException):
        LocalWebservice.deploy_configuration(port=70000)


def test_resource_configuration() -> None:
    rc = ResourceConfiguration(cpu=0.5, memory_in_gb=1)
    assert rc.serialize() == {"cpu": 0.5, "memoryInGB": 1, "gpu": None}
    with pytest.raises(WebserviceException, match="CPU-only"):
        ResourceConfiguration(gpu=1)


# -- Model.deploy ------------------------------------------------------------------------------


def test_model_deploy_positional_to_aci(ws: Workspace, score: Path) -> None:
    model = a_model(ws)
    env = Environment("e")
    cfg = InferenceConfig("score.py", environment=env)
    svc = Model.deploy(ws, "my-svc", [model], cfg, AciWebservice.deploy_configuration(cpu_cores=1))
    assert type(svc) is AciWebservice
    body = kube(ws).objects[("webservices", "my-svc")]
    assert body["spec"]["models"] == [{"name": "sklearn_mnist", "version": 1}]
    assert body["spec"]["deploymentConfig"]["cpuCores"] == 1.0
    assert body["spec"]["imageConfig"]["environmentVariables"] == {
        "EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"
    }
    assert body["metadata"]["annotations"][api.COMPUTE_TYPE_ANNOTATION] == "ACI"
    with pytest.raises(WebserviceException, match="already exists"):
        Model.deploy(ws, "my-svc", [model], cfg)
    again = Model.deploy(ws, "my-svc", [model], cfg, None, None, True)
    assert again._obj["metadata"]["uid"] == "uid-my-svc"  # the same object, given a new spec
    assert again.cpu_cores == 0.1  # the default config this time


def test_model_deploy_aks_annotation_and_class(ws: Workspace, score: Path) -> None:
    model = a_model(ws)
    target = ComputeTarget(ws, "my-aks")
    # Azure too wants autoscale_enabled=True spelt out before autoscale_* settings.
    cfg = AksWebservice.deploy_configuration(autoscale_enabled=True, autoscale_max_replicas=4)
    svc = Model.deploy(ws, "aks-svc", [model], InferenceConfig("score.py"), cfg, target)
    assert type(svc) is AksWebservice
    assert (svc.autoscale_enabled, svc.autoscale_max_replicas) == (True, 4)
    assert svc.auth_enabled is True
    assert type(Webservice(ws, "aks-svc")) is AksWebservice
    body = kube(ws).objects[("webservices", "aks-svc")]
    assert body["spec"]["deploymentConfig"]["autoscale"] == {"enabled": True, "maxReplicas": 4}
    assert set(body["metadata"]["annotations"]) == {api.COMPUTE_TYPE_ANNOTATION}
    with pytest.raises(WebserviceException, match="token_auth_enabled=True"):
        svc.get_token()
    assert [s.name for s in Webservice.list(ws, compute_type="AKS")] == ["aks-svc"]
    assert Webservice.list(ws, compute_type="ACI") == []
    with pytest.raises(WebserviceException, match="deployment_target"):
        Model.deploy(ws, "x-svc", [model], InferenceConfig("score.py"), cfg, "some-target")


def test_model_deploy_empty_models(ws: Workspace, score: Path) -> None:
    Model.deploy(ws, "no-models", [], InferenceConfig("score.py"))
    assert kube(ws).objects[("webservices", "no-models")]["spec"]["models"] == []


def test_no_code_deploy(ws: Workspace) -> None:
    model = a_model(ws, "mnist-nocode", framework=Model.Framework.SCIKITLEARN)
    Model.deploy(ws, "nocode", [model])
    spec = kube(ws).objects[("webservices", "nocode")]["spec"]["imageConfig"]
    assert "joblib.load" in spec["executionScript"]["inline"]
    assert "scikit-learn==1.9.1" in spec["condaFile"]["inline"]
    onnx = a_model(ws, "onnx-model", framework=Model.Framework.ONNX)
    Model.deploy(ws, "nocode-onnx", [onnx])
    spec = kube(ws).objects[("webservices", "nocode-onnx")]["spec"]["imageConfig"]
    assert "onnxruntime.InferenceSession" in spec["executionScript"]["inline"]
    assert "onnxruntime" in spec["condaFile"]["inline"]
    tf = a_model(ws, "tf-model", framework=Model.Framework.TENSORFLOW)
    with pytest.raises(WebserviceException, match="ScikitLearn and Onnx models, not TensorFlow"):
        Model.deploy(ws, "nocode-tf", [tf])
    with pytest.raises(WebserviceException, match="one model this way"):
        Model.deploy(ws, "nocode-two", [model, onnx])
    with pytest.raises(WebserviceException, match="needs a model"):
        Model.deploy(ws, "nocode-none", [])


def test_model_package_makes_an_image(ws: Workspace, score: Path) -> None:
    model = a_model(ws)
    image = Model.package(ws, [model], InferenceConfig("score.py"), image_name="pkg-mnist")
    assert image.name == "pkg-mnist"
    assert kube(ws).objects[("images", "pkg-mnist")]["spec"]["models"] == [
        {"name": "sklearn_mnist", "version": 1}
    ]
    with pytest.raises(WebserviceException, match="generate_dockerfile"):
        Model.package(ws, [model], InferenceConfig("score.py"), generate_dockerfile=True)
    with pytest.raises(WebserviceException, match="retired"):
        Model.profile(ws, "p", [model])


def test_update_keeps_the_aks_annotation(ws: Workspace, score: Path) -> None:
    model = a_model(ws)
    Model.deploy(
        ws, "aks-up", [model], InferenceConfig("score.py"), AksWebservice.deploy_configuration()
    )
    svc = Webservice(ws, "aks-up")
    assert svc.compute_type == "AKS"


# -- compute targets ---------------------------------------------------------------------------


def test_compute_target_is_the_cluster(ws: Workspace) -> None:
    try:
        target = ComputeTarget(workspace=ws, name="any-name")
        branch = "found"
    except ComputeTargetException:
        branch = "create"
    assert branch == "found"
    assert isinstance(target, AksCompute)
    assert (target.provisioning_state, target.get_status(), target.type) == (
        "Succeeded",
        "Succeeded",
        "AKS",
    )
    target.wait_for_completion(show_output=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KaciCompatibilityWarning)
        made = ComputeTarget.create(ws, "new", AksCompute.provisioning_configuration(agent_count=3))
    assert isinstance(made, AksCompute)
    with pytest.raises(ComputeTargetException, match="does not delete"):
        target.delete()
    with pytest.raises(ComputeTargetException, match="detached"):
        target.detach()


# -- LocalWebservice (a real kaci-runtime subprocess on 127.0.0.1) --------------------------


def test_local_webservice_run_reload_update_delete(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "helper.py").write_text("def shout(x):\n    return str(x).upper()\n")
    (src / "score.py").write_text(
        "import json, os\nfrom helper import shout\n\ndef init():\n    pass\n\n"
        "def run(raw):\n    return {'v': 1, 'x': shout(json.loads(raw)['x']), "
        "'env': os.environ.get('GREETING')}\n"
    )
    env = Environment("local-env")
    env.environment_variables = {"GREETING": "hi"}
    cfg = InferenceConfig(entry_script="score.py", source_directory=str(src), environment=env)
    svc = Model.deploy(ws, "local-svc", [], cfg, LocalWebservice.deploy_configuration())
    try:
        assert isinstance(svc, LocalWebservice)
        assert svc.scoring_uri == f"http://localhost:{svc.port}/score"
        assert svc.run({"x": "abc"}) == {"v": 1, "x": "ABC", "env": "hi"}
        assert LocalWebservice(ws, "local-svc").port == svc.port
        (src / "score.py").write_text((src / "score.py").read_text().replace("'v': 1", "'v': 2"))
        svc.reload()
        assert svc.run({"x": "a"})["v"] == 2
        (tmp_path / "other.py").write_text(
            "def init():\n    pass\n\ndef run(raw):\n    return 'other'\n"
        )
        svc.update(inference_config=InferenceConfig(entry_script=str(tmp_path / "other.py")))
        assert svc.run("{}") == "other"
        assert svc.get_logs()
        with pytest.raises(WebserviceException, match="No parameters"):
            svc.update()
        with pytest.raises(WebserviceException, match="no auth"):
            svc.get_token()
    finally:
        svc.delete()
    assert svc.state == "Deleted"
    with pytest.raises(WebserviceException, match="no local service"):
        LocalWebservice(ws, "local-svc")


def test_local_webservice_failing_init_says_why(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "score.py").write_text(
        "def init():\n    raise RuntimeError('no model here')\n\ndef run(raw):\n    return raw\n"
    )
    cfg = InferenceConfig(entry_script=str(tmp_path / "score.py"))
    with pytest.raises(WebserviceException, match="no model here"):
        Model.deploy(ws, "bad-local", [], cfg, LocalWebservice.deploy_configuration())


def test_azure_base_images_become_the_operators_default() -> None:
    env = Environment("old")
    env.docker.base_image = "mcr.microsoft.com/azureml/base:intelmpi2018.3-ubuntu16.04"
    with pytest.warns(KaciCompatibilityWarning, match="Azure ML base image"):
        spec = env._image_spec()
    assert "baseImage" not in spec


def test_aks_update_writes_the_spec_fields(ws: Workspace, score: Path) -> None:
    model = a_model(ws)
    cfg = AksWebservice.deploy_configuration()
    svc = Model.deploy(ws, "aks-scale", [model], InferenceConfig("score.py"), cfg)
    assert isinstance(svc, AksWebservice)
    svc.update(num_replicas=3)
    assert (svc.autoscale_enabled, svc.num_replicas, svc.autoscale_max_replicas) == (False, 3, None)
    with pytest.raises(WebserviceException, match="autoscale enabled and num_replicas"):
        svc.update(autoscale_enabled=True, num_replicas=2)
    dc = kube(ws).objects[("webservices", "aks-scale")]["spec"]["deploymentConfig"]
    assert (dc["replicas"], "autoscale" in dc) == (3, False)
    svc.update(autoscale_enabled=True, autoscale_max_replicas=5)
    assert (svc.autoscale_enabled, svc.num_replicas, svc.autoscale_max_replicas) == (True, None, 5)
    assert svc.autoscale_min_replicas == 1  # Azure's default again
    dc = kube(ws).objects[("webservices", "aks-scale")]["spec"]["deploymentConfig"]
    assert (dc["autoscale"], "replicas" in dc) == ({"enabled": True, "maxReplicas": 5}, False)
    svc.update(scoring_timeout_ms=1500, cpu_cores_limit=2, period_seconds=3)
    dc = kube(ws).objects[("webservices", "aks-scale")]["spec"]["deploymentConfig"]
    assert (dc["scoringTimeoutMs"], dc["cpuCoresLimit"], dc["livenessProbe"]) == (
        1500,
        2,
        {"periodSeconds": 3},
    )
    assert dc["autoscale"]["maxReplicas"] == 5  # kept
    assert svc.scoring_timeout_ms == 1500
    # Key auth is on (Azure's default): tokens need it turned off, in the same call.
    with pytest.raises(WebserviceException, match="without disabling key auth"):
        svc.update(token_auth_enabled=True)
    svc.update(token_auth_enabled=True, auth_enabled=False)
    dc = kube(ws).objects[("webservices", "aks-scale")]["spec"]["deploymentConfig"]
    assert (dc["tokenAuthEnabled"], dc["authEnabled"]) == (True, False)
    with pytest.raises(WebserviceException, match="without disabling key auth"):
        svc.update(auth_enabled=True)
    with pytest.raises(WebserviceException, match="cannot be greater"):
        svc.update(autoscale_min_replicas=6)
    with pytest.raises(WebserviceException, match="No parameters"):
        svc.update()


def test_webservice_delete_is_background_then_waits_for_pods(ws: Workspace, score: Path) -> None:
    # Foreground deletion can race the operator re-applying the Deployment; background
    # deletion removes the Webservice at once and delete() then waits for its Pods.
    svc = Model.deploy(ws, "to-delete", [], InferenceConfig("score.py"))
    svc.delete()
    assert kube(ws).deleted == [("webservices", "to-delete", "Background")]
    svc.delete()  # already gone: fine, like Azure


def test_get_token_returns_a_token_for_this_service_and_its_refresh_time(
    ws: Workspace, score: Path
) -> None:
    import base64
    import time
    from datetime import datetime

    from kaci import tokens

    cfg = AksWebservice.deploy_configuration(token_auth_enabled=True, num_replicas=1)
    svc = Model.deploy(ws, "tok-svc", [], InferenceConfig("score.py"), cfg)
    assert isinstance(svc, AksWebservice)
    kube(ws).objects[("secrets", "tok-svc-keys")] = {"data": {}}
    with pytest.raises(WebserviceException, match="no token signing key yet"):
        svc.get_token()
    key = bytes(range(32))
    text = base64.urlsafe_b64encode(key).rstrip(b"=")  # as the operator stores it
    kube(ws).objects[("secrets", "tok-svc-keys")] = {
        "data": {api.TOKEN_SIGNING_KEY: base64.b64encode(text).decode()}
    }
    before = time.time()
    token, refresh_by = svc.get_token()
    header, payload, signature = token.split(".")

    def unb64(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    assert json.loads(unb64(header)) == {"alg": "HS256", "typ": "JWT"}
    claims = json.loads(unb64(payload))
    assert (claims["iss"], claims["aud"]) == ("kaci", "team-a/tok-svc")
    assert claims["exp"] - claims["iat"] == 3600
    assert int(before) <= claims["iat"] <= time.time()
    # Signed with the Secret's key for this audience (kaci.tokens decides how).
    assert token == tokens.mint(key, "team-a/tok-svc", claims["iat"], 3600)
    assert token != tokens.mint(key[::-1], "team-a/tok-svc", claims["iat"], 3600)
    assert signature
    # Azure's refresh_by: a naive local datetime, before the token runs out.
    assert isinstance(refresh_by, datetime)
    assert refresh_by.tzinfo is None
    assert refresh_by < datetime.fromtimestamp(claims["exp"])
    assert refresh_by > datetime.fromtimestamp(claims["iat"])
