# ruff: noqa  (written the way Azure ML notebooks and docs wrote it, on purpose)
# kaci-env: KACI_LOCAL_WEBSERVICE=docker
# LocalWebservice as Azure ran it: the scoring image in the local Docker engine (here
# the image the cluster built, pulled); edit score.py + reload, get_logs, delete.
import json

from kaci.azureml.core import Environment, Workspace
from kaci.azureml.core.conda_dependencies import CondaDependencies
from kaci.azureml.core.model import InferenceConfig, Model
from kaci.azureml.core.webservice import LocalWebservice

ws = Workspace.from_config()
model = Model.register(ws, model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist")
myenv = CondaDependencies.create(
    pip_packages=["azureml-defaults", "scikit-learn", "joblib", "numpy"]
)
with open("myenv.yml", "w") as f:
    f.write(myenv.serialize_to_string())
env = Environment.from_conda_specification(name="myenv", file_path="myenv.yml")
inference_config = InferenceConfig(entry_script="score.py", environment=env)
deployment_config = LocalWebservice.deploy_configuration(port=6789)
local_service = Model.deploy(ws, "local-docker", [model], inference_config, deployment_config)
local_service.wait_for_deployment()
samples = json.load(open("sample-request.json"))["data"]
first = local_service.run(input_data=json.dumps({"data": samples}))

with open("score.py") as f:
    text = f.read()
with open("score.py", "w") as f:
    f.write(text.replace("return y_hat.tolist()", 'return {"reloaded": y_hat.tolist()}'))
local_service.reload()
reloaded = local_service.run(input_data=json.dumps({"data": samples}))
logs = local_service.get_logs()
print(local_service.get_logs())
results = {
    "prediction": first,
    "reloaded": reloaded["reloaded"],
    "port": local_service.port,
    "mode": local_service.serialize()["mode"],
    "logs_nonempty": bool(logs),
}
local_service.delete()
json.dump(results, open("results.json", "w"))
