# ruff: noqa  (written the way Azure ML notebooks and docs wrote it, on purpose)
# a curated environment (Environment.get of an AzureML-* name), cloned and registered
import json

from kaci.azureml.core import Environment, Workspace
from kaci.azureml.core.model import InferenceConfig, Model
from kaci.azureml.core.webservice import AciWebservice
from kaci.azureml.exceptions import UserErrorException

ws = Workspace.from_config()
model = Model.register(ws, model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist")

try:
    Environment.get(workspace=ws, name="AzureML-PyTorch-1.6-GPU")
    gpu_refused = None
except UserErrorException as e:
    gpu_refused = str(e)

curated = Environment.get(workspace=ws, name="AzureML-sklearn-1.5")
env = curated.clone("my-sklearn-env")
env.register(ws)
again = Environment.get(ws, "my-sklearn-env")
listed = sorted(n for n in Environment.list(workspace=ws) if not n.startswith("AzureML-"))

inference_config = InferenceConfig(entry_script="score.py", environment=curated)
service = Model.deploy(
    ws,
    "curated-env",
    [model],
    inference_config,
    AciWebservice.deploy_configuration(cpu_cores=0.25, memory_gb=1),
)
service.wait_for_deployment(show_output=True)
samples = json.load(open("sample-request.json"))["data"]
prediction = service.run(json.dumps({"data": samples}))
results = {
    "prediction": prediction,
    "gpu_refused": gpu_refused,
    "listed": listed,
    "version": again.version,
}
service.delete()
json.dump(results, open("results.json", "w"))
