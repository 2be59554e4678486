"""Azure-style calls -> Kubernetes object bodies, and the checks on Azure parameters."""

from __future__ import annotations

import base64
import warnings
from pathlib import Path

import pytest
from kaci.azureml import _manifests
from kaci.azureml.core.image import ContainerImage
from kaci.azureml.core.image.image import failure_reason, image_verdict
from kaci.azureml.core.model import _model_verdict, _tag_match, versions_of
from kaci.azureml.core.webservice import AciWebservice
from kaci.azureml.core.webservice.webservice import _to_bytes, describe_conditions, service_verdict
from kaci.azureml.exceptions import KaciCompatibilityWarning, WebserviceException


def test_configmap_body_is_binary_data() -> None:
    body = _manifests.configmap_body(
        "m-1", {"model.pkl": b"\x80\x04K\x01."}, {"kaci.dev/model": "m"}
    )
    assert body["binaryData"] == {"model.pkl": base64.b64encode(b"\x80\x04K\x01.").decode()}
    assert body["metadata"]["labels"]["kaci.dev/model"] == "m"
    assert body["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kaci-sdk"


def test_model_body_keeps_azure_name_and_stringifies_tags() -> None:
    body = _manifests.model_body(
        "sklearn-mnist-abc123",
        "sklearn_mnist",
        {"configMap": {"name": "cm"}},
        tags={"key": 0.1},  # type: ignore[dict-item]
        description="test",
        framework="ScikitLearn",
    )
    assert body["apiVersion"] == "kaci.dev/v1alpha1"
    assert body["kind"] == "Model"
    assert body["spec"] == {
        "modelName": "sklearn_mnist",
        "source": {"configMap": {"name": "cm"}},
        "tags": {"key": "0.1"},
        "description": "test",
        "framework": "ScikitLearn",
    }


def test_deployment_config_defaults_are_azures() -> None:
    assert AciWebservice.deploy_configuration()._spec() == {"cpuCores": 0.1, "memoryGb": 0.5}
    spec = AciWebservice.deploy_configuration(
        cpu_cores=1, memory_gb=1, tags={"data": "mnist"}, description="d", auth_enabled=True
    )._spec()
    assert spec == {
        "cpuCores": 1.0,
        "memoryGb": 1.0,
        "authEnabled": True,
        "tags": {"data": "mnist"},
        "description": "d",
    }


@pytest.mark.parametrize(("cpu", "mem"), [(0, 1), (1, -0.5), ("lots", 1), (True, 1)])
def test_bad_resources_are_refused(cpu: object, mem: object) -> None:
    with pytest.raises(WebserviceException):
        AciWebservice.deploy_configuration(cpu_cores=cpu, memory_gb=mem)  # type: ignore[arg-type]


def test_ssl_and_own_keys_are_refused_with_a_way_out() -> None:
    with pytest.raises(WebserviceException, match="Ingress"):
        AciWebservice.deploy_configuration(ssl_enabled=True)
    with pytest.raises(WebserviceException, match="regen_key"):
        AciWebservice.deploy_configuration(primary_key="k")


def test_azure_only_parameters_warn() -> None:
    with pytest.warns(KaciCompatibilityWarning) as record:
        AciWebservice.deploy_configuration(location="eastus", vnet_name="v", subnet_name="s")
    text = " ".join(str(w.message) for w in record)
    assert "location" in text
    assert "vnet_name" in text
    assert "subnet_name" in text


def test_no_warning_for_the_articles_parameters() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AciWebservice.deploy_configuration(
            cpu_cores=1, memory_gb=1, tags={"data": "mnist"}, description="Handwriting"
        )


def _files(tmp_path: Path) -> tuple[str, str, str]:
    score = tmp_path / "score.py"
    score.write_text("def init():\n    pass\n\ndef run(raw):\n    return raw\n")
    conda = tmp_path / "myenv.yml"
    conda.write_text("dependencies:\n  - pip:\n    - scikit-learn\n")
    docker = tmp_path / "steps"
    docker.write_text("RUN echo hi\n")
    return str(score), str(conda), str(docker)


def test_image_configuration_reads_the_files(tmp_path: Path) -> None:
    score, conda, docker = _files(tmp_path)
    cfg = ContainerImage.image_configuration(
        execution_script=score,
        runtime="python",
        conda_file=conda,
        docker_file=docker,
        description="Image with mnist model",
        tags={"data": "mnist"},
    )
    spec = cfg._spec()
    assert spec["executionScript"]["inline"].startswith("def init")
    assert spec["condaFile"]["inline"].startswith("dependencies")
    assert spec["dockerSteps"] == "RUN echo hi\n"
    assert spec["runtime"] == "python"
    assert spec["tags"] == {"data": "mnist"}
    body = _manifests.image_body("myimage1", [("sklearn_mnist", 1), ("other", None)], spec)
    assert body["spec"]["models"] == [{"name": "sklearn_mnist", "version": 1}, {"name": "other"}]
    assert body["spec"]["imageName"] == "myimage1"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"runtime": "spark-py"}, "runtime"),
        ({"enable_gpu": True}, "CPU-only"),
        ({"dependencies": ["x.py"]}, "dependencies"),
        ({"base_image_registry": object()}, "base_image_registry"),
    ],
)
def test_image_parameters_kaci_cannot_honour_are_refused(
    tmp_path: Path, kwargs: dict[str, object], match: str
) -> None:
    score, _, _ = _files(tmp_path)
    args: dict[str, object] = {"execution_script": score, "runtime": "python", **kwargs}
    with pytest.raises(WebserviceException, match=match):
        ContainerImage.image_configuration(**args)  # type: ignore[arg-type]


