"""Model.deploy's dispatch (Azure's): the deployment configuration picks the kind.

- ACI config (or none): a one-Pod Webservice;
- AKS config: a Webservice marked AKS, with replicas or autoscale, limits, timeouts,
  probe settings and token auth in its deploymentConfig;
- Local config: a LocalWebservice (kaci-runtime on this machine);
- no InferenceConfig: a no-code deploy (kaci's built-in scikit-learn or ONNX scorer);
- overwrite=True: an existing service is given the new spec and rolls (no downtime).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kaci import api
from kaci.azureml import _manifests
from kaci.azureml._names import validate_service_name
from kaci.azureml.core._no_code import frameworks_of, no_code_spec
from kaci.azureml.core.webservice.webservice import (
    PLURAL,
    Webservice,
    _check_target,
    _config_spec,
)
from kaci.azureml.exceptions import WebserviceException

if TYPE_CHECKING:
    from kaci.azureml.core.model import Model
    from kaci.azureml.core.workspace import Workspace

Obj = dict[str, Any]


def build_spec(workspace: Workspace, models: list[Model], inference_config: Any) -> Obj:
    """The imageConfig of the Webservice (an InferenceConfig, or the no-code scorer)."""
    if inference_config is None:
        return no_code_spec(frameworks_of(models))
    return _config_spec(inference_config, workspace)


def deploy(
    workspace: Workspace,
    name: str,
    models: list[Model],
    inference_config: Any = None,
    deployment_config: Any = None,
    deployment_target: Any = None,
    overwrite: bool = False,
    show_output: bool = False,
) -> Any:
    from kaci.azureml.core.webservice.aci import AciServiceDeploymentConfiguration
    from kaci.azureml.core.webservice.aks import AksServiceDeploymentConfiguration
    from kaci.azureml.core.webservice.local import (
        LocalWebservice,
        LocalWebserviceDeploymentConfiguration,
    )

    if models is None:
        models = []
    if not isinstance(models, (list, tuple)):
        raise WebserviceException("models must be a list of Model objects (it may be empty)")
    if isinstance(deployment_config, LocalWebserviceDeploymentConfiguration):
        return LocalWebservice._deploy(
            workspace, name, list(models), inference_config, deployment_config
        )
    validate_service_name(name)
    _check_target(deployment_target)
    if deployment_config is None:
        deployment_config = AciServiceDeploymentConfiguration()
    if not isinstance(
        deployment_config, (AciServiceDeploymentConfiguration, AksServiceDeploymentConfiguration)
    ):
        raise WebserviceException(
            f"deployment_config of type {type(deployment_config).__name__} is not supported: "
            "use AciWebservice, AksWebservice or LocalWebservice.deploy_configuration()"
        )
    image_config = build_spec(workspace, list(models), inference_config)
    Webservice._refuse_existing(workspace, name, overwrite)
    body = _manifests.webservice_body(
        name,
        deployment_config._spec(),
        models=[(m.name, m.version) for m in models],
        image_config=image_config,
    )
    annotations = {api.COMPUTE_TYPE_ANNOTATION: "ACI"}
    if isinstance(deployment_config, AksServiceDeploymentConfiguration):
        annotations = deployment_config._annotations()
    body["metadata"]["annotations"] = annotations
    # overwrite=True: an existing object gets the new spec, so the operator rolls the
    # Pods (the old one serves until the new one is ready) instead of a delete.
    obj = workspace._kube.apply(PLURAL, body)
    service = Webservice(workspace, name, _obj=obj)
    if show_output:
        print(f"Deploying service {name}")
    return service
