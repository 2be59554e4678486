"""collectModelData -> kaci-runtime's capture settings and the PVC mount (pure)."""

from __future__ import annotations

from typing import Any

from kaci.azureml.core.webservice import AciWebservice, AksWebservice
from kaci.render import aks
from kaci.render import webservice as render

DC: dict[str, Any] = {"cpuCores": 0.25, "memoryGb": 1}


def env_of(dc: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in aks.runtime_env(dc, "mnist", "team-a")}


def test_off_unless_asked() -> None:
    assert "KACI_MODEL_DATA_CAPTURE" not in env_of(DC)
    assert "KACI_MODEL_DATA_CAPTURE" not in env_of({**DC, "collectModelData": False})
    assert not aks.is_aks({**DC, "collectModelData": True})  # still an ACI-shaped service


def test_stdout_by_default_with_the_service_name() -> None:
    env = env_of({**DC, "collectModelData": True})
    assert env["KACI_MODEL_DATA_CAPTURE"] == "true"
    assert env["SERVICE_NAME"] == "mnist"
    assert "KACI_MODEL_DATA_DIR" not in env
    assert "KACI_MODEL_DATA_URL" not in env


def test_a_claim_is_mounted_and_named_as_the_folder() -> None:
    dc = {
        **DC,
        "collectModelData": True,
        "modelDataCollection": {"claimName": "captures", "sampleRate": 0.1},
    }
    env = env_of(dc)
    assert env["KACI_MODEL_DATA_DIR"] == aks.MODEL_DATA_DIR
    assert env["KACI_MODEL_DATA_SAMPLE_RATE"] == "0.1"
    pod = render.pod_template("mnist", "img@sha256:x", dc, None, None)["spec"]
    assert {"name": "model-data", "persistentVolumeClaim": {"claimName": "captures"}} in pod[
        "volumes"
    ]
    assert {"name": "model-data", "mountPath": aks.MODEL_DATA_DIR} in pod["containers"][0][
        "volumeMounts"
    ]


def test_an_http_sink_with_a_size_cap() -> None:
    dc = {
        **DC,
        "collectModelData": True,
        "modelDataCollection": {"url": "http://collector.obs:8080/in", "maxRecordBytes": 4096},
    }
    env = env_of(dc)
    assert env["KACI_MODEL_DATA_URL"] == "http://collector.obs:8080/in"
    assert env["KACI_MODEL_DATA_MAX_RECORD_BYTES"] == "4096"
    pod = render.pod_template("mnist", "img@sha256:x", dc, None, None)["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]


def test_the_sdk_writes_azures_collect_model_data() -> None:
    aci = AciWebservice.deploy_configuration(cpu_cores=0.25, memory_gb=1, collect_model_data=True)
    assert aci._spec()["collectModelData"] is True
    aks_config = AksWebservice.deploy_configuration(collect_model_data=True)
    assert aks_config._spec()["collectModelData"] is True
    assert "collectModelData" not in AciWebservice.deploy_configuration()._spec()
