# ruff: noqa  (written the way Azure ML notebooks and docs wrote it, on purpose)
# re-deploy under the same name with overwrite=True: the service rolls, no delete needed
import json

from kaci.azureml.core import Environment, Workspace
from kaci.azureml.core.conda_dependencies import CondaDependencies
from kaci.azureml.core.model import InferenceConfig, Model
from kaci.azureml.core.webservice import AciWebservice
from kaci.azureml.exceptions import WebserviceException

ws = Workspace.from_config()
model = Model.register(ws, model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist")
env = Environment("mnist-env")
env.python.conda_dependencies = CondaDependencies.create(
    pip_packages=["azureml-defaults", "scikit-learn", "joblib", "numpy"]
)
inference_config = InferenceConfig(entry_script="score.py", environment=env)
config = AciWebservice.deploy_configuration(cpu_cores=0.25, memory_gb=1)
service = Model.deploy(ws, "overwrite-mnist", [model], inference_config, config)
service.wait_for_deployment(show_output=True)
uid = service._obj["metadata"]["uid"]
try:
    Model.deploy(ws, "overwrite-mnist", [model], inference_config, config)
    refused = None
except WebserviceException as e:
    refused = str(e)
config2 = AciWebservice.deploy_configuration(cpu_cores=0.25, memory_gb=1.5, description="second")
service = Model.deploy(ws, "overwrite-mnist", [model], inference_config, config2, overwrite=True)
service.wait_for_deployment(show_output=True)
samples = json.load(open("sample-request.json"))["data"]
prediction = service.run(json.dumps({"data": samples}))
results = {
    "prediction": prediction,
    "refused": refused,
    "memory": service.memory_gb,
    "same_object": service._obj["metadata"]["uid"] == uid,
}
service.delete()
json.dump(results, open("results.json", "w"))
