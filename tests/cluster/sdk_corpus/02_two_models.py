# ruff: noqa  (written the way Azure ML notebooks and docs wrote it, on purpose)
# two models in one service: score.py finds each with Model.get_model_path
import json

from kaci.azureml.core import Environment, Workspace
from kaci.azureml.core.conda_dependencies import CondaDependencies
from kaci.azureml.core.model import InferenceConfig, Model
from kaci.azureml.core.webservice import AciWebservice

ws = Workspace.from_config()
model_a = Model.register(ws, model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist")
model_b = Model.register(ws, model_path="sklearn_mnist_model.pkl", model_name="mnist_second")

with open("score_two.py", "w") as f:
    f.write("""
import json
import joblib
import numpy as np
from azureml.core.model import Model


def init():
    global model_a, model_b
    model_a = joblib.load(Model.get_model_path("sklearn_mnist"))
    model_b = joblib.load(Model.get_model_path(model_name="mnist_second"))


def run(raw_data):
    data = np.array(json.loads(raw_data)["data"])
    return {"a": model_a.predict(data).tolist(), "b": model_b.predict(data).tolist()}
""")

myenv = CondaDependencies()
myenv.add_pip_package("scikit-learn")
myenv.add_pip_package("joblib")
myenv.add_pip_package("numpy")
myenv.add_channel("conda-forge")
env = Environment(name="two-models-env")
env.python.conda_dependencies = myenv

inference_config = InferenceConfig(entry_script="score_two.py", environment=env)
deployment_config = AciWebservice.deploy_configuration(cpu_cores=0.25, memory_gb=1)
service = Model.deploy(
    workspace=ws,
    name="two-models",
    models=[model_a, model_b],
    inference_config=inference_config,
    deployment_config=deployment_config,
)
service.wait_for_deployment(True)
samples = json.load(open("sample-request.json"))["data"]
out = service.run(json.dumps({"data": samples}))
print(out)
results = {"a": out["a"], "b": out["b"], "models": sorted(service.model_ids)}
service.delete()
json.dump(results, open("results.json", "w"))
