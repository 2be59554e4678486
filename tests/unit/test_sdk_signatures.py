"""kaci's classes take azureml-core 1.57's parameters, in its order, with its defaults.

AZURE lists each call's parameters as azureml-core 1.57 declares them (read from
its wheel's source with `ast`; "REQ" marks a required one). A kaci signature must
start with exactly these (names, order, defaults); it may only add keyword-only
extras of its own after them.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from kaci.azureml.core import Environment
from kaci.azureml.core.conda_dependencies import PYTHON_DEFAULT_VERSION, CondaDependencies
from kaci.azureml.core.model import InferenceConfig, Model
from kaci.azureml.core.resource_configuration import ResourceConfiguration
from kaci.azureml.core.webservice import AciWebservice, AksWebservice, LocalWebservice

REQ = "REQ"
AZURE: dict[str, list[tuple[str, Any]]] = {
    "Model.deploy": [
        ("workspace", REQ),
        ("name", REQ),
        ("models", REQ),
        ("inference_config", None),
        ("deployment_config", None),
        ("deployment_target", None),
        ("overwrite", False),
        ("show_output", False),
    ],
    "Model.package": [
        ("workspace", REQ),
        ("models", REQ),
        ("inference_config", None),
        ("generate_dockerfile", False),
        ("image_name", None),
        ("image_label", None),
    ],
    "Model.register": [
        ("workspace", REQ),
        ("model_path", REQ),
        ("model_name", REQ),
        ("tags", None),
        ("properties", None),
        ("description", None),
        ("datasets", None),
        ("model_framework", None),
        ("model_framework_version", None),
        ("child_paths", None),
        ("sample_input_dataset", None),
        ("sample_output_dataset", None),
        ("resource_configuration", None),
    ],
    "InferenceConfig.__init__": [
        ("entry_script", REQ),
        ("runtime", None),
        ("conda_file", None),
        ("extra_docker_file_steps", None),
        ("source_directory", None),
        ("enable_gpu", None),
        ("description", None),
        ("base_image", None),
        ("base_image_registry", None),
        ("cuda_version", None),
        ("environment", None),
    ],
    "CondaDependencies.create": [
        ("pip_indexurl", None),
        ("pip_packages", None),
        ("conda_packages", None),
        ("python_version", "3.9.12"),
        ("pin_sdk_version", True),
    ],
    "CondaDependencies.__init__": [
        ("conda_dependencies_file_path", None),
        ("_underlying_structure", None),
    ],
    "CondaDependencies.save": [("path", None)],
    "CondaDependencies.save_to_file": [("base_directory", REQ), ("conda_file_path", None)],
    "Environment.__init__": [("name", REQ)],
    "Environment.get": [("workspace", REQ), ("name", REQ), ("version", None), ("label", None)],
    "Environment.from_conda_specification": [("name", REQ), ("file_path", REQ)],
    "Environment.from_pip_requirements": [("name", REQ), ("file_path", REQ), ("pip_version", None)],
    "Environment.register": [("workspace", REQ)],
    "Environment.clone": [("new_name", REQ)],
    "Environment.save_to_directory": [("path", REQ), ("overwrite", False)],
    "AksWebservice.deploy_configuration": [
        (n, None)
        for n in (
            "autoscale_enabled",
            "autoscale_min_replicas",
            "autoscale_max_replicas",
            "autoscale_refresh_seconds",
            "autoscale_target_utilization",
            "collect_model_data",
            "auth_enabled",
            "cpu_cores",
            "memory_gb",
            "enable_app_insights",
            "scoring_timeout_ms",
            "replica_max_concurrent_requests",
            "max_request_wait_time",
            "num_replicas",
            "primary_key",
            "secondary_key",
            "tags",
            "properties",
            "description",
            "gpu_cores",
            "period_seconds",
            "initial_delay_seconds",
            "timeout_seconds",
            "success_threshold",
            "failure_threshold",
            "namespace",
            "token_auth_enabled",
            "compute_target_name",
            "cpu_cores_limit",
            "memory_gb_limit",
            "blobfuse_enabled",
        )
    ],
    "AciWebservice.deploy_configuration": [
        (n, None)
        for n in (
            "cpu_cores",
            "memory_gb",
            "tags",
            "properties",
            "description",
            "location",
            "auth_enabled",
            "ssl_enabled",
            "enable_app_insights",
            "ssl_cert_pem_file",
            "ssl_key_pem_file",
            "ssl_cname",
            "dns_name_label",
            "primary_key",
            "secondary_key",
            "collect_model_data",
            "cmk_vault_base_url",
            "cmk_key_name",
            "cmk_key_version",
            "vnet_name",
            "subnet_name",
        )
    ],
    "LocalWebservice.deploy_configuration": [("port", None)],
    "LocalWebservice.reload": [("wait", False)],
    "LocalWebservice.update": [
        ("models", None),
        ("image_config", None),
        ("deployment_config", None),
        ("wait", False),
        ("inference_config", None),
    ],
    "LocalWebservice.delete": [
        ("delete_cache", True),
        ("delete_image", False),
        ("delete_volume", True),
    ],
    "LocalWebservice.deploy_to_cloud": [
        ("name", None),
        ("deployment_config", None),
        ("deployment_target", None),
    ],
    "ResourceConfiguration.__init__": [("cpu", None), ("memory_in_gb", None), ("gpu", None)],
}
CLASSES: dict[str, Any] = {
    "Model": Model,
    "InferenceConfig": InferenceConfig,
    "CondaDependencies": CondaDependencies,
    "Environment": Environment,
    "AksWebservice": AksWebservice,
    "AciWebservice": AciWebservice,
    "LocalWebservice": LocalWebservice,
    "ResourceConfiguration": ResourceConfiguration,
}


@pytest.mark.parametrize("call", sorted(AZURE))
def test_signature_matches_azureml_core(call: str) -> None:
    cls_name, meth = call.split(".")
    sig = inspect.signature(getattr(CLASSES[cls_name], meth))
    params = [p for p in sig.parameters.values() if p.name != "self"]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    got = [(p.name, REQ if p.default is p.empty else p.default) for p in positional]
    assert got[: len(AZURE[call])] == AZURE[call]
    # Anything kaci adds comes after Azure's parameters and is never required.
    for extra in params[len(AZURE[call]) :]:
        assert extra.default is not extra.empty or extra.kind is extra.VAR_KEYWORD, extra


def test_python_default_version_is_azures() -> None:
    assert PYTHON_DEFAULT_VERSION == "3.9.12"


def test_framework_constants_are_azures() -> None:
    f = Model.Framework
    assert (f.CUSTOM, f.TENSORFLOW, f.SCIKITLEARN, f.ONNX, f.TFKERAS, f.PYTORCH, f.MULTI) == (
        "Custom",
        "TensorFlow",
        "ScikitLearn",
        "Onnx",
        "TfKeras",
        "PyTorch",
        "Multi",
    )
