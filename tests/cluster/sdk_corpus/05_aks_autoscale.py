# ruff: noqa  (written the way Azure ML notebooks and docs wrote it, on purpose)
# an AKS compute target handle and an AKS deployment configuration with autoscale
import json

from kaci.azureml.core import Environment, Workspace
from kaci.azureml.core.compute import AksCompute, ComputeTarget
from kaci.azureml.core.compute_target import ComputeTargetException
from kaci.azureml.core.conda_dependencies import CondaDependencies
from kaci.azureml.core.model import InferenceConfig, Model
from kaci.azureml.core.webservice import AksWebservice, Webservice

ws = Workspace.from_config()
aks_name = "my-aks-9"
try:
    aks_target = ComputeTarget(workspace=ws, name=aks_name)
    print("Found existing cluster, use it.")
    branch = "existing"
except ComputeTargetException:
    prov_config = AksCompute.provisioning_configuration()
    aks_target = ComputeTarget.create(
        workspace=ws, name=aks_name, provisioning_configuration=prov_config
    )
    branch = "created"
aks_target.wait_for_completion(show_output=True)
print(aks_target.provisioning_state, aks_target.get_status())

model = Model.register(ws, model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist")
env = Environment("mnist-env")
env.python.conda_dependencies = CondaDependencies.create(
    pip_packages=["azureml-defaults", "scikit-learn", "joblib", "numpy"]
)
inference_config = InferenceConfig(entry_script="score.py", environment=env)
aks_config = AksWebservice.deploy_configuration(
    autoscale_enabled=True,
    autoscale_min_replicas=1,
    autoscale_max_replicas=3,
    autoscale_target_utilization=60,
    cpu_cores=0.25,
    memory_gb=1,
)
aks_service = Model.deploy(
    workspace=ws,
    name="aks-mnist",
    models=[model],
    inference_config=inference_config,
    deployment_config=aks_config,
    deployment_target=aks_target,
)
aks_service.wait_for_deployment(show_output=True)
print(aks_service.state)
again = Webservice(ws, "aks-mnist")
samples = json.load(open("sample-request.json"))["data"]
prediction = aks_service.run(input_data=json.dumps({"data": samples}))
primary, secondary = aks_service.get_keys()
results = {
    "prediction": prediction,
    "branch": branch,
    "state": aks_target.provisioning_state,
    "kind": type(again).__name__,
    "compute_type": again.compute_type,
    "autoscale": [
        again.autoscale_enabled,
        again.autoscale_min_replicas,
        again.autoscale_max_replicas,
        again.autoscale_target_utilization,
    ],
    "auth": again.auth_enabled,
    "has_keys": bool(primary and secondary),
    "compute_targets": list(ws.compute_targets),
}
aks_service.delete()
json.dump(results, open("results.json", "w"))