def test_missing_script_file_fails_when_the_spec_is_built(tmp_path: Path) -> None:
    cfg = ContainerImage.image_configuration(str(tmp_path / "nope.py"), "python")
    with pytest.raises(WebserviceException, match="does not exist"):
        cfg._spec()


def test_webservice_body_exactly_one_source() -> None:
    deploy = {"cpuCores": 1.0, "memoryGb": 1.0}
    ws1 = _manifests.webservice_body(
        "aci-mnist-1", deploy, model_files={"configMap": {"name": "f"}}, image_config={"x": 1}
    )
    assert set(ws1["spec"]) == {"deploymentConfig", "modelFiles", "imageConfig"}
    ws2 = _manifests.webservice_body("aci-mnist-2", deploy, models=[("m", 1)], image_config={})
    assert ws2["spec"]["models"] == [{"name": "m", "version": 1}]
    ws3 = _manifests.webservice_body("aci-mnist-3", deploy, image=("myimage1", 2), image_config={})
    assert ws3["spec"]["image"] == {"name": "myimage1", "version": 2}
    assert "imageConfig" not in ws3["spec"]  # the CRD refuses imageConfig with image
    with pytest.raises(ValueError, match="exactly one"):
        _manifests.webservice_body("x", deploy, models=[("m", None)], image=("i", None))


def _obj(gen: int, seen: int | None, **status: object) -> dict[str, object]:
    st: dict[str, object] = dict(status)
    if seen is not None:
        st["observedGeneration"] = seen
    return {"metadata": {"name": "x", "generation": gen}, "status": st}


def test_service_verdict_waits_for_the_current_generation() -> None:
    assert service_verdict(_obj(2, 1, state="Healthy")) == "pending"
    assert service_verdict(_obj(2, 2, state="Healthy")) == "done"
    assert service_verdict(_obj(2, 2, state="Transitioning")) == "pending"
    assert service_verdict(_obj(2, 2, state="Unhealthy")) == "pending"
    assert service_verdict(_obj(2, 2, state="Failed")) == "failed"
    # Unschedulable may clear as other Pods go away: it fails only once it lasted.
    assert service_verdict(_obj(2, 2, state="Unschedulable")) == "pending"
    assert service_verdict(_obj(2, 2, state="Unschedulable"), 300.0) == "failed"


def test_image_verdict() -> None:
    assert image_verdict(_obj(1, 1, state="Running")) == "pending"
    assert image_verdict(_obj(1, 1, state="Succeeded")) == "done"
    assert image_verdict(_obj(1, 1, state="Failed")) == "failed"
    assert image_verdict(_obj(1, None, state="Succeeded")) == "pending"


def test_image_failure_reason_comes_from_the_condition() -> None:
    obj = _obj(1, 1, state="Failed")
    obj["status"]["conditions"] = [  # type: ignore[index]
        {"type": "Ready", "status": "False", "reason": "BuildFailed", "message": "no run()"}
    ]
    assert failure_reason(obj) == "no run()"


def test_model_verdict() -> None:
    ready = [{"type": "Ready", "status": "True"}]
    assert _model_verdict(_obj(1, 1, version=1, conditions=ready)) == "done"
    bad = [{"type": "Ready", "status": "False", "reason": "BadSource", "message": "m"}]
    assert _model_verdict(_obj(1, 1, conditions=bad)) == "failed"
    pending = [{"type": "Ready", "status": "False", "reason": "Fetching"}]
    assert _model_verdict(_obj(1, 1, conditions=pending)) == "pending"
    assert _model_verdict(_obj(2, 1, version=1, conditions=ready)) == "pending"


def test_versions_of_merges_history_and_current() -> None:
    obj = {
        "metadata": {"name": "m"},
        "status": {
            "version": 3,
            "digest": "sha256:c",
            "versions": [{"version": 2, "digest": "sha256:b"}, {"version": 1, "digest": "a"}],
        },
    }
    assert [v["version"] for v in versions_of(obj)] == [1, 2, 3]


def test_tag_filter_is_azures() -> None:
    tags = {"data": "mnist", "type": "classification"}
    assert _tag_match(tags, ["data", ["type", "classification"]])
    assert not _tag_match(tags, [["data", "cifar"]])
    assert not _tag_match(tags, ["missing"])
    assert _tag_match(tags, None)


def test_describe_conditions() -> None:
    obj = {
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "ImageReady", "status": "True"},
                {"type": "PodReady", "status": "False", "reason": "ContainerCreating"},
            ]
        }
    }
    assert describe_conditions(obj) == "ImageReady=True PodReady=False (ContainerCreating)"


def test_run_input_is_sent_as_bytes() -> None:
    assert _to_bytes(b'{"data": []}') == b'{"data": []}'
    assert _to_bytes('{"data": []}') == b'{"data": []}'
    assert _to_bytes({"data": [[1, 2]]}) == b'{"data": [[1, 2]]}'
