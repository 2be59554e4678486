# ruff: noqa  (written the way Azure ML notebooks and docs wrote it, on purpose)
# update a running service with a new InferenceConfig (a new score.py)
import json

from kaci.azureml.core import Environment, Workspace
from kaci.azureml.core.conda_dependencies import CondaDependencies
from kaci.azureml.core.model import InferenceConfig, Model
from kaci.azureml.core.webservice import AciWebservice, Webservice

ws = Workspace.from_config()
model = Model.register(ws, model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist")
env = Environment("mnist-env")
env.python.conda_dependencies = CondaDependencies.create(
    pip_packages=["azureml-defaults", "scikit-learn", "joblib", "numpy"]
)
service = Model.deploy(
    ws,
    "update-mnist",
    [model],
    InferenceConfig(entry_script="score.py", environment=env),
    AciWebservice.deploy_configuration(cpu_cores=0.25, memory_gb=1),
)
service.wait_for_deployment(show_output=True)
samples = json.load(open("sample-request.json"))["data"]
before = service.run(json.dumps({"data": samples}))

with open("score.py") as f:
    text = f.read()
with open("score_new.py", "w") as f:
    f.write(text.replace("return y_hat.tolist()", 'return {"v": 2, "predictions": y_hat.tolist()}'))
new_config = InferenceConfig(entry_script="score_new.py", environment=env)
service.update(inference_config=new_config)
service.wait_for_deployment(show_output=True)
service = Webservice(ws, "update-mnist")
after = service.run(json.dumps({"data": samples}))
results = {"prediction": before, "after": after["predictions"], "v": after["v"]}
service.delete()
json.dump(results, open("results.json", "w"))
